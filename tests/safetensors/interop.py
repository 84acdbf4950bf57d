"""interop.py ST_INTEROP: PyTorch and runtime/util/safetensors.c read each other's files.

PyTorch writes in.safetensors; st_interop (C) checks every value and writes
out.safetensors with the tensors reversed and changed (F32 x*2, F64 x+1,
I64 x+1, U8 255-x); PyTorch checks that file in turn.
"""
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "torch"))
import torch  # noqa: E402
import safetensors_io  # noqa: E402

tensors = [
    ("enc.conv1.weight", (torch.arange(36, dtype=torch.float32) * 0.5 - 3).reshape(4, 1, 3, 3)),
    ("bn.running_var", 1 / torch.arange(1, 5, dtype=torch.float64)),
    ("step", torch.tensor(123456789012, dtype=torch.int64)),
    ("mask", torch.tensor([[0, 1, 2], [253, 254, 255]], dtype=torch.uint8)),
    ("empty", torch.zeros(0, 3)),
    ("d\u00e9codeur.poids", torch.tensor([1e-30, -7.5], dtype=torch.float32)),
]
changed = {torch.float32: lambda x: x * 2, torch.float64: lambda x: x + 1,
           torch.int64: lambda x: x + 1, torch.uint8: lambda x: 255 - x}

with tempfile.TemporaryDirectory() as tmp:
    src, dst = os.path.join(tmp, "in.safetensors"), os.path.join(tmp, "out.safetensors")
    safetensors_io.save(src, tensors, metadata={"format": "pt", "model": "res_unet"})
    back = safetensors_io.load(src)  # the Python side agrees with itself first
    assert list(back) == [n for n, _ in tensors], list(back)
    for name, t in tensors:
        assert back[name].dtype == t.dtype and torch.equal(back[name], t), name

    subprocess.run([sys.argv[1], src, dst], check=True)

    got = safetensors_io.load(dst)
    assert list(got) == [n for n, _ in reversed(tensors)], list(got)
    for name, t in tensors:
        want = changed[t.dtype](t)
        assert got[name].dtype == t.dtype and got[name].shape == t.shape, (name, got[name])
        assert torch.equal(got[name], want), (name, got[name], want)
    meta = safetensors_io.load_metadata(dst)
    assert meta == {"written_by": "caec", "source": "res_unet"}, meta
print("torch -> C -> torch: all tensors and metadata match")
