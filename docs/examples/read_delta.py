#!/usr/bin/env python3
"""An independent reader of deltaserve delta files (format versions 1 and 2), numpy only.

Written from docs/delta-format.md, not from the TypeScript code. Usage:

    python3 docs/examples/read_delta.py FILE.safetensors [...]

prints, per file, one JSON line: {"file", "format_version", "tensors": {name: {"kind",
"nnz", "indices_sha256", "values_sha256"}}} where the hashes are over the decoded flat indices
as little-endian uint32 and the decoded values as little-endian float32 (the test compares
them with the TypeScript decoder's). `load_delta(path)` returns name -> ("sparse", indices,
values) or ("dense", values) for use as a library; `apply_delta` adds it to numpy weights.
"""
import hashlib
import json
import struct
import sys

import numpy as np

DTYPES = {
    "F64": np.float64, "I64": np.int64, "U64": np.uint64, "F32": np.float32, "I32": np.int32,
    "U32": np.uint32, "F16": np.float16, "BF16": np.uint16, "I16": np.int16, "U16": np.uint16,
    "U8": np.uint8, "I8": np.int8, "BOOL": np.uint8, "F8_E4M3": np.uint8, "F8_E5M2": np.uint8,
}
INDEX_STREAMS = {"gaps4": ("::gaps4", np.uint8), "gaps8": ("::gaps8", np.uint8), "gaps16": ("::gaps16", np.uint16), "bitmask": ("::mask", np.uint8)}
VALUE_STREAMS = {"F32": "::values", "F16": "::values", "I8": "::codes8", "I4": "::codes4"}


def read_safetensors(data: bytes):
    (n,) = struct.unpack_from("<Q", data, 0)
    header = json.loads(data[8 : 8 + n].decode("utf-8"))
    metadata = header.pop("__metadata__", {})
    buffer = memoryview(data)[8 + n :]
    entries = {}
    for name, info in header.items():
        begin, end = info["data_offsets"]
        entries[name] = np.frombuffer(buffer[begin:end], dtype=np.dtype(DTYPES[info["dtype"]]).newbyteorder("<"))
    return metadata, entries


def decode_gaps(symbols: np.ndarray, nnz: int, numel: int, escape: int) -> np.ndarray:
    s = symbols.astype(np.int64)
    ends = np.flatnonzero(s != escape)          # each gap ends at a symbol below the escape value
    assert len(ends) == nnz and (nnz == 0 or ends[-1] == len(s) - 1), "gap stream length"
    totals = np.cumsum(s)                         # escapes add their value to the gap they belong to
    gap_sums = np.diff(np.concatenate(([0], totals[ends])))
    positions = np.cumsum(gap_sums + 1) - 1
    assert nnz == 0 or positions[-1] < numel, "index out of range"
    return positions.astype(np.uint32)


def decode_bitmask(mask: np.ndarray, nnz: int, numel: int) -> np.ndarray:
    bits = np.unpackbits(mask, bitorder="little")
    positions = np.flatnonzero(bits).astype(np.uint32)
    assert len(positions) == nnz and (nnz == 0 or positions[-1] < numel), "bitmask"
    return positions


def dequantize(kind: str, codes: np.ndarray, scales: np.ndarray, group: int, nnz: int) -> np.ndarray:
    if kind == "I4":
        low = (codes & 0x0F).astype(np.int8)
        high = (codes >> 4).astype(np.int8)
        both = np.stack([low, high], axis=1).reshape(-1)[:nnz]
        q = np.where(both >= 8, both - 16, both).astype(np.float32)
    else:
        q = codes.astype(np.float32)
    assert len(scales) == -(-nnz // group), "scale count"
    per_entry = np.repeat(scales.astype(np.float32), group)[:nnz]
    return q * per_entry


def load_delta(path: str):
    with open(path, "rb") as f:
        metadata, entries = read_safetensors(f.read())
    assert metadata["format"] == "deltaserve.delta"
    version = metadata["format_version"]
    assert version in ("1", "2"), version
    tensors = json.loads(metadata["tensors"])
    out = {}
    for name, info in tensors.items():
        numel = int(np.prod(info["shape"], dtype=np.int64))
        if info["encoding"] == "dense":
            out[name] = ("dense", entries[name + "::dense"].astype(np.float32))
        elif version == "1":
            out[name] = ("sparse", entries[name + "::indices"], entries[name + "::values"].astype(np.float32))
        else:
            nnz = info["nnz"]
            stream, _ = INDEX_STREAMS[info["index"]]
            b, e = info["index_at"]
            raw = entries[stream][b:e]
            if info["index"] == "bitmask":
                indices = decode_bitmask(raw, nnz, numel)
            elif info["index"] == "gaps4":
                nibbles = np.stack([raw & 0x0F, raw >> 4], axis=1).reshape(-1)  # low nibble first
                used = np.flatnonzero(nibbles != 0x0F)[nnz - 1] + 1 if nnz > 0 else 0
                assert len(nibbles) - used <= 1 and not nibbles[used:].any(), "gap stream padding"
                indices = decode_gaps(nibbles[:used], nnz, numel, 0x0F)
            else:
                indices = decode_gaps(raw, nnz, numel, 0xFF if info["index"] == "gaps8" else 0xFFFF)
            vb, ve = info["values_at"]
            stored = entries[VALUE_STREAMS[info["values"]]][vb:ve]
            if info["values"] in ("I8", "I4"):
                sb, se = info["scales_at"]
                values = dequantize(info["values"], stored, entries["::scales"][sb:se], info["group"], nnz)
            else:
                values = stored.astype(np.float32)
            if info.get("order") == "column":
                # Positions j * rows + i, column by column: back to row-major, sorted as version 1 lists them.
                rows, cols = info["shape"]
                i, j = indices % rows, indices // rows
                flat = (i * cols + j).astype(np.uint32)
                order = np.argsort(flat, kind="stable")
                indices, values = flat[order], values[order]
            out[name] = ("sparse", indices, values)
    return version, out


def apply_delta(weights, delta) -> None:
    """Adds a loaded delta to float32 numpy weights in place (name -> array)."""
    for name, item in delta.items():
        w = weights[name].reshape(-1)
        if item[0] == "dense":
            w += item[1].reshape(-1)
        else:
            w[item[1]] += item[2]


def digest(array: np.ndarray, dtype) -> str:
    return hashlib.sha256(np.ascontiguousarray(array, dtype=np.dtype(dtype).newbyteorder("<")).tobytes()).hexdigest()


if __name__ == "__main__":
    for path in sys.argv[1:]:
        version, delta = load_delta(path)
        summary = {}
        for name, item in delta.items():
            if item[0] == "dense":
                summary[name] = {"kind": "dense", "nnz": len(item[1]), "values_sha256": digest(item[1], np.float32)}
            else:
                summary[name] = {
                    "kind": "sparse",
                    "nnz": len(item[1]),
                    "indices_sha256": digest(item[1], np.uint32),
                    "values_sha256": digest(item[2], np.float32),
                }
        print(json.dumps({"file": path, "format_version": int(version), "tensors": summary}))
