"""Hand-written safetensors writer/reader for the u8 evaluation sets (no safetensors package)."""
import json
import struct

import numpy as np


def write_eval_set(path, images, labels, metadata):
    images = np.ascontiguousarray(images, dtype=np.uint8)
    labels = np.ascontiguousarray(labels, dtype=np.uint8)
    n = images.shape[0]
    assert images.shape[1:] == (28, 28) and labels.shape == (n,), (images.shape, labels.shape)
    image_bytes = images.tobytes()
    header = {
        "__metadata__": {k: str(v) for k, v in metadata.items()},
        "images": {"dtype": "U8", "shape": list(images.shape),
                   "data_offsets": [0, len(image_bytes)]},
        "labels": {"dtype": "U8", "shape": [n],
                   "data_offsets": [len(image_bytes), len(image_bytes) + n]},
    }
    encoded = json.dumps(header, separators=(",", ":")).encode("utf-8")
    # Spaces pad the header so the data starts 8-byte aligned, as the format recommends.
    encoded += b" " * ((8 - (8 + len(encoded)) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(encoded)))
        f.write(encoded)
        f.write(image_bytes)
        f.write(labels.tobytes())


def read_eval_set(path):
    with open(path, "rb") as f:
        data = f.read()
    (header_len,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + header_len])
    base = 8 + header_len
    assert base % 8 == 0, f"{path}: data starts at {base}, not 8-byte aligned"
    out = {}
    for name in ("images", "labels"):
        spec = header[name]
        assert spec["dtype"] == "U8", f"{path}: {name} dtype {spec['dtype']}"
        start, end = spec["data_offsets"]
        out[name] = np.frombuffer(data[base + start:base + end], dtype=np.uint8).reshape(spec["shape"]).copy()
    assert base + header["labels"]["data_offsets"][1] == len(data), f"{path}: trailing bytes"
    return out["images"], out["labels"], header["__metadata__"]
