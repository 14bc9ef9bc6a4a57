"""The zoo's base and fine-tunes as PyTorch state dicts in safetensors, the way a training run
saves them, plus the coarse4 calibration inputs as PNG files: the inputs of
docs/your-models.md, where deltas are made from state dicts instead of ONNX fine-tunes.

The zoo's own TinyViT keeps its weights in [in, out] layout so that every ONNX initializer
carries its PyTorch name. A user's model usually does not: it uses nn.Linear ([out, in]
weights, stored transposed by the exporter under generated names) and its own module names.
TinyViTLinear below is that model: the same function as TinyViT, written with nn.Linear and
timm-like names (`blocks.0.attn.qkv.weight`, `patch_embed.proj.weight`, `head.weight`). Its
state dicts are what `deltaserve compress --finetuned-weights` is tested on: the names and the
layout differ from the ONNX initializers, so the map between them must be found by value.

The values are the committed ONNX initializers, loaded into TinyViTLinear (transposed where
nn.Linear wants [out, in]); the script checks that transposing back gives every initializer
bit for bit, and that TinyViTLinear's logits match the ONNX graph's (numpy interpreter).

Run after train_zoo.py:  /usr/bin/python3 models/recipe/state_dicts.py   (a few seconds)
Needs python3-torch, python3-onnx, python3-numpy (Debian); no safetensors package.
Writes models/base/model.safetensors, models/tasks/<task>/finetuned.safetensors (the AdamR
variants are left out to keep the committed files under 7 MB; `--adamr` writes them too) and
models/tasks/coarse4/calib-png/NNNN.png (the 256 images of calib.safetensors).
"""
import argparse
import json
import os
import struct
import sys
import zlib

import numpy as np
import onnx
import torch
from onnx import numpy_helper
from torch import nn

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import onnx_tools  # noqa: E402
from safetensors_u8 import read_eval_set  # noqa: E402
from vit import LayerNorm  # noqa: E402

MODELS = os.path.dirname(HERE)
TASKS = ["rotated", "inverted", "coarse4", "footwear", "noisy", "flipped", "digits"]
PNG_TASK = "coarse4"


class Attention(nn.Module):
    def __init__(self, dim, heads, tokens):
        super().__init__()
        self.tokens, self.dim, self.heads, self.head_dim = tokens, dim, heads, dim // heads
        self.scale = 1.0 / (self.head_dim ** 0.5)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        qkv = self.qkv(x).reshape(-1, self.tokens, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = torch.softmax(torch.matmul(q, k.transpose(-2, -1)) * self.scale, dim=-1)
        return self.proj(torch.matmul(attn, v).permute(0, 2, 1, 3).reshape(-1, self.tokens, self.dim))


class Mlp(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(nn.functional.gelu(self.fc1(x)))


class Block(nn.Module):
    def __init__(self, dim, heads, mlp_ratio, tokens):
        super().__init__()
        self.norm1 = LayerNorm(dim)
        self.attn = Attention(dim, heads, tokens)
        self.norm2 = LayerNorm(dim)
        self.mlp = Mlp(dim, dim * mlp_ratio)

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class PatchEmbed(nn.Module):
    def __init__(self, patch, dim):
        super().__init__()
        self.proj = nn.Linear(patch * patch, dim)


class TinyViTLinear(nn.Module):
    """TinyViT (vit.py) written the usual way: nn.Linear layers, timm-like names."""

    def __init__(self, image=28, patch=7, dim=64, depth=4, heads=4, mlp_ratio=4, classes=10):
        super().__init__()
        self.patch, self.grid = patch, image // patch
        tokens = self.grid * self.grid + 1
        self.patch_embed = PatchEmbed(patch, dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, tokens, dim))
        self.blocks = nn.ModuleList(Block(dim, heads, mlp_ratio, tokens) for _ in range(depth))
        self.norm = LayerNorm(dim)
        self.head = nn.Linear(dim, classes)

    def forward(self, pixels):
        g, p = self.grid, self.patch
        x = pixels.reshape(-1, g, p, g, p).permute(0, 1, 3, 2, 4).reshape(-1, g * g, p * p)
        x = self.patch_embed.proj(x)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1) + self.pos_embed
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x[:, 0]))


def onnx_name_of(key):
    """TinyViTLinear state-dict key -> (TinyViT / ONNX initializer name, transposed?)."""
    parts = key.split(".")
    if key.startswith("patch_embed.proj."):
        return f"patch_{parts[-1]}", parts[-1] == "weight"
    if parts[0] == "head":
        return f"head_{parts[-1]}", parts[-1] == "weight"
    if parts[0] == "blocks" and parts[3] in ("qkv", "proj", "fc1", "fc2"):
        return f"blocks.{parts[1]}.{parts[2]}.{parts[3]}_{parts[4]}", parts[4] == "weight"
    return key, False  # norms, cls_token, pos_embed keep their names


def state_dict_from_onnx(path):
    inits = {i.name: numpy_helper.to_array(i) for i in onnx.load(path).graph.initializer}
    model = TinyViTLinear()
    state = {}
    for key, param in model.state_dict().items():
        name, transposed = onnx_name_of(key)
        value = inits.pop(name)
        value = np.array(value.T if transposed else value, order="C")
        assert value.shape == tuple(param.shape) and value.dtype == np.float32, (key, value.shape, param.shape)
        state[key] = torch.from_numpy(value)
    assert not inits, f"{path}: initializers without a state-dict key: {sorted(inits)}"
    model.load_state_dict(state)
    return model.eval()


def check_exact(path, model):
    """Transposing back gives every ONNX initializer bit for bit; the logits agree."""
    inits = {i.name: numpy_helper.to_array(i) for i in onnx.load(path).graph.initializer}
    for key, value in model.state_dict().items():
        name, transposed = onnx_name_of(key)
        back = value.numpy().T if transposed else value.numpy()
        if not np.array_equal(back.view(np.uint32), inits[name].view(np.uint32)):
            raise AssertionError(f"{path}: {key} does not hold {name} bit for bit")
    pixels = torch.from_numpy(np.random.default_rng(0).random((8, 1, 28, 28), dtype=np.float32))
    return onnx_tools.assert_matches_torch(path, model, pixels)


def write_safetensors(path, tensors, metadata):
    """F32 tensors in the given order, header padded to 8 bytes (what safetensors writes)."""
    header, offset, blobs = {"__metadata__": metadata}, 0, []
    for name, value in tensors.items():
        data = np.ascontiguousarray(value, dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(value.shape), "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    encoded = json.dumps(header, separators=(",", ":")).encode("utf-8")
    encoded += b" " * ((8 - (8 + len(encoded)) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(encoded)))
        f.write(encoded)
        for blob in blobs:
            f.write(blob)


def write_png_grey(path, image):
    """8-bit greyscale PNG, no interlace, filter 0 on every row."""
    height, width = image.shape
    raw = b"".join(b"\x00" + image[row].tobytes() for row in range(height))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n")
        f.write(chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)))
        f.write(chunk(b"IDAT", zlib.compress(raw, 9)))
        f.write(chunk(b"IEND", b""))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--adamr", action="store_true", help="also the AdamR fine-tunes (not committed)")
    parser.add_argument("--out", default=MODELS, help="output root (default models/)")
    args = parser.parse_args()
    torch.set_num_threads(2)
    jobs = [("base/model.onnx", "base/model.safetensors")]
    for task in TASKS:
        variants = ["finetuned"] + (["finetuned-adamr"] if args.adamr else [])
        for variant in variants:
            if os.path.exists(os.path.join(MODELS, "tasks", task, f"{variant}.onnx")):
                jobs.append((f"tasks/{task}/{variant}.onnx", f"tasks/{task}/{variant}.safetensors"))
    for source, target in jobs:
        model = state_dict_from_onnx(os.path.join(MODELS, source))
        err = check_exact(os.path.join(MODELS, source), model)
        out = os.path.join(args.out, target)
        os.makedirs(os.path.dirname(out), exist_ok=True)
        state = {k: v.numpy() for k, v in model.state_dict().items()}
        write_safetensors(out, state, {"format": "pt", "source": f"models/{source} as TinyViTLinear's state_dict()"})
        print(f"wrote {out} ({os.path.getsize(out)} bytes, {len(state)} tensors, logits err {err:.1e})")

    images, _, _ = read_eval_set(os.path.join(MODELS, "tasks", PNG_TASK, "calib.safetensors"))
    png_dir = os.path.join(args.out, "tasks", PNG_TASK, "calib-png")
    os.makedirs(png_dir, exist_ok=True)
    for i, image in enumerate(images):
        write_png_grey(os.path.join(png_dir, f"{i:04d}.png"), image)
    total = sum(os.path.getsize(os.path.join(png_dir, f)) for f in os.listdir(png_dir))
    print(f"wrote {len(images)} PNG files to {png_dir} ({total} bytes)")


if __name__ == "__main__":
    main()
