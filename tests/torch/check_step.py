"""Cross-checks one training step of caec's reference interpreter against PyTorch.

usage: check_step.py CAEC MODEL.cae LOSS L2 [N [SIZE [TRAINER]]] [--tol GLOB=RTOL,ATOL[,FLOOR]]...

caec's interpreter (or TRAINER, a generated trainer compiled for batch N and
SIZE x SIZE) initialises the weights and runs a step (forward, loss, backward,
RMSprop update) on a random batch; PyTorch, from the same weights and batch,
runs the model built from caec's graph with its own kernels and autograd, in
float64.
The output, the loss, every gradient and every updated parameter (batch-norm
running statistics included) must agree, by name and element by element, within
the --tol rules for a TRAINER, float32 (see INTERP_TOLS). Prints one line per
tensor class and exits non-zero on a mismatch.
"""
import argparse
import fnmatch
import os
import subprocess
import sys
import tempfile

import numpy
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cae_torch import forward, keras_update, load_graph, loss_fn  # noqa: E402
from safetensors_io import load, save  # noqa: E402

# Element i of a tensor passes when |got_i - want_i| <= atol + floor * rms(want)
# + rtol * |want_i|, with the first (glob, rtol, atol, floor) whose glob matches
# the tensor's name, as sttool compare checks a trainer against the
# interpreter. A trainer (float32) gets the rules it is given: CAEC_FP32_TOLS of
# tests/CMakeLists.txt, the same as against the interpreter. The interpreter
# and PyTorch compute in float64 and differ only in summation order: these are
# 5 to 10 times the worst errors measured over the seven interpreter checks
# (2026-12): loss and y 3.3e-14 and 1.2e-14 relative; running variances 2 ulps
# (2.2e-16); running means, which can cancel, 3.9e-15 of rtol and floor;
# gradients 3.2e-14 of rtol and floor, and 1.4e-16 absolute for a bias's
# before a batch norm, 0 but for rounding; updated parameters at most 0.14 of
# their bounds.
INTERP_TOLS = [("loss", 3e-13, 0, 0), ("y", 1e-13, 0, 0), ("*.running_var", 2e-15, 0, 0),
               ("*.running_mean", 4e-14, 0, 4e-14), ("grad.*.bias", 3e-13, 1e-15, 3e-13), ("grad.*", 3e-13, 0, 3e-13),
               ("*.bias", 1e-13, 1e-14, 1e-13), ("*", 1e-13, 0, 1e-13)]
# RMSprop's first step moves w by lr g / (sqrt(1 - rho) |g| + eps), which is
# steep where |g| is near eps (a bias's gradient before a batch norm, 0 but for
# rounding): an updated weight is allowed its gradient's bound carried through
# that slope, element by element.
LR, RHO, EPS = 1e-3, 0.9, 1e-7


def parse_tol(spec):
    """GLOB=RTOL,ATOL[,FLOOR] as (glob, rtol, atol, floor)."""
    glob, values = spec.split("=")
    values = [float(v) for v in values.split(",")]
    return (glob, values[0], values[1], values[2] if len(values) > 2 else 0.0)


def bound(tols, name, want):
    """The element-wise bound of tensor name, whose reference values are want."""
    rule = next((t for t in tols if fnmatch.fnmatchcase(name, t[0])), None)
    assert rule, "no --tol rule matches " + name
    _, rtol, atol, floor = rule
    rms = want.pow(2).mean().sqrt() if want.numel() else 0.0
    return atol + floor * rms + rtol * want.abs()


def main():
    ap = argparse.ArgumentParser()
    for name in ("caec", "cae", "loss"):
        ap.add_argument(name)
    ap.add_argument("l2", type=float)
    ap.add_argument("n", type=int, nargs="?", default=2)
    ap.add_argument("size", nargs="?")  # the same architecture on smaller inputs: faster
    ap.add_argument("trainer", nargs="?")
    ap.add_argument("--tol", type=parse_tol, action="append", default=[])
    a = ap.parse_args()
    caec, cae, loss, l2, n, size, trainer = a.caec, a.cae, a.loss, a.l2, a.n, a.size, a.trainer
    tols = a.tol if trainer else INTERP_TOLS
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
        worst = (-1.0, "")
        for name, got, want in pairs:
            got = got.double()
            if got.shape != want.shape:
                failures.append(f"{kind} {name}: shape {list(got.shape)}, want {list(want.shape)}")
                continue
            limit = bound(tols, name, want)
            if kind == "updated" and name in trainable:
                g = params[name].grad
                limit = limit + bound(tols, "grad." + name, g) * LR / ((1 - RHO) ** 0.5 * g.abs() + EPS)
            err = (got - want).abs()
            ratio = torch.nan_to_num(torch.where(err == 0, torch.zeros_like(err), err / limit), nan=float("inf"))
            i = int(ratio.flatten().argmax()) if ratio.numel() else 0
            r = ratio.flatten()[i].item() if ratio.numel() else 0.0
            at = list(numpy.unravel_index(i, want.shape)) if want.dim() else []
            where = (f"{name}{at}: got {got.flatten()[i].item():.9g} want {want.flatten()[i].item():.9g}, "
                     f"{r:.3g} of its bound") if want.numel() else name
            if r > 1:
                failures.append(f"{kind} {where}")
            if r > worst[0]:
                worst = (r, where)
        who = os.path.basename(trainer) if trainer else "interp"
        print(f"{os.path.basename(cae)} {who} {loss}: {kind:8s} {len(pairs):3d} tensors, worst {worst[1]}")

    compare("output", [("y", result["y"], y.detach())])
    compare("loss", [("loss", result["loss"], value.detach())])
    compare("gradient", [("grad." + p, result["grad." + p], params[p].grad) for p in sorted(trainable)])
    for p in graph["params"]:  # the Keras update, from the PyTorch gradients
        if p["trainable"]:
            keras_update("rmsprop", params[p["name"]], params[p["name"]].grad, {}, 1, lr=1e-3)
    compare("updated", [(p["name"], result[p["name"]], params[p["name"]].detach()) for p in graph["params"]])
    for f in failures:
        print("MISMATCH", f)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
