"""A caec model in PyTorch, built from the compiler's graph (`caec ir --json`).

This is the independent oracle of the cross-check: PyTorch's own kernels and
autograd run the same layers, with Keras's batch-norm momentum, Keras's
RMSprop/Adam/SGD, and TensorFlow's SSIM for the DSSIM loss. It takes from the
graph only the topology, the ops and their arguments (kernel size, stride, pad
mode, explicit pads); it resolves 'same' and 'valid' from TensorFlow's rules
and derives every shape itself (TensorFlow's 'same' is asymmetric, so convs pad
by hand and transposed convs crop their full output), and checks caec's shapes
against its own.
"""
import json
import subprocess

import torch
import torch.nn.functional as F


def load_graph(caec, cae_file, size=None):
    args = [caec, "ir", "--json", cae_file] + (["--size", str(size)] if size else [])
    out = subprocess.run(args, check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def conv_pad(size, k, stride, mode, given):
    """A conv's (before, after) padding along an axis of size: TensorFlow's SAME
    pads (ceil(size/stride) - 1) * stride + k - size in all, the larger half
    after; VALID pads nothing; explicit pads are the model's own."""
    if mode == "explicit":
        return given
    if mode == "valid":
        return 0, 0
    total = max((-(-size // stride) - 1) * stride + k - size, 0)
    return total // 2, total - total // 2


def conv_t_crop(size, k, stride, mode, given):
    """A transposed conv's (before, after) crop of its full output, (size - 1) *
    stride + k, along an axis: Keras's Conv2DTranspose outputs size * stride
    with 'same' (TensorFlow's conv2d_transpose crops SAME's padding of the conv
    it transposes, the larger half after) and size * stride + max(k - stride, 0)
    with 'valid'; explicit crops are the model's own, as PyTorch's padding. A
    negative after (k < stride) is the rows Keras adds past the full output."""
    if mode == "explicit":
        return given
    full = (size - 1) * stride + k
    out = size * stride if mode == "same" else size * stride + max(k - stride, 0)
    before = max(full - out, 0) // 2 if mode == "same" else 0
    return before, full - before - out


def spatial_pads(n, x, resolve):
    """(top, bottom, left, right) of conv or convT node n on input x."""
    given = n["pad"] if n["pad_mode"] == "explicit" else (None, None, None, None)
    top, bottom = resolve(x.shape[2], n["k"], n["stride"], n["pad_mode"], given[0:2])
    left, right = resolve(x.shape[3], n["k"], n["stride"], n["pad_mode"], given[2:4])
    return top, bottom, left, right


def forward(graph, params, x, training=True):
    """Runs the graph on x; params maps names to tensors (updated in place for BN running stats)."""
    by_node = {}
    for p in graph["params"]:
        by_node.setdefault(p["node"], {})[p["role"]] = params[p["name"]]
    acts = []
    for n in graph["nodes"]:
        ins = [acts[i] for i in n["inputs"]]
        p = by_node.get(n["id"], {})
        op = n["op"]
        if op == "input":
            y = x
        elif op == "conv":
            top, bottom, left, right = spatial_pads(n, ins[0], conv_pad)
            y = F.conv2d(F.pad(ins[0], (left, right, top, bottom)), p["weight"], p.get("bias"), stride=n["stride"])
        elif op == "convT":
            top, bottom, left, right = spatial_pads(n, ins[0], conv_t_crop)
            extra = (max(-bottom, 0), max(-right, 0))  # past the full output: the bias alone, as in Keras
            full = F.conv_transpose2d(ins[0], p["weight"], p.get("bias"), stride=n["stride"], output_padding=extra)
            y = full[:, :, top:full.shape[2] - max(bottom, 0), left:full.shape[3] - max(right, 0)]
        elif op == "bn":
            y = F.batch_norm(ins[0], p["running_mean"], p["running_var"], p["weight"], p["bias"], training=training,
                             momentum=1 - n["momentum"], eps=n["eps"])
        elif op == "gn":
            y = F.group_norm(ins[0], n["groups"], p["weight"], p["bias"], eps=n["eps"])
        elif op == "relu":
            y = F.relu(ins[0])
        elif op == "leaky_relu":
            y = F.leaky_relu(ins[0], n["alpha"])
        elif op == "sigmoid":
            y = torch.sigmoid(ins[0])
        elif op == "tanh":
            y = torch.tanh(ins[0])
        elif op == "add":
            y = ins[0] + ins[1]
        elif op == "concat":
            y = torch.cat(ins, dim=1)
        elif op in ("identity", "spatial_dropout"):  # the cross-check runs without dropout
            y = ins[0]
        else:
            raise ValueError("unknown op " + op)
        # The shapes are the oracle's own: caec's must agree.
        assert list(y.shape[1:]) == n["shape"], (n["name"], list(y.shape), n["shape"])
        acts.append(y)
    return acts[graph["output"]]


def ssim(y, t):
    """tf.image.ssim(max_val=1) per image: 11x11 Gaussian window, sigma 1.5, valid region."""
    coords = torch.arange(11, dtype=y.dtype) - 5
    g = torch.exp(-coords ** 2 / (2 * 1.5 ** 2))
    g = g / g.sum()
    window = (g[:, None] * g[None, :]).expand(y.shape[1], 1, 11, 11)
    blur = lambda v: F.conv2d(v, window, groups=y.shape[1])
    mu_y, mu_t = blur(y), blur(t)
    var_y = blur(y * y) - mu_y ** 2
    var_t = blur(t * t) - mu_t ** 2
    cov = blur(y * t) - mu_y * mu_t
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    s = ((2 * mu_y * mu_t + c1) * (2 * cov + c2)) / ((mu_y ** 2 + mu_t ** 2 + c1) * (var_y + var_t + c2))
    return s.mean(dim=(1, 2, 3))


def loss_fn(graph, params, y, t, loss, l2):
    value = ((y - t) ** 2).mean() if loss == "mse" else ((1 - ssim(y, t)) / 2).mean()
    for p in graph["params"]:
        if p["l2"]:
            value = value + l2 * (params[p["name"]] ** 2).sum()
    return value


def keras_update(name, w, g, state, t, lr, rho=0.9, eps=1e-7, beta1=0.9, beta2=0.999, momentum=0.9):
    """One Keras optimizer step on tensor w with gradient g (t counts steps from 1); state is a dict."""
    with torch.no_grad():
        if name == "rmsprop":
            ms = state.setdefault("ms", torch.zeros_like(w))
            ms.mul_(rho).add_((1 - rho) * g * g)
            w.sub_(lr * g / (ms.sqrt() + eps))
        elif name == "adam":
            m = state.setdefault("m", torch.zeros_like(w))
            v = state.setdefault("v", torch.zeros_like(w))
            m.mul_(beta1).add_((1 - beta1) * g)
            v.mul_(beta2).add_((1 - beta2) * g * g)
            w.sub_(lr * (1 - beta2 ** t) ** 0.5 / (1 - beta1 ** t) * m / (v.sqrt() + eps))
        else:
            v = state.setdefault("v", torch.zeros_like(w))
            v.mul_(momentum).sub_(lr * g)
            w.add_(v)
