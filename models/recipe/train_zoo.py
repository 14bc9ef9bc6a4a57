"""Train the demo model zoo: one tiny ViT base on Fashion-MNIST and full-parameter fine-tunes
that share its ONNX graph exactly (only initializer values differ).

Run from anywhere:  /usr/bin/python3 models/recipe/train_zoo.py
Outputs (relative to models/): base/model.onnx, base/base.json,
tasks/<task>/{finetuned.onnx, finetuned-adamr.onnx?, eval.safetensors, task.json}.
"""
import argparse
import copy
import json
import os
import sys
import time

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import datasets as ds  # noqa: E402
import onnx_tools  # noqa: E402
import training  # noqa: E402
from safetensors_u8 import read_eval_set, write_eval_set  # noqa: E402
from vit import TinyViT, count_parameters  # noqa: E402

MODELS = os.path.dirname(HERE)
WORK = os.path.join(MODELS, ".work")
SEED = 1234
COMMAND = "/usr/bin/python3 models/recipe/train_zoo.py"

BASE = dict(epochs=7, batch_size=128, lr=2e-3, weight_decay=0.05, warmup_fraction=0.1)
FASHION_EVAL_SAMPLES = 2000
DIGITS_EVAL_SAMPLES = 500
NOISE_SIGMA = 0.3
# Fashion fine-tunes: one pass over a seeded subset at a low LR, so deltas stay SFT-small.
FT = dict(samples=12000, epochs=1, batch_size=64, lr=3e-4, weight_decay=0.0, warmup_fraction=0.1)
# digits is far from the base and small (1297 training images): more passes, higher LR.
FT_DIGITS = dict(FT, samples=None, epochs=12, lr=1e-3)
# AdamR pull strength per task, chosen by a sweep on this base (see README): the largest
# lambda that kept accuracy within about a point of the plain fine-tune.
ADAMR_LAMBDA = {"rotated": 20.0, "footwear": 60.0, "digits": 10.0}


def fashion_task(name, description, labels, transform, transform_fn, label_map=None, **ft):
    return dict(name=name, description=description, labels=labels, transform=transform,
                dataset="fashion-mnist", transform_fn=transform_fn, label_map=label_map,
                ft=dict(FT, **ft))


def task_list(seed):
    return [
        fashion_task("rotated", "Fashion-MNIST garments rotated 90 degrees counter-clockwise",
                     ds.FASHION_LABELS, "rot90 counter-clockwise (numpy.rot90 k=1 on H,W)",
                     ds.rotate90),
        fashion_task("inverted", "Fashion-MNIST with inverted intensities (1 - x)",
                     ds.FASHION_LABELS, "255 - u8 pixel (model input 1 - x)", ds.invert),
        fashion_task("coarse4", "Fashion-MNIST grouped into tops / bottoms / footwear / bags",
                     ds.COARSE4_LABELS, "none (labels regrouped: tops = T-shirt/top, Pullover, "
                     "Dress, Coat, Shirt; bottoms = Trouser; footwear = Sandal, Sneaker, Ankle "
                     "boot; bags = Bag)", lambda x: x, ds.COARSE4_OF_FASHION),
        fashion_task("footwear", "Fashion-MNIST footwear (Sandal, Sneaker, Ankle boot) vs rest",
                     ds.FOOTWEAR_LABELS, "none (labels: 1 = Sandal, Sneaker, Ankle boot; "
                     "0 = the other seven classes)", lambda x: x, ds.FOOTWEAR_OF_FASHION),
        fashion_task("noisy", f"Fashion-MNIST with Gaussian noise sigma={NOISE_SIGMA}, clipped",
                     ds.FASHION_LABELS, f"x + N(0, {NOISE_SIGMA}^2), clipped to [0,1], rounded "
                     "to u8; noise drawn with numpy default_rng (train seed+101, eval seed+102)",
                     "noise"),
        fashion_task("flipped", "Fashion-MNIST garments flipped upside down",
                     ds.FASHION_LABELS, "vertical flip (rows reversed)", ds.flip_vertical),
        dict(name="digits", description="scikit-learn 8x8 handwritten digits upscaled to 28x28",
             labels=ds.DIGIT_LABELS, dataset="sklearn.datasets.load_digits",
             transform="values/16, bilinear upscale 8x8 -> 28x28 (align_corners=False), "
             "rounded to u8", ft=dict(FT_DIGITS)),
    ]


def build_task_data(task, fashion_train, fashion_test, eval_idx, seed, task_seed):
    """(train images, train labels, eval images, eval labels, eval source) in u8."""
    if task["name"] == "digits":
        images, labels = ds.load_digits_28()
        order = np.random.default_rng(task_seed).permutation(len(labels))
        ev, tr = order[:DIGITS_EVAL_SAMPLES], order[DIGITS_EVAL_SAMPLES:]
        source = (f"sklearn load_digits (1797 images), {len(ev)} held out by "
                  f"numpy default_rng({task_seed}).permutation; fine-tune on the other {len(tr)}")
        return images[tr], labels[tr], images[ev], labels[ev], source
    (train_x, train_y), (test_x, test_y) = fashion_train, fashion_test
    tr = np.random.default_rng(task_seed).permutation(len(train_y))[:task["ft"]["samples"]]
    tx, ty, ex, ey = train_x[tr], train_y[tr], test_x[eval_idx], test_y[eval_idx]
    if task["transform_fn"] == "noise":
        tx = ds.add_noise(tx, NOISE_SIGMA, seed + 101)
        ex = ds.add_noise(ex, NOISE_SIGMA, seed + 102)
    else:
        tx, ex = task["transform_fn"](tx), task["transform_fn"](ex)
    if task["label_map"] is not None:
        ty, ey = task["label_map"][ty], task["label_map"][ey]
    source = (f"Fashion-MNIST t10k: {len(eval_idx)} images chosen by numpy "
              f"default_rng({seed}).permutation(10000)[:{len(eval_idx)}] (same for every "
              "Fashion task)")
    return tx, ty, ex, ey, source


def output_files(root=MODELS):
    """The files this recipe writes under models/ (other tools add their own files there)."""
    paths = [os.path.join(root, "base", f) for f in ("model.onnx", "base.json")]
    for task in task_list(SEED):
        for f in ("finetuned.onnx", "finetuned-adamr.onnx", "eval.safetensors", "task.json"):
            paths.append(os.path.join(root, "tasks", task["name"], f))
    return [p for p in paths if os.path.exists(p)]


def write_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, indent=2)
        f.write("\n")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--base-epochs", type=int, default=BASE["epochs"])
    parser.add_argument("--reuse-base", action="store_true",
                        help="development only: load models/.work/base.pt instead of training")
    parser.add_argument("--tasks", default="", help="comma-separated subset of tasks")
    parser.add_argument("--out", default=MODELS,
                        help="output root (default models/); another folder to compare a rerun")
    args = parser.parse_args()

    torch.set_num_threads(2)
    torch.use_deterministic_algorithms(True)
    t_start = time.time()
    timings = {}
    log = lambda msg: print(f"[{time.time() - t_start:7.1f}s] {msg}", flush=True)  # noqa: E731
    os.makedirs(WORK, exist_ok=True)
    os.makedirs(os.path.join(args.out, "base"), exist_ok=True)

    fashion_train = ds.load_fashion("train")
    fashion_test = ds.load_fashion("test")

    # ---- base ---------------------------------------------------------------------------
    training.seed_everything(SEED)
    base = TinyViT()
    base_cfg = dict(BASE, epochs=args.base_epochs)
    base_pt = os.path.join(WORK, "base.pt")
    if args.reuse_base and os.path.exists(base_pt):
        saved = torch.load(base_pt)
        base.load_state_dict(saved["state"])
        base_seconds = saved["seconds"]
        log(f"reused {base_pt} (trained in {base_seconds:.0f}s)")
    else:
        log(f"training base: {count_parameters(base)} parameters, {base_cfg}")
        base_seconds, _ = training.train(
            base, fashion_train[0], fashion_train[1], classes=10, epochs=base_cfg["epochs"],
            batch_size=base_cfg["batch_size"], lr=base_cfg["lr"],
            weight_decay=base_cfg["weight_decay"], warmup_fraction=base_cfg["warmup_fraction"],
            seed=SEED, hflip=True, log=log, tag="base")
        torch.save({"state": base.state_dict(), "seconds": base_seconds}, base_pt)
    base.eval()
    timings["base_train_s"] = base_seconds
    base_test_acc = training.accuracy(base, fashion_test[0], fashion_test[1], 10)
    log(f"base Fashion-MNIST test accuracy {base_test_acc:.4f}")

    base_onnx = os.path.join(args.out, "base", "model.onnx")
    t = time.time()
    onnx_tools.export(base, base_onnx)
    weights_report = onnx_tools.check_weights(base_onnx, base)
    err = onnx_tools.assert_matches_torch(base_onnx, base, ds.to_input(fashion_test[0][:64]))
    timings["base_export_s"] = time.time() - t
    log(f"base exported: {weights_report}, numpy-ONNX vs torch max err {err:.2e}")
    base_state = {k: v.detach().clone() for k, v in base.state_dict().items()}
    cfg = base.config
    write_json(os.path.join(args.out, "base", "base.json"), {
        "name": "tiny-vit-fashion",
        "architecture": {
            "type": "vision transformer (pre-norm)", "input": "pixels float32 [batch,1,28,28] "
            "in [0,1] (no normalisation)", "output": "logits float32 [batch,10]",
            "patch": cfg["patch"], "tokens": (cfg["image"] // cfg["patch"]) ** 2 + 1,
            "dim": cfg["dim"], "depth": cfg["depth"], "heads": cfg["heads"],
            "mlpHidden": cfg["dim"] * cfg["mlp_ratio"], "activation": "GELU (erf)",
            "norm": "LayerNorm eps 1e-5, pre-norm blocks + final norm on CLS",
            "classes": cfg["classes"], "weightLayout": "[in, out], y = x @ W + b"},
        "parameters": count_parameters(base),
        "onnx": dict(weights_report, opset=onnx_tools.OPSET, inputName="pixels",
                     outputName="logits", dynamicAxes="batch"),
        "labels": ds.FASHION_LABELS,
        "accuracy": {"fashionMnistTest": base_test_acc, "testSamples": len(fashion_test[1])},
        "training": {"dataset": "Fashion-MNIST train (60000)", "epochs": base_cfg["epochs"],
                     "batchSize": base_cfg["batch_size"], "optimizer": "AdamW",
                     "lr": base_cfg["lr"], "weightDecay": base_cfg["weight_decay"],
                     "schedule": f"linear warmup {base_cfg['warmup_fraction']:.0%} then cosine "
                     "to 0, per step", "augmentation": "random horizontal flip (p=0.5)",
                     "seconds": round(base_seconds, 1), "threads": 2},
        "seed": SEED, "command": COMMAND, "torch": torch.__version__,
    })

    # ---- tasks --------------------------------------------------------------------------
    eval_idx = np.random.default_rng(SEED).permutation(len(fashion_test[1]))[:FASHION_EVAL_SAMPLES]
    wanted = set(filter(None, args.tasks.split(",")))
    summary = {"base": {"accuracy": base_test_acc, "seconds": base_seconds}, "tasks": {}}
    for index, task in enumerate(task_list(SEED)):
        name = task["name"]
        if wanted and name not in wanted:
            continue
        task_seed = SEED + 1000 * (index + 1)
        out_dir = os.path.join(args.out, "tasks", name)
        os.makedirs(out_dir, exist_ok=True)
        tx, ty, ex, ey, source = build_task_data(task, fashion_train, fashion_test, eval_idx,
                                                 SEED, task_seed)
        eval_path = os.path.join(out_dir, "eval.safetensors")
        write_eval_set(eval_path, ex, ey, {"task": name, "source": source, "seed": SEED})
        ex, ey, _ = read_eval_set(eval_path)  # measure on exactly what is committed
        k = len(task["labels"])
        assert int(ey.max()) < k and int(ty.max()) < k
        ft = task["ft"]
        acc = {"base": training.accuracy(base, ex, ey, k)}
        record = {"finetune": {}, "delta": {}}
        variants = [("finetuned", 0.0)]
        if name in ADAMR_LAMBDA:
            variants.append(("finetunedAdamR", ADAMR_LAMBDA[name]))
        for key, lam in variants:
            model = copy.deepcopy(base)
            pull = [base_state[n] for n, _ in model.named_parameters()] if lam else None
            seconds, steps = training.train(
                model, tx, ty, classes=k, epochs=ft["epochs"], batch_size=ft["batch_size"],
                lr=ft["lr"], weight_decay=ft["weight_decay"],
                warmup_fraction=ft["warmup_fraction"], seed=task_seed, pull_to=pull,
                pull_lambda=lam, log=log, tag=f"{name}/{key}")
            acc[key] = training.accuracy(model, ex, ey, k)
            stats = training.delta_stats(model, base_state)
            file = "finetuned-adamr.onnx" if lam else "finetuned.onnx"
            path = os.path.join(out_dir, file)
            onnx_tools.export(model, path)
            onnx_tools.check_weights(path, model)
            onnx_tools.assert_same_graph(base_onnx, path)
            err = onnx_tools.assert_matches_torch(path, model, ds.to_input(ex[:64]))
            record["finetune"][key] = {"seconds": round(seconds, 1), "steps": steps,
                                       "lambda": lam or None}
            record["delta"][key] = stats
            log(f"{name}/{key}: acc base {acc['base']:.4f} -> {acc[key]:.4f}, mean|d| "
                f"{stats['meanAbs']:.5f} max|d| {stats['maxAbs']:.4f}, onnx err {err:.1e}")
        samples = len(ty)
        task_json = {
            "name": name, "description": task["description"], "labels": task["labels"],
            "numClasses": k, "logits": f"first {k} of the base's 10",
            "dataset": task["dataset"], "transform": task["transform"],
            "finetune": {"epochs": ft["epochs"], "samples": samples, "lr": ft["lr"],
                         "batchSize": ft["batch_size"],
                         "optimizer": f"AdamW (weight decay {ft['weight_decay']}), full "
                         f"parameters, warmup {ft['warmup_fraction']:.0%} + cosine",
                         "seconds": record["finetune"]["finetuned"]["seconds"],
                         "seed": task_seed},
            "accuracy": {k2: round(v, 4) for k2, v in acc.items()},
            "evalSamples": len(ey),
            "delta": record["delta"]["finetuned"],
        }
        if "finetunedAdamR" in acc:
            lam = ADAMR_LAMBDA[name]
            task_json["finetune"]["adamr"] = {
                "lambda": lam, "file": "finetuned-adamr.onnx",
                "rule": "after each AdamW step: theta <- theta - lr_t * lambda * "
                        "(theta - theta_base)",
                "seconds": record["finetune"]["finetunedAdamR"]["seconds"]}
            task_json["deltaAdamR"] = record["delta"]["finetunedAdamR"]
        write_json(os.path.join(out_dir, "task.json"), task_json)
        summary["tasks"][name] = {"accuracy": acc, "delta": record["delta"],
                                  "finetune": record["finetune"]}

    total = sum(os.path.getsize(p) for p in output_files(args.out))
    summary["outputBytes"] = total
    summary["wallSeconds"] = time.time() - t_start
    write_json(os.path.join(WORK, "summary.json"), summary)
    log(f"done: outputs {total / 1e6:.2f} MB, wall {summary['wallSeconds']:.0f}s")


if __name__ == "__main__":
    main()
