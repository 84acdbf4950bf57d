"""The PyTorch peer of a generated trainer: the same model, built from caec's
graph (`caec ir --json`, as the cross-check builds it),
trained with torch.optim.RMSprop on MSE, batch and threads as given. Prints
one line: median and best images/s over the timed steps, after one warm-up.

usage: torch_peer.py CAEC MODEL.cae [--batch 32] [--size 128] [--steps 5] [--threads 2]
"""
import argparse
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "torch"))
from cae_torch import forward, load_graph  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("caec")
    ap.add_argument("cae")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--size", type=int, default=None)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    graph = load_graph(a.caec, a.cae, a.size)
    c, h, w = graph["nodes"][graph["input"]]["shape"]
    gen = torch.Generator().manual_seed(1)
    params = {}
    for p in graph["params"]:
        t = torch.rand(p["shape"], generator=gen) * 0.1 if p["role"] == "weight" else torch.zeros(p["shape"])
        if p["role"] == "running_var":
            t = torch.ones(p["shape"])
        params[p["name"]] = t.requires_grad_(p["trainable"])
    trainable = [params[p["name"]] for p in graph["params"] if p["trainable"]]
    opt = torch.optim.RMSprop(trainable, lr=1e-3, alpha=0.9, eps=1e-7)
    x = torch.rand(a.batch, c, h, w, generator=gen)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = F.mse_loss(forward(graph, params, x, training=True), x)
        loss.backward()
        opt.step()

    step()
    secs = []
    for _ in range(a.steps):
        t0 = time.perf_counter()
        step()
        secs.append(time.perf_counter() - t0)
    secs.sort()
    med, best = secs[len(secs) // 2], secs[0]
    print(f"torch {torch.__version__} {graph['model']}: batch {a.batch} "
          f"of {h}x{w}, {a.threads} threads, {a.steps} steps: median {1e3 * med:.1f} ms ({a.batch / med:.1f} images/s), "
          f"best {1e3 * best:.1f} ms ({a.batch / best:.1f} images/s)")


if __name__ == "__main__":
    main()
