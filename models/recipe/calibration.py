"""Unlabelled calibration batches for DAREx-q's label-free choice of q.

For every task: 256 inputs from the task's TRAINING distribution (the same transform as its
fine-tune data, never its evaluation images), written as models/tasks/<task>/calib.safetensors
in the eval-set layout (images U8 [N, 28, 28]; the labels tensor is present for the layout but
the q search never reads it).

Run after train_zoo.py:  /usr/bin/python3 models/recipe/calibration.py   (a few seconds)
"""
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import datasets as ds  # noqa: E402
from safetensors_u8 import write_eval_set  # noqa: E402
from train_zoo import FASHION_EVAL_SAMPLES, MODELS, SEED, build_task_data, task_list  # noqa: E402

CALIBRATION_SAMPLES = 256


def main():
    fashion_train = ds.load_fashion("train")
    fashion_test = ds.load_fashion("test")
    eval_idx = np.random.default_rng(SEED).permutation(len(fashion_test[1]))[:FASHION_EVAL_SAMPLES]
    for index, task in enumerate(task_list(SEED)):
        task_seed = SEED + 1000 * (index + 1)  # as in train_zoo.main
        train_x, train_y, _, _, _ = build_task_data(task, fashion_train, fashion_test, eval_idx, SEED, task_seed)
        pick = np.random.default_rng(task_seed + 5).permutation(len(train_y))[:CALIBRATION_SAMPLES]
        path = os.path.join(MODELS, "tasks", task["name"], "calib.safetensors")
        write_eval_set(path, train_x[pick], np.zeros(len(pick), dtype=np.uint8), {
            "task": task["name"],
            "purpose": "unlabelled calibration inputs for the DAREx-q search (labels are zeros, unused)",
            "source": f"{len(pick)} of the task's fine-tuning inputs, numpy default_rng({task_seed + 5})",
        })
        print(f"wrote {path} ({len(pick)} samples)")


if __name__ == "__main__":
    main()
