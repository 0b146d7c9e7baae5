import numpy as np
import pytest
from PIL import Image

from xfv.datasets import read_pairs
from xfv.jobs.embeddings import embed_paths, pair_distances
from xfv.models.callable_model import CallableModel
from xfv.store.cache import EmbeddingCache


class CountingModel(CallableModel):
    """Mean colour of the crop as a 3-d embedding, counting how many faces it is asked for."""

    def __init__(self):
        self.seen = 0
        super().__init__(self._mean, name="counting", input_size=32, alignment="none")

    def _mean(self, faces):
        self.seen += len(faces)
        return faces.reshape(len(faces), -1, 3).mean(axis=1) + 1.0


@pytest.fixture(autouse=True)
def fresh_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XFV_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture()
def crops(tmp_path, rng):
    paths = []
    for i in range(5):
        colour = rng.integers(0, 256, size=3)
        paths.append(tmp_path / f"face_{i}.png")
        Image.fromarray(np.tile(colour.astype(np.uint8), (48, 48, 1))).save(paths[-1])
    return paths


def test_cache_roundtrip_and_namespace(tmp_path):
    cache = EmbeddingCache("model-x", root=tmp_path, dim=3)
    assert cache.get("ab" * 32) is None
    cache.put("ab" * 32, np.arange(3))
    np.testing.assert_array_equal(cache.get("ab" * 32), [0, 1, 2])
    assert cache.path("ab" * 32).is_file() and not list(cache.directory.rglob(".tmp-*"))
    with pytest.raises(ValueError, match="namespace"):
        EmbeddingCache("a/b", root=tmp_path)


def test_embed_paths_uses_the_cache_per_image(crops):
    model = CountingModel()
    first = embed_paths(crops + crops[:2], model, aligned=True)
    assert model.seen == 5  # a repeated path is embedded once
    second = embed_paths(list(reversed(crops)), model, aligned=True)
    assert model.seen == 5  # every image came from the cache
    np.testing.assert_allclose(second, first[:5][::-1])
    embed_paths(crops, model, aligned=True, use_cache=False)
    assert model.seen == 10


def test_embed_paths_says_which_detector_found_each_face_and_caches_it(crops, tmp_path):
    model = CountingModel()
    found: dict[str, str] = {}
    embed_paths(crops[:2], model, aligned=True, detectors=found)
    assert found == {str(crops[0]): "aligned", str(crops[1]): "aligned"} and model.seen == 2
    again: dict[str, str] = {}
    embed_paths(crops[:2], model, aligned=True, detectors=again)
    assert again == found and model.seen == 2  # both from the cache, detector included
    # an embedding cached without its detector (by an older version) is computed again when the detector is asked
    from xfv.faces import FaceDetector
    from xfv.jobs.embeddings import cache_namespace
    from xfv.store.cache import content_hash

    cache = EmbeddingCache(cache_namespace(model, True, FaceDetector()), dim=3)
    cache.put(content_hash(crops[2].read_bytes()), np.ones(3))
    embed_paths(crops[2:3], model, aligned=True)
    assert model.seen == 2  # not asked: the cached embedding serves
    embed_paths(crops[2:3], model, aligned=True, detectors=again)
    assert model.seen == 3 and again[str(crops[2])] == "aligned"


def test_a_face_no_detector_finds_is_named_centre(tmp_path):
    from conftest_web import faceless_photo

    from xfv.faces import FaceDetector
    from xfv.models import create_model

    path = tmp_path / "noface.jpg"
    faceless_photo().save(path)
    found: dict[str, str] = {}
    embed_paths([path], create_model("lbp"), detector=FaceDetector("hog", fallback="centre"), detectors=found)
    assert found == {str(path): "centre"}


def test_detector_names_are_short_ascii(tmp_path):
    cache = EmbeddingCache("model-x", root=tmp_path, dim=3)
    cache.put_detector("ab" * 32, "yunet")
    assert cache.get_detector("ab" * 32) == "yunet" and cache.get_detector("cd" * 32) is None
    for bad in ("", "a-much-too-long-name", "naïve"):
        with pytest.raises(ValueError, match="detector name"):
            cache.put_detector("ab" * 32, bad)


def test_cache_is_keyed_by_content_not_path(crops, tmp_path):
    model = CountingModel()
    embed_paths(crops[:1], model, aligned=True)
    copy = tmp_path / "copy.png"
    copy.write_bytes(crops[0].read_bytes())
    embed_paths([copy], model, aligned=True)
    assert model.seen == 1


def test_pair_distances(crops, tmp_path):
    (tmp_path / "pairs.csv").write_text("\n".join(f"{a.name},{b.name},{int(a == b)}" for a, b in
                                                  [(crops[0], crops[0]), (crops[0], crops[1])]))
    distances = pair_distances(read_pairs("csv", tmp_path), CountingModel(), aligned=True)
    assert distances.shape == (2,) and distances[0] == pytest.approx(0.0, abs=1e-6) and distances[1] > 0


def test_missing_image_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.png"):
        embed_paths([tmp_path / "nowhere.png"], CountingModel(), aligned=True)


def test_parallel_alignment_gives_the_same_embeddings(tmp_path, rng):
    paths = []
    for i in range(40):
        paths.append(tmp_path / f"f{i}.png")
        Image.fromarray(rng.integers(0, 256, size=(40, 40, 3), dtype=np.uint8)).save(paths[-1])
    serial = embed_paths(paths, CountingModel(), aligned=True, use_cache=False, workers=1)
    parallel = embed_paths(paths, CountingModel(), aligned=True, use_cache=False, workers=2)
    np.testing.assert_array_equal(serial, parallel)
