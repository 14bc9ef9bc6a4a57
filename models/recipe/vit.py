"""Tiny vision transformer for 28x28 greyscale images.

Every weight is a plain nn.Parameter used through torch.matmul, never nn.Linear:
nn.Linear exports as MatMul on a transposed copy of its weight, and constant folding then
stores that copy under a generated name ("onnx::MatMul_123"). Keeping weights in
[in, out] layout makes every ONNX initializer carry its PyTorch parameter name, which is
what the gateway's deltas are keyed by.
"""
import math

import torch
from torch import nn


class LayerNorm(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.dim = dim
        self.weight = nn.Parameter(torch.ones(dim))
        self.bias = nn.Parameter(torch.zeros(dim))

    def forward(self, x):
        return nn.functional.layer_norm(x, (self.dim,), self.weight, self.bias, 1e-5)


def dense(in_dim, out_dim):
    w = nn.Parameter(torch.empty(in_dim, out_dim))
    nn.init.trunc_normal_(w, std=0.02)
    return w, nn.Parameter(torch.zeros(out_dim))


class Attention(nn.Module):
    def __init__(self, dim, heads, tokens):
        super().__init__()
        self.tokens = tokens
        self.dim = dim
        self.heads = heads
        self.head_dim = dim // heads
        self.scale = 1.0 / math.sqrt(self.head_dim)
        self.qkv_weight, self.qkv_bias = dense(dim, 3 * dim)
        self.proj_weight, self.proj_bias = dense(dim, dim)

    def forward(self, x):
        # Python ints (not x.shape) keep token and channel sizes static in the graph.
        tokens, dim = self.tokens, self.dim
        qkv = torch.matmul(x, self.qkv_weight) + self.qkv_bias
        # -1 for the batch axis keeps it dynamic in the exported graph.
        qkv = qkv.reshape(-1, tokens, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        scores = torch.matmul(q, k.transpose(-2, -1)) * self.scale
        attn = torch.softmax(scores, dim=-1)
        out = torch.matmul(attn, v).permute(0, 2, 1, 3).reshape(-1, tokens, dim)
        return torch.matmul(out, self.proj_weight) + self.proj_bias


class Mlp(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1_weight, self.fc1_bias = dense(dim, hidden)
        self.fc2_weight, self.fc2_bias = dense(hidden, dim)

    def forward(self, x):
        h = nn.functional.gelu(torch.matmul(x, self.fc1_weight) + self.fc1_bias)
        return torch.matmul(h, self.fc2_weight) + self.fc2_bias


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


class TinyViT(nn.Module):
    def __init__(self, image=28, patch=7, dim=64, depth=4, heads=4, mlp_ratio=4, classes=10):
        super().__init__()
        assert image % patch == 0
        self.config = dict(image=image, patch=patch, dim=dim, depth=depth, heads=heads,
                           mlp_ratio=mlp_ratio, classes=classes)
        self.patch = patch
        self.grid = image // patch
        self.patch_weight, self.patch_bias = dense(patch * patch, dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.empty(1, self.grid * self.grid + 1, dim))
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        self.blocks = nn.ModuleList(Block(dim, heads, mlp_ratio, self.grid * self.grid + 1)
                                    for _ in range(depth))
        self.norm = LayerNorm(dim)
        self.head_weight, self.head_bias = dense(dim, classes)

    def forward(self, pixels):
        g, p = self.grid, self.patch
        # [B,1,28,28] -> [B, g*g, p*p]: non-overlapping patches, row-major.
        x = pixels.reshape(-1, g, p, g, p).permute(0, 1, 3, 2, 4).reshape(-1, g * g, p * p)
        x = torch.matmul(x, self.patch_weight) + self.patch_bias
        cls = self.cls_token.expand(x.shape[0], -1, -1)
        x = torch.cat([cls, x], dim=1) + self.pos_embed
        for block in self.blocks:
            x = block(x)
        x = self.norm(x[:, 0])
        return torch.matmul(x, self.head_weight) + self.head_bias


def count_parameters(model):
    return sum(p.numel() for p in model.parameters())
