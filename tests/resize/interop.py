"""interop.py RESIZE_INTEROP: runtime/data/resize.c against PyTorch.

resize_bilinear must equal torch.nn.functional.interpolate(mode='bilinear',
align_corners=False), which is TensorFlow 2's tf.image.resize default that the
seed used, to float32 rounding; slice_prepare must equal min-max, interpolate,
min-max. PyTorch writes the images and output sizes, resize_interop (C)
resizes them, PyTorch compares.
"""
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "torch"))
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
import safetensors_io  # noqa: E402

TOL_RESIZE, TOL_PREPARE = 1e-6, 1e-5  # min-max stretches rounding by up to 1 / (range after resizing)

# (in_h, in_w, out_h, out_w): the seed's 256 -> 128, IXI and Colin27 sagittal
# slices, odd and degenerate shapes, upsampling.
sizes = [(256, 256, 128, 128), (256, 150, 128, 128), (181, 217, 128, 128), (7, 5, 13, 3), (3, 3, 1, 1),
         (128, 128, 256, 256), (1, 9, 4, 4), (10, 1, 3, 7), (64, 48, 64, 48), (100, 37, 61, 200)]
gen = torch.Generator().manual_seed(7)
sizes += [tuple(int(v) for v in torch.randint(1, 300, (4,), generator=gen)) for _ in range(6)]


def minmax(x):
    lo, hi = x.min(), x.max()
    return (x - lo) / (hi - lo) if hi > lo else torch.zeros_like(x)


def interp(x, oh, ow):
    return F.interpolate(x[None, None], size=(oh, ow), mode="bilinear", align_corners=False)[0, 0]


tensors = []
for k, (h, w, oh, ow) in enumerate(sizes):
    image = torch.rand(h, w, generator=gen)  # resize_bilinear sees [0, 1], as in slice_prepare
    tensors += [(f"c{k}.image", image), (f"c{k}.size", torch.tensor([oh, ow]))]

with tempfile.TemporaryDirectory() as tmp:
    src, dst = os.path.join(tmp, "in.safetensors"), os.path.join(tmp, "out.safetensors")
    safetensors_io.save(src, tensors)
    subprocess.run([sys.argv[1], src, dst], check=True)
    got = safetensors_io.load(dst)

worst = {"resized": 0.0, "prepared": 0.0}
ok = True
for k, (h, w, oh, ow) in enumerate(sizes):
    image = tensors[2 * k][1]
    want = {"resized": interp(image, oh, ow), "prepared": minmax(interp(minmax(image), oh, ow))}
    errs = []
    for what, tol in (("resized", TOL_RESIZE), ("prepared", TOL_PREPARE)):
        out = got[f"c{k}.{what}"]
        assert out.shape == (oh, ow), (k, what, out.shape)
        err = (out.double() - want[what].double()).abs().max().item()
        worst[what] = max(worst[what], err)
        errs.append(f"{what} {err:.2e}")
        ok &= err <= tol
    print(f"{h}x{w} -> {oh}x{ow}: max abs error {', '.join(errs)}")
print(f"worst: resized {worst['resized']:.2e} (tolerance {TOL_RESIZE:g}), "
      f"prepared {worst['prepared']:.2e} (tolerance {TOL_PREPARE:g})")
sys.exit(0 if ok else 1)
