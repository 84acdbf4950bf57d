"""Cross-checks one training step of caec's reference interpreter against PyTorch.

usage: check_step.py CAEC MODEL.cae LOSS L2 [N [SIZE [TRAINER]]]

caec's interpreter (or TRAINER, a generated trainer compiled for batch N and
SIZE x SIZE) initialises the weights and runs a step (forward, loss, backward,
RMSprop update) on a random batch; PyTorch, from the same weights and batch,
runs the model built from caec's graph with its own kernels and autograd, in
float64.
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

RTOL = 1e-9  # the interpreter and PyTorch compute in float64; only summation order differs
# A trainer computes in float32: errors relative to each tensor's largest
# value, plus an absolute floor for gradients that are 0 but for rounding (the
# biases of convs before a batch norm). RMSprop's first step moves w by
# lr g / (sqrt(1 - rho) |g| + eps), which is steep where |g| is near eps: the
# updated weights are allowed the gradient's tolerance carried through that
# slope, element by element.
TRAINER_RTOL, TRAINER_ATOL, ZERO_GRAD = 2e-3, 1e-6, 1e-9
LR, RHO, EPS = 1e-3, 0.9, 1e-7


def main():
    caec, cae, loss, l2 = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
    n = int(sys.argv[5]) if len(sys.argv) > 5 else 2
    size = sys.argv[6] if len(sys.argv) > 6 else None  # the same architecture on smaller inputs: faster
    trainer = sys.argv[7] if len(sys.argv) > 7 else None
    sized = ["--size", size] if size else []
    graph = load_graph(caec, cae, size)
    c, h, w = graph["nodes"][graph["input"]]["shape"]
    gen = torch.Generator().manual_seed(1234)
    x = torch.rand(n, c, h, w, dtype=torch.float64, generator=gen)
    if trainer:
        x = x.float().double()  # what the trainer reads
    with tempfile.TemporaryDirectory() as tmp:
        wpath, xpath, spath = (os.path.join(tmp, f) for f in ("w.safetensors", "x.safetensors", "s.safetensors"))
        runner = [trainer] if trainer else [caec, "interp", cae]
        options = [] if trainer else sized
        init = ["init", "--seed", "7", "--out", wpath] + ([] if trainer else ["--f64"])
        subprocess.run(runner + init + options, check=True)
        save(xpath, {"x": x})
        subprocess.run(runner + ["step", "--weights", wpath, "--batch", xpath, "--out", spath, "--loss", loss,
                                 "--l2", str(l2), "--no-dropout", "--update"] + options, check=True)
        params = {k: v.double() for k, v in load(wpath).items()}
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
            got = got.double()
            err = (got - want).abs().max().item() if want.numel() else 0.0
            if trainer:
                scale = want.abs().max().item() if want.numel() else 0.0
                limit = TRAINER_RTOL * scale + TRAINER_ATOL
                if kind == "updated" and name in trainable:
                    g = params[name].grad
                    gtol = TRAINER_RTOL * g.abs().max().item() + TRAINER_ATOL
                    slope = LR / ((1 - RHO) ** 0.5 * g.abs() + EPS)
                    excess = ((got - want).abs() - (TRAINER_RTOL * scale + gtol * slope)).max().item()
                    err, limit = err + max(excess, 0.0), err
            else:
                scale = max(1.0, want.abs().max().item()) if want.numel() else 1.0
                limit = RTOL * scale
            if scale > ZERO_GRAD:
                worst = max(worst, err / scale)
            if got.shape != want.shape or err > limit:
                failures.append(f"{kind} {name}: max error {err:.3g} (scale {scale:.3g})")
        who = os.path.basename(trainer) if trainer else "interp"
        print(f"{os.path.basename(cae)} {who} {loss}: {kind:8s} {len(pairs):3d} tensors, "
              f"max relative error {worst:.2e}")

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
