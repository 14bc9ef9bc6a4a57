"""Raw datasets and the per-task image transforms, all in the u8 domain.

Every task's images are produced as uint8 [N, 28, 28] AFTER the task transform, exactly
as committed in eval.safetensors; the model always sees images / 255. Training on the
same quantised images keeps the training and evaluation inputs identical in kind.
"""
import gzip
import struct

import numpy as np
import torch

FASHION_DIR = "/usr/share/datasets/fashion-mnist"

FASHION_LABELS = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                  "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]

# Tops are every upper-body or one-piece garment (a dress covers the torso like a top);
# bottoms are trousers only; footwear is sandal, sneaker, ankle boot.
COARSE4_LABELS = ["tops", "bottoms", "footwear", "bags"]
COARSE4_OF_FASHION = np.array([0, 1, 0, 0, 0, 2, 0, 2, 3, 2], dtype=np.uint8)

FOOTWEAR_LABELS = ["not footwear", "footwear"]
FOOTWEAR_OF_FASHION = np.array([0, 0, 0, 0, 0, 1, 0, 1, 0, 1], dtype=np.uint8)

DIGIT_LABELS = [str(d) for d in range(10)]


def _read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    magic, count = struct.unpack(">II", data[:8])
    if magic == 2051:
        rows, cols = struct.unpack(">II", data[8:16])
        return np.frombuffer(data, dtype=np.uint8, offset=16).reshape(count, rows, cols).copy()
    if magic == 2049:
        return np.frombuffer(data, dtype=np.uint8, offset=8).copy()
    raise ValueError(f"{path}: unknown IDX magic {magic}")


def load_fashion(split):
    """split 'train' (60000) or 'test' (10000): (uint8 [N,28,28], uint8 [N])."""
    prefix = "train" if split == "train" else "t10k"
    images = _read_idx(f"{FASHION_DIR}/{prefix}-images-idx3-ubyte.gz")
    labels = _read_idx(f"{FASHION_DIR}/{prefix}-labels-idx1-ubyte.gz")
    assert images.shape == (len(labels), 28, 28), images.shape
    return images, labels


def load_digits_28():
    """sklearn's 1797 8x8 digits (0..16) upscaled bilinearly to 28x28, as uint8 0..255."""
    from sklearn.datasets import load_digits
    digits = load_digits()
    small = torch.from_numpy(digits.images.astype(np.float32) / 16.0).unsqueeze(1)
    big = torch.nn.functional.interpolate(small, size=(28, 28), mode="bilinear",
                                          align_corners=False)
    return to_u8(big.squeeze(1).numpy()), digits.target.astype(np.uint8)


def to_u8(x):
    """Float images in [0,1] -> uint8 0..255, rounded to nearest."""
    return np.clip(np.rint(np.clip(x, 0.0, 1.0) * 255.0), 0, 255).astype(np.uint8)


def rotate90(images):
    # Counter-clockwise quarter turn in image coordinates (numpy's rot90 on the H,W axes).
    return np.ascontiguousarray(np.rot90(images, k=1, axes=(1, 2)))


def invert(images):
    return 255 - images


def flip_vertical(images):
    return np.ascontiguousarray(images[:, ::-1, :])


def add_noise(images, sigma, seed):
    rng = np.random.default_rng(seed)
    x = images.astype(np.float32) / 255.0
    return to_u8(x + rng.normal(0.0, sigma, size=x.shape).astype(np.float32))


def to_input(images_u8):
    """uint8 [N,28,28] -> float model input [N,1,28,28] in [0,1]."""
    return torch.from_numpy(images_u8).float().div_(255.0).unsqueeze(1)
