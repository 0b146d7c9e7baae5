"""Preparing an ONNX embedding model file to run as it comes (e.g. OpenCV Zoo's SFace).

:func:`prepare_graph` applies, in order:

1. **Unused inputs removed.** Graph inputs that no node reads (exporters leave stale ones; onnxruntime then
   demands a value for each), and inputs that are also initialisers (weights listed as overridable inputs, which
   keeps onnxruntime from folding them) when the IR version allows it (>= 4). Exactly one input must remain:
   the image batch. Initialisers that no node reads are dropped too.
2. **Symbolic batch.** A fixed first dimension of that input and of the outputs becomes the symbol ``batch``, and
   the recorded intermediate shapes (``value_info``) are dropped, so batches of any size run. (A graph that
   reshapes to a fixed batch inside still fails with more than one image; the model then embeds one at a time.)
3. **Dequantised weights** (option ``dequantize``). ``DequantizeLinear`` nodes (per-tensor, per-axis or blocked)
   whose inputs are all initialisers, and the constant ``Reshape``/``Transpose``/... nodes after them, are
   evaluated once with ONNX's reference evaluator and replaced by float initialisers: the same function, run
   with float kernels instead of dequantising on every call. ``dequantize=False`` keeps the original graph.

The graph's operators and numerics are otherwise untouched.

:func:`prelu_as_convs` is applied by the ``cpu`` engine only (:mod:`xfv.models.engines`), not to the prepared file:
a per-channel ``PRelu(z) = max(z, 0) + a min(z, 0)`` becomes ``a z + (1 - a) Relu(z)``, two depthwise 1 x 1
convolutions and a ``Relu``, which ONNX Runtime keeps in its blocked (NCHWc) convolution kernels; its own ``PRelu``
kernel works on plain NCHW, so every one costs a layout change in and out, and on SFace these took 60-70% of the
time (docs/models.md). The result equals ``PRelu`` up to float rounding (``a z + (1 - a) z`` for ``z > 0``).
"""

from __future__ import annotations

import numpy as np
import onnx
from google.protobuf.message import DecodeError
from onnx import helper, numpy_helper
from onnx.reference import ReferenceEvaluator

from xfv.errors import XfvError

#: Bumped whenever :func:`prepare_graph` changes its output, so cached prepared files are redone.
PREPARER_VERSION = "2"
_FOLDABLE = ("DequantizeLinear", "Reshape", "Transpose", "Cast", "Identity", "Squeeze", "Unsqueeze", "Flatten")


class OnnxGraphError(XfvError):
    """An ONNX file that cannot serve as an embedding model: what is wrong and what was expected."""


def _used_names(graph: onnx.GraphProto) -> set[str]:
    """Every value name that a node (or a node's subgraph) reads or the graph returns."""
    used = {output.name for output in graph.output}
    for node in graph.node:
        used.update(node.input)
        for attribute in node.attribute:
            for subgraph in [attribute.g] if attribute.HasField("g") else list(attribute.graphs):
                used |= _used_names(subgraph)
    return used


def _remove_unused_inputs(model: onnx.ModelProto, source: str) -> list[str]:
    graph = model.graph
    used = _used_names(graph)
    initialisers = {tensor.name for tensor in graph.initializer}
    stale = [value.name for value in graph.input if value.name not in used]
    feeds = [value for value in graph.input if value.name in used and value.name not in initialisers]
    if len(feeds) != 1:
        names = ", ".join(repr(value.name) for value in feeds) or "none"
        raise OnnxGraphError(f"{source}: the graph needs {len(feeds)} inputs fed ({names}); expected exactly one, "
                             "the batch of face images.")
    keep = [value for value in graph.input if value.name in used
            and (value.name not in initialisers or model.ir_version < 4)]
    overridable = sum(value.name in initialisers for value in graph.input) - sum(v.name in initialisers for v in keep)
    del graph.input[:]
    graph.input.extend(keep)
    changes = []
    if stale:
        changes.append(f"removed {len(stale)} unused inputs ({', '.join(stale[:3])}{', ...' if len(stale) > 3 else ''})")
    if overridable:
        changes.append(f"removed {overridable} inputs that are initialisers")
    return changes


def _remove_unused_initialisers(model: onnx.ModelProto) -> list[str]:
    graph = model.graph
    used = _used_names(graph)
    unused = [tensor.name for tensor in graph.initializer if tensor.name not in used]
    if not unused:
        return []
    kept = [tensor for tensor in graph.initializer if tensor.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    return [f"removed {len(unused)} unused initialisers"]


def _symbolic_batch(model: onnx.ModelProto) -> list[str]:
    graph = model.graph
    changed = []
    for value in [graph.input[0], *graph.output]:
        shape = value.type.tensor_type.shape
        if len(shape.dim) and shape.dim[0].HasField("dim_value"):
            shape.dim[0].dim_param = "batch"  # setting the param clears the fixed value (a oneof)
            changed.append(value.name)
    if not changed:
        return []
    del graph.value_info[:]
    return [f"batch dimension of {', '.join(repr(name) for name in changed)} made symbolic"]


def _opset(model: onnx.ModelProto) -> int:
    return next((entry.version for entry in model.opset_import if entry.domain in ("", "ai.onnx")), 1)


def _dequantize(model: onnx.ModelProto) -> list[str]:
    graph = model.graph
    values = {tensor.name: numpy_helper.to_array(tensor) for tensor in graph.initializer}
    opset = {"": _opset(model)}
    kept, folded, dequantized = [], [], 0
    for node in graph.node:
        constant = node.domain in ("", "ai.onnx") and node.op_type in _FOLDABLE and all(
            name == "" or name in values for name in node.input)
        starts_or_continues = node.op_type == "DequantizeLinear" or any(name in folded for name in node.input)
        if not (constant and starts_or_continues):
            kept.append(node)
            continue
        outputs = ReferenceEvaluator(node, opsets=opset).run(None, {n: values[n] for n in node.input if n})
        for name, array in zip(node.output, outputs):
            values[name] = array
            folded.append(name)
        dequantized += node.op_type == "DequantizeLinear"
    if not dequantized:
        return []
    used = {name for node in kept for name in node.input} | {output.name for output in graph.output}
    del graph.node[:]
    graph.node.extend(kept)
    initialisers = [numpy_helper.from_array(values[name], name) for name in values if name in used]
    del graph.initializer[:]
    graph.initializer.extend(initialisers)
    return [f"dequantised {dequantized} constant DequantizeLinear nodes into float initialisers"]


def prepare_graph(model: onnx.ModelProto, *, dequantize: bool = True, source: str = "model") -> list[str]:
    """Prepare ``model`` in place (see the module docstring); returns what was changed, in words."""
    if not model.graph.output:
        raise OnnxGraphError(f"{source}: the graph has no outputs; expected one embedding output (N, D).")
    changes = _remove_unused_inputs(model, source)
    changes += _remove_unused_initialisers(model)
    changes += _symbolic_batch(model)
    if dequantize:
        changes += _dequantize(model)
    return changes


def prepared_bytes(data: bytes, *, dequantize: bool, source: str) -> bytes:
    """:func:`prepare_graph` on a serialised model; :class:`OnnxGraphError` if ``data`` is not an ONNX model."""
    try:
        model = onnx.load_from_string(data)
    except DecodeError as error:
        raise OnnxGraphError(f"{source} is not an ONNX model file: {error}") from None
    if not model.graph.node:
        raise OnnxGraphError(f"{source} is not an ONNX model file (no graph nodes).")
    prepare_graph(model, dequantize=dequantize, source=source)
    return model.SerializeToString()


def load_graph(path) -> onnx.ModelProto:
    """An ONNX file as a model proto (its external data, if any, from beside it)."""
    return onnx.load(str(path))


def prelu_as_convs(model: onnx.ModelProto) -> int:
    """Rewrite, in place, every ``PRelu`` whose slope is a constant per channel of a 4-D input (shape ``(C, 1, 1)``
    or ``(1, C, 1, 1)``) as ``Conv(z, a) + Conv(Relu(z), 1 - a)`` (depthwise, 1 x 1), and every one with a single
    constant slope as ``LeakyRelu``; returns how many were rewritten."""
    graph = model.graph
    slopes = {tensor.name: numpy_helper.to_array(tensor) for tensor in graph.initializer}
    nodes, rewritten = [], 0
    for node in graph.node:
        slope = slopes.get(node.input[1]) if node.op_type == "PRelu" and node.domain in ("", "ai.onnx") else None
        if slope is None or slope.dtype != np.float32:
            nodes.append(node)
            continue
        z, out = node.input[0], node.output[0]
        if slope.size == 1:
            nodes.append(helper.make_node("LeakyRelu", [z], [out], name=f"{out}_leaky", alpha=float(slope.ravel()[0])))
        elif slope.shape in ((slope.size, 1, 1), (1, slope.size, 1, 1)):
            channels, a = slope.size, slope.reshape(-1, 1, 1, 1)
            graph.initializer.extend([numpy_helper.from_array(a, f"{out}_slope"),
                                      numpy_helper.from_array((1 - a).astype(np.float32), f"{out}_rest")])
            nodes += [
                helper.make_node("Relu", [z], [f"{out}_relu"], name=f"{out}_relu"),
                helper.make_node("Conv", [z, f"{out}_slope"], [f"{out}_linear"], name=f"{out}_linear",
                                 group=channels, kernel_shape=[1, 1]),
                helper.make_node("Conv", [f"{out}_relu", f"{out}_rest"], [f"{out}_positive"], name=f"{out}_positive",
                                 group=channels, kernel_shape=[1, 1]),
                helper.make_node("Add", [f"{out}_linear", f"{out}_positive"], [out], name=f"{out}_sum"),
            ]
        else:
            nodes.append(node)
            continue
        rewritten += 1
    if rewritten:
        del graph.node[:]
        graph.node.extend(nodes)
        _remove_unused_initialisers(model)
    return rewritten
