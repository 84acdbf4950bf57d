"""safetensors_io.py: safetensors files from PyTorch, by hand.

torch 1.13 (Debian's python3-torch) predates the safetensors package, so this
writes and reads the format directly: a little-endian u64 header length, the
JSON header, then the tensors' bytes, little-endian and row-major. It speaks
the same dtypes as runtime/util/safetensors.c (F32, F64, I64, U8) and, like it, keeps
the caller's order and pads the header with spaces to a multiple of 8 bytes.

    save("w.safetensors", {"conv1.weight": w, "step": torch.tensor(3)}, metadata={"format": "pt"})
    tensors = load("w.safetensors")        # dict name -> tensor, in file order
    meta = load_metadata("w.safetensors")  # dict str -> str

It is for tests and for moving weights between PyTorch and caec; it trusts the
files it reads (runtime/util/safetensors.c is the careful reader).
"""
import json
import os
import struct
import sys

import torch

DTYPES = {"F32": torch.float32, "F64": torch.float64, "I64": torch.int64, "U8": torch.uint8}
NAMES = {dtype: name for name, dtype in DTYPES.items()}
assert sys.byteorder == "little", "tensor bytes are written as they are in memory"


def _read_header(f):
    (n,) = struct.unpack("<Q", f.read(8))
    return n, json.loads(f.read(n).decode("utf-8"))


def load(path):
    """The tensors of a file, as a dict name -> tensor in the header's order."""
    with open(path, "rb") as f:
        n, header = _read_header(f)
        data = f.read()
    header.pop("__metadata__", None)
    out = {}
    for name, info in header.items():
        dtype = DTYPES[info["dtype"]]
        begin, end = info["data_offsets"]
        if end > begin:
            flat = torch.frombuffer(bytearray(data[begin:end]), dtype=dtype)
        else:  # frombuffer refuses an empty buffer
            flat = torch.empty(0, dtype=dtype)
        out[name] = flat.reshape(info["shape"])
    return out


def load_metadata(path):
    with open(path, "rb") as f:
        return _read_header(f)[1].get("__metadata__", {})


def save(path, tensors, metadata=None):
    """Writes tensors (a dict or a list of (name, tensor) pairs) in order, atomically."""
    items = list(tensors.items()) if isinstance(tensors, dict) else list(tensors)
    header, blobs, at = {}, [], 0
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    for name, t in items:
        if name in header:
            raise ValueError(f"tensor {name!r} appears twice")
        if t.dtype not in NAMES:
            raise ValueError(f"tensor {name!r}: dtype {t.dtype} is not one of {list(DTYPES)}")
        blob = t.detach().cpu().contiguous().numpy().tobytes()  # numpy comes with torch; much faster than tolist
        header[name] = {"dtype": NAMES[t.dtype], "shape": list(t.shape), "data_offsets": [at, at + len(blob)]}
        blobs.append(blob)
        at += len(blob)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    tmp = f"{path}.tmp.{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            f.write(struct.pack("<Q", len(text)))
            f.write(text)
            for blob in blobs:
                f.write(blob)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
