import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from xfv.models import EmbeddingModel, ModelConfig, create_model, list_models, register_model
from xfv.models.callable_model import CallableModel
from xfv.verification import cosine_distance


def test_registry_lists_builtins():
    assert {"dlib", "lbp", "onnx", "callable"} <= set(list_models())


def test_registry_errors():
    with pytest.raises(ValueError, match=r"Unknown model 'nope'; expected one of"):
        create_model("nope")
    with pytest.raises(ValueError, match="already registered"):
        register_model("lbp", "again")(lambda **o: None)
    with pytest.raises(ValueError, match="needs path="):
        create_model("onnx")
    with pytest.raises(ValueError, match="Unknown dlib backend 'torch'"):
        create_model("dlib", backend="torch")


@pytest.mark.parametrize(
    "faces, error, message",
    [
        (np.zeros((112, 112, 3), np.uint8), ValueError, r"use faces\[None\]"),
        (np.zeros((1, 112, 112, 3), np.float32), ValueError, "uint8"),
        (np.zeros((1, 112, 112), np.uint8), ValueError, r"shape \(N, H, W, 3\)"),
        ([[1, 2, 3]], TypeError, "numpy array"),
    ],
)
def test_embed_validates_input(faces, error, message):
    with pytest.raises(error, match=message):
        create_model("lbp").embed(faces)


def test_lbp_properties(rng):
    model = create_model("lbp")
    faces = rng.integers(0, 256, size=(3, 112, 112, 3), dtype=np.uint8)
    embeddings = model.embed(faces)
    assert embeddings.shape == (3, 8 * 8 * 59) and embeddings.dtype == np.float32
    np.testing.assert_allclose(model.embed(faces[:1]), embeddings[:1])
    # A brightness change keeps every LBP code (the patterns compare neighbours only).
    brighter = np.clip(faces.astype(int) // 2 + 60, 0, 255).astype(np.uint8)
    assert cosine_distance(model.embed(faces[:1])[0], model.embed(brighter[:1])[0]) < 0.05
    assert cosine_distance(embeddings[0], embeddings[1]) > 0


def test_batching_does_not_change_results(rng):
    faces = rng.integers(0, 256, size=(7, 112, 112, 3), dtype=np.uint8)
    small, large = create_model("lbp", batch_size=2), create_model("lbp", batch_size=64)
    np.testing.assert_allclose(small.embed(faces), large.embed(faces), atol=1e-6)


def test_resizing_to_native_input(rng):
    calls = []

    def fn(batch):
        calls.append(batch.shape)
        return batch.reshape(len(batch), -1)[:, :4].astype(np.float32) + 1

    model = CallableModel(fn, input_size=32)
    model.embed(rng.integers(0, 256, size=(2, 64, 64, 3), dtype=np.uint8))
    assert calls == [(2, 32, 32, 3)]


def test_flip_averaging_is_mirror_invariant(rng):
    model = create_model("lbp", flip=True)
    face = rng.integers(0, 256, size=(1, 112, 112, 3), dtype=np.uint8)
    np.testing.assert_allclose(model.embed(face), model.embed(face[:, :, ::-1].copy()), atol=1e-6)
    assert model.fingerprint != create_model("lbp").fingerprint


def test_callable_model_errors():
    with pytest.raises(TypeError, match="callable"):
        CallableModel(42)
    bad = CallableModel(lambda batch: np.zeros((1, 3)), input_size=16)
    with pytest.raises(ValueError, match=r"shape \(2, D\)"):
        bad.embed(np.zeros((2, 16, 16, 3), np.uint8))


def _linear_onnx(path, weights, layout="NCHW", size=8):
    shape = [None, 3, size, size] if layout == "NCHW" else [None, size, size, 3]
    graph = helper.make_graph(
        [
            helper.make_node("Flatten", ["x"], ["flat"], axis=1),
            helper.make_node("MatMul", ["flat", "w"], ["embedding"]),
        ],
        "linear",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, [None, weights.shape[1]])],
        initializer=[numpy_helper.from_array(weights.astype(np.float32), "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path


def test_onnx_adapter_on_generated_model(tmp_path, rng):
    weights = rng.normal(size=(3 * 8 * 8, 5))
    path = _linear_onnx(tmp_path / "linear.onnx", weights)
    model = create_model("onnx", path=str(path), input_size=8, mean=127.5, std=127.5, alignment="none")
    faces = rng.integers(0, 256, size=(3, 8, 8, 3), dtype=np.uint8)
    expected = ((faces.astype(np.float64) - 127.5) / 127.5).transpose(0, 3, 1, 2).reshape(3, -1) @ weights
    np.testing.assert_allclose(model.embed(faces), expected, rtol=1e-4, atol=1e-4)
    # BGR order reverses the channels before normalisation.
    bgr = create_model("onnx", path=str(path), input_size=8, channel_order="BGR", alignment="none")
    expected_bgr = ((faces[..., ::-1].astype(np.float64) - 127.5) / 127.5).transpose(0, 3, 1, 2).reshape(3, -1) @ weights
    np.testing.assert_allclose(bgr.embed(faces), expected_bgr, rtol=1e-4, atol=1e-4)
    # The weights' checksum is part of the fingerprint.
    other = _linear_onnx(tmp_path / "other.onnx", weights + 1)
    assert create_model("onnx", path=str(other), input_size=8).fingerprint != create_model("onnx", path=str(path), input_size=8).fingerprint


def test_onnx_adapter_nhwc(tmp_path, rng):
    weights = rng.normal(size=(8 * 8 * 3, 4))
    path = _linear_onnx(tmp_path / "nhwc.onnx", weights, layout="NHWC")
    model = create_model("onnx", path=str(path), input_size=8, layout="NHWC", mean=0, std=255, alignment="none")
    faces = rng.integers(0, 256, size=(2, 8, 8, 3), dtype=np.uint8)
    np.testing.assert_allclose(model.embed(faces), (faces / 255.0).reshape(2, -1) @ weights, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(
    "options, error, message",
    [
        ({"path": "missing.onnx"}, FileNotFoundError, "not found"),
        ({"channel_order": "RBG"}, ValueError, "channel_order"),
        ({"layout": "CHW"}, ValueError, "layout"),
        ({"std": 0}, ValueError, "std must be non-zero"),
        ({"alignment": "mtcnn"}, ValueError, "alignment"),
    ],
)
def test_onnx_adapter_errors(tmp_path, rng, options, error, message):
    path = _linear_onnx(tmp_path / "linear.onnx", rng.normal(size=(192, 2)))
    with pytest.raises(error, match=message):
        create_model("onnx", **{"path": str(path), "input_size": 8, **options})


def test_custom_subclass_works_with_the_protocol():
    class Mean(EmbeddingModel):
        config = ModelConfig(name="mean", input_size=16, alignment="none")

        def _forward(self, faces):
            return faces.reshape(len(faces), -1, 3).mean(axis=1)

    out = Mean().embed(np.full((2, 16, 16, 3), 7, np.uint8))
    np.testing.assert_allclose(out, 7.0)
