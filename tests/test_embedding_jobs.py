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
