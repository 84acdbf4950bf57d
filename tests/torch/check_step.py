"""Cross-checks one training step of caec's reference interpreter against PyTorch.

usage: check_step.py CAEC MODEL.cae LOSS L2 [N [SIZE]]

caec initialises the weights and runs a step (forward, loss, backward, RMSprop
update) on a random batch; PyTorch, from the same weights and batch, runs the
model built from caec's graph with its own kernels and autograd, in float64.
The output, the loss, every gradient and every updated parameter (batch-norm
running statistics included) must agree, compared by name. Prints one line per
tensor class and exits non-zero on a mismatch.
"""
import os
import subprocess
import sys
import tempfile

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cae_torch import forward, keras_update, load_graph, loss_fn  # noqa: E402
from safetensors_io import load, save  # noqa: E402

RTOL = 1e-9  # both sides compute in float64; only summation order differs


def main():
    caec, cae, loss, l2 = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
    n = int(sys.argv[5]) if len(sys.argv) > 5 else 2
    size = sys.argv[6] if len(sys.argv) > 6 else None  # the same architecture on smaller inputs: faster
    sized = ["--size", size] if size else []
    graph = load_graph(caec, cae, size)
    c, h, w = graph["nodes"][graph["input"]]["shape"]
    gen = torch.Generator().manual_seed(1234)
    x = torch.rand(n, c, h, w, dtype=torch.float64, generator=gen)
    with tempfile.TemporaryDirectory() as tmp:
        wpath, xpath, spath = (os.path.join(tmp, f) for f in ("w.safetensors", "x.safetensors", "s.safetensors"))
        subprocess.run([caec, "interp", cae, "init", "--seed", "7", "--f64", "--out", wpath] + sized, check=True)
        save(xpath, {"x": x})
        subprocess.run([caec, "interp", cae, "step", "--weights", wpath, "--batch", xpath, "--out", spath,
                        "--loss", loss, "--l2", str(l2), "--no-dropout", "--update"] + sized, check=True)
        params = load(wpath)
        result = load(spath)

    trainable = {p["name"] for p in graph["params"] if p["trainable"]}
    for name in trainable:
        params[name].requires_grad_(True)
    y = forward(graph, params, x, training=True)
    value = loss_fn(graph, params, y, x, loss, l2)
    value.backward()

    failures = []

    def compare(kind, pairs):
        worst = 0.0
        for name, got, want in pairs:
            scale = max(1.0, want.abs().max().item()) if want.numel() else 1.0
            err = (got - want).abs().max().item() if want.numel() else 0.0
            worst = max(worst, err / scale)
            if got.shape != want.shape or err > RTOL * scale:
                failures.append(f"{kind} {name}: max error {err:.3g} (scale {scale:.3g})")
        print(f"{os.path.basename(cae)} {loss}: {kind:8s} {len(pairs):3d} tensors, max relative error {worst:.2e}")

    compare("output", [("y", result["y"], y.detach())])
    compare("loss", [("loss", result["loss"], value.detach())])
    compare("gradient", [(p, result["grad." + p], params[p].grad) for p in sorted(trainable)])
    for p in graph["params"]:  # the Keras update, from the PyTorch gradients
        if p["trainable"]:
            keras_update("rmsprop", params[p["name"]], params[p["name"]].grad, {}, 1, lr=1e-3)
    compare("updated", [(p["name"], result[p["name"]], params[p["name"]].detach()) for p in graph["params"]])
    for f in failures:
        print("MISMATCH", f)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
