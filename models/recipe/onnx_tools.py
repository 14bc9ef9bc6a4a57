"""ONNX export plus the checks that make the zoo usable as base + deltas.

The gateway keeps one base graph resident and patches weight values per task, so every
fine-tune must be the base graph with different initializer values and nothing else.
onnx 1.12 has no reference evaluator and onnxruntime is not installed for Python here,
so a small numpy interpreter for exactly the ops this graph uses runs the exported file.
"""
import math

import numpy as np
import onnx
import torch
from onnx import numpy_helper

OPSET = 17


def export(model, path):
    model.eval()
    # Eval mode matters twice: no dropout/BN here anyway, and torch 1.13 merges initializers
    # with equal values in eval mode (fresh zeros/ones), which the checks below would catch.
    torch.onnx.export(
        model, torch.rand(2, 1, 28, 28), path,
        input_names=["pixels"], output_names=["logits"], opset_version=OPSET,
        dynamic_axes={"pixels": {0: "batch"}, "logits": {0: "batch"}},
        do_constant_folding=True)


def graph_signature(path):
    """Everything about the file except the initializer values."""
    g = onnx.load(path).graph
    return {
        "initializers": sorted((i.name, i.data_type, tuple(i.dims)) for i in g.initializer),
        # Whole serialized nodes: op_type, inputs, outputs, attributes, Constant payloads.
        "nodes": [n.SerializeToString() for n in g.node],
        "inputs": [i.SerializeToString() for i in g.input],
        "outputs": [o.SerializeToString() for o in g.output],
    }


def assert_same_graph(base_path, other_path):
    a, b = graph_signature(base_path), graph_signature(other_path)
    for key in ("initializers", "nodes", "inputs", "outputs"):
        if a[key] != b[key]:
            if key == "initializers":
                diff = set(a[key]) ^ set(b[key])
                detail = f"differing (name, dtype, dims): {sorted(diff)[:10]}"
            else:
                idx = next(i for i, (x, y) in enumerate(zip(a[key], b[key])) if x != y) \
                    if len(a[key]) == len(b[key]) else f"count {len(a[key])} vs {len(b[key])}"
                detail = f"first difference at {idx}"
            raise AssertionError(f"{other_path} does not share the base graph of {base_path}: "
                                 f"{key} differ ({detail})")


def check_weights(path, model):
    """Every float weight is an initializer named after its parameter, holding its exact value;
    Constant nodes carry only shapes, indices and scalars. Returns a small report."""
    g = onnx.load(path).graph
    state = {k: v.detach().numpy() for k, v in model.state_dict().items()}
    inits = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    if set(inits) != set(state):
        raise AssertionError(f"{path}: initializers {sorted(set(inits) ^ set(state))} do not match "
                             "the model parameters one to one (deduplicated or folded weights?)")
    for name, value in state.items():
        if inits[name].dtype != np.float32 or not np.array_equal(inits[name], value):
            raise AssertionError(f"{path}: initializer {name} differs from the trained parameter")
    constants = []
    for n in g.node:
        if n.op_type == "Constant":
            t = numpy_helper.to_array(n.attribute[0].t)
            if t.dtype.kind == "f" and t.size > 1:
                raise AssertionError(f"{path}: Constant {n.output[0]} holds a float tensor "
                                     f"of shape {t.shape}: a weight was folded into the graph")
            constants.append((t.dtype.name, t.size))
    identity = [n.output[0] for n in g.node if n.op_type == "Identity"]
    if identity:
        raise AssertionError(f"{path}: Identity nodes {identity[:5]} (merged initializers)")
    return {
        "floatInitializers": len(inits),
        "floatParameters": int(sum(v.size for v in inits.values())),
        "constantNodes": len(constants),
        "floatScalarConstants": sum(1 for d, _ in constants if d.startswith("float")),
        "nodes": len(g.node),
    }


try:  # scipy comes with python3-sklearn; the fallback is exact but slow
    from scipy.special import erf as _erf
except ImportError:  # pragma: no cover
    def _erf(x):
        return np.vectorize(math.erf, otypes=[np.float32])(x)


def run_numpy(path, pixels):
    """Evaluate the exported graph with numpy, for the ops torch 1.13 emits for TinyViT."""
    model = onnx.load(path)
    env = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    env[model.graph.input[0].name] = pixels.astype(np.float32)
    for n in model.graph.node:
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in n.attribute}
        x = [env[name] if name else None for name in n.input]
        op = n.op_type
        if op == "Constant":
            out = numpy_helper.to_array(attrs["value"])
        elif op == "Reshape":
            out = x[0].reshape([x[0].shape[i] if d == 0 else d for i, d in enumerate(x[1])])
        elif op == "Transpose":
            out = np.transpose(x[0], attrs["perm"])
        elif op == "MatMul":
            out = np.matmul(x[0], x[1])
        elif op == "Add":
            out = x[0] + x[1]
        elif op == "Mul":
            out = x[0] * x[1]
        elif op == "Div":
            out = x[0] / x[1]
        elif op == "Erf":
            out = _erf(x[0]).astype(x[0].dtype)
        elif op == "Shape":
            out = np.array(x[0].shape, dtype=np.int64)
        elif op == "Gather":
            out = np.take(x[0], x[1], axis=attrs.get("axis", 0))
        elif op == "Unsqueeze":
            out = np.expand_dims(x[0], tuple(int(a) for a in x[1]))
        elif op == "Concat":
            out = np.concatenate(x, axis=attrs["axis"])
        elif op == "ConstantOfShape":
            fill = numpy_helper.to_array(attrs["value"]) if "value" in attrs else np.zeros(1, np.float32)
            out = np.full(tuple(x[0]), fill.reshape(-1)[0], dtype=fill.dtype)
        elif op == "Equal":
            out = x[0] == x[1]
        elif op == "Where":
            out = np.where(x[0], x[1], x[2])
        elif op == "Expand":
            out = x[0] * np.ones(tuple(x[1]), dtype=x[0].dtype)
        elif op == "Softmax":
            axis = attrs.get("axis", -1)
            e = np.exp(x[0] - x[0].max(axis=axis, keepdims=True))
            out = e / e.sum(axis=axis, keepdims=True)
        elif op == "LayerNormalization":
            axis, eps = attrs.get("axis", -1), attrs.get("epsilon", 1e-5)
            axes = tuple(range(axis % x[0].ndim, x[0].ndim))
            mean = x[0].mean(axis=axes, keepdims=True)
            var = ((x[0] - mean) ** 2).mean(axis=axes, keepdims=True)
            out = (x[0] - mean) / np.sqrt(var + eps) * x[1] + x[2]
        else:
            raise NotImplementedError(f"{path}: op {op} ({n.name}) not in the numpy interpreter")
        env[n.output[0]] = out
    return env[model.graph.output[0].name]


def assert_matches_torch(path, model, pixels, atol=1e-4):
    with torch.no_grad():
        expected = model.eval()(pixels).numpy()
    got = run_numpy(path, pixels.numpy())
    err = float(np.abs(got - expected).max())
    if got.shape != expected.shape or err > atol:
        raise AssertionError(f"{path}: ONNX (numpy) vs torch logits differ by {err} "
                             f"(shapes {got.shape} vs {expected.shape})")
    return err
