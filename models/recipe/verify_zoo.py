"""Re-check the committed zoo without training: every model shares the base graph, every eval
set parses, and the ONNX files themselves (run by the numpy interpreter, not by PyTorch)
reproduce the accuracies recorded in task.json.

Run:  /usr/bin/python3 models/recipe/verify_zoo.py   (about a minute on 2 cores)
"""
import json
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import onnx_tools  # noqa: E402
from safetensors_u8 import read_eval_set  # noqa: E402

MODELS = os.path.dirname(HERE)
FILES = {"base": "base/model.onnx", "finetuned": "finetuned.onnx",
         "finetunedAdamR": "finetuned-adamr.onnx"}


def onnx_accuracy(path, images, labels, classes, batch_size=250):
    correct = 0
    for start in range(0, len(labels), batch_size):
        x = images[start:start + batch_size].astype(np.float32)[:, None] / np.float32(255.0)
        logits = onnx_tools.run_numpy(path, x)[:, :classes]
        correct += int((logits.argmax(axis=1) == labels[start:start + batch_size]).sum())
    return correct / len(labels)


def main():
    base_path = os.path.join(MODELS, FILES["base"])
    failures = []
    tasks_dir = os.path.join(MODELS, "tasks")
    for name in sorted(os.listdir(tasks_dir)):
        task_dir = os.path.join(tasks_dir, name)
        task_json_path = os.path.join(task_dir, "task.json")
        if not os.path.exists(task_json_path):
            continue
        with open(task_json_path) as f:
            task = json.load(f)
        images, labels, meta = read_eval_set(os.path.join(task_dir, "eval.safetensors"))
        assert set(meta) == {"task", "source", "seed"} and meta["task"] == name, meta
        k = task["numClasses"]
        assert len(task["labels"]) == k and int(labels.max()) < k
        line = [f"{name:9s} n={len(labels):4d}"]
        for key, recorded in task["accuracy"].items():
            path = base_path if key == "base" else os.path.join(task_dir, FILES[key])
            if key != "base":
                onnx_tools.assert_same_graph(base_path, path)
            acc = onnx_accuracy(path, images, labels, k)
            # task.json rounds to 4 places; allow one sample of float argmax-tie slack.
            if abs(acc - recorded) > 1.0 / len(labels) + 5e-5:
                failures.append(f"{name}/{key}: ONNX accuracy {acc:.4f} != recorded {recorded}")
            line.append(f"{key} {acc:.4f} (json {recorded})")
        print("  ".join(line), flush=True)
    if failures:
        raise SystemExit("FAILED:\n" + "\n".join(failures))
    print("ok: all models share the base graph; ONNX accuracies match task.json")


if __name__ == "__main__":
    main()
