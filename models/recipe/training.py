"""Seeded training loops: base pre-training, full-parameter fine-tuning, optional AdamR pull."""
import math
import random
import time

import numpy as np
import torch

from datasets import to_input


def seed_everything(seed):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def warmup_cosine(total_steps, warmup_fraction):
    warmup = max(1, int(total_steps * warmup_fraction))

    def factor(step):
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total_steps - warmup)
        return 0.5 * (1.0 + math.cos(math.pi * progress))
    return factor


def batches(n, batch_size, generator):
    order = torch.randperm(n, generator=generator)
    for start in range(0, n, batch_size):
        yield order[start:start + batch_size]


def train(model, images_u8, labels, *, classes, epochs, batch_size, lr, weight_decay, seed,
          warmup_fraction, hflip=False, pull_to=None, pull_lambda=0.0, log=print, tag=""):
    """Full-parameter training with AdamW and warmup+cosine LR; only the first `classes` logits
    enter the loss. With pull_to (a list of base tensors, same order as model.parameters())
    this is AdamR: after each AdamW step, theta <- theta - lr_t * lambda * (theta - theta_base).
    Returns (seconds, steps)."""
    seed_everything(seed)
    generator = torch.Generator().manual_seed(seed)
    x_all = to_input(images_u8)
    y_all = torch.from_numpy(labels.astype(np.int64))
    n = len(y_all)
    steps_per_epoch = math.ceil(n / batch_size)
    total = steps_per_epoch * epochs
    params = list(model.parameters())
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, warmup_cosine(total, warmup_fraction))
    model.train()
    start = time.time()
    step = 0
    for epoch in range(epochs):
        running, seen = 0.0, 0
        for idx in batches(n, batch_size, generator):
            x, y = x_all[idx], y_all[idx]
            if hflip:
                flip = torch.rand(len(idx), generator=generator) < 0.5
                x = torch.where(flip[:, None, None, None], x.flip(-1), x)
            loss = torch.nn.functional.cross_entropy(model(x)[:, :classes], y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if pull_to is not None:
                # Decoupled pull toward the base, scaled by the LR this step used (AdamR).
                rate = opt.param_groups[0]["lr"] * pull_lambda
                with torch.no_grad():
                    for p, p0 in zip(params, pull_to):
                        p.sub_(rate * (p - p0))
            sched.step()
            step += 1
            running += float(loss) * len(idx)
            seen += len(idx)
        log(f"{tag} epoch {epoch + 1}/{epochs} loss {running / seen:.4f} "
            f"({time.time() - start:.0f}s, {step} steps)")
    model.eval()
    return time.time() - start, total


@torch.no_grad()
def accuracy(model, images_u8, labels, classes, batch_size=500):
    model.eval()
    correct = 0
    for start in range(0, len(labels), batch_size):
        x = to_input(images_u8[start:start + batch_size])
        pred = model(x)[:, :classes].argmax(dim=1).numpy()
        correct += int((pred == labels[start:start + batch_size]).sum())
    return correct / len(labels)


def delta_stats(model, base_state):
    deltas = [(p.detach() - base_state[name]).reshape(-1)
              for name, p in model.state_dict().items()]
    flat = torch.cat(deltas).abs()
    return {"meanAbs": float(flat.mean()), "maxAbs": float(flat.max()),
            "rms": float(flat.pow(2).mean().sqrt()), "parameters": int(flat.numel())}
