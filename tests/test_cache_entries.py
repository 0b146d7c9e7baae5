"""Self-checking cache entries (xfv.files.EntryCache), shared by the embedding and the occlusion cache: every
entry that cannot be used is a miss, reported by exactly one warning naming its path, and is rewritten."""

import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest

from xfv.cli import main
from xfv.faces import FaceDetector
from xfv.files import CacheEntryWarning, EntryCache, decode_entry, encode_entry
from xfv.jobs.embeddings import cache_namespace
from xfv.jobs.verify import PHOTO_DETECTOR
from xfv.models import create_model
from xfv.store.cache import EmbeddingCache, content_hash
from xfv.xmaps import OcclusionCache

SAMPLE = Path(__file__).resolve().parents[1] / "src" / "xfv" / "data" / "sample"


def _get_warned(cache: EntryCache, key: str, shape) -> tuple[np.ndarray | None, list[str]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        value = cache.get(key, shape)
    return value, [str(w.message) for w in caught if issubclass(w.category, CacheEntryWarning)]


def _flip_last_byte(path):
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x01
    path.write_bytes(bytes(data))


def _damage(kind: str, cache: EntryCache, key: str) -> None:
    path = cache.path(key)
    if kind == "misplaced":
        cache.put("another key", np.ones(3))
        shutil.copyfile(cache.path("another key"), path)
    elif kind == "corrupt":
        _flip_last_byte(path)
    elif kind == "truncated":
        path.write_bytes(path.read_bytes()[:-4])
    elif kind == "garbage":
        path.write_bytes(b"\x00" * 64)
    elif kind == "header":
        blob = path.read_bytes()
        path.write_bytes(blob.replace(b'"sha256"', b'"sha257"'))
    elif kind == "wrong shape":
        path.write_bytes(encode_entry(key, np.ones(4)))
    elif kind == "non-finite":
        path.write_bytes(encode_entry(key, np.array([0.0, np.nan, 1.0])))
    elif kind == "directory":
        path.unlink()
        path.mkdir()


REASONS = {
    "misplaced": "belongs to another key", "corrupt": "checksum", "truncated": "checksum",
    "garbage": "not an xfv cache entry", "header": "damaged header", "wrong shape": "shape",
    "non-finite": "non-finite", "directory": "is a directory",
}


@pytest.mark.parametrize("kind", sorted(REASONS))
def test_an_unusable_entry_is_one_warning_naming_its_path_then_rewritten(tmp_path, kind):
    cache = EntryCache(tmp_path)
    cache.put("key", np.array([1.0, 2.0, 3.0]))
    _damage(kind, cache, "key")
    value, messages = _get_warned(cache, "key", (3,))
    assert value is None
    assert len(messages) == 1 and str(cache.path("key")) in messages[0] and REASONS[kind] in messages[0]
    cache.put("key", np.array([1.0, 2.0, 3.0]))
    value, messages = _get_warned(cache, "key", (3,))
    if kind == "directory":  # left for the user to remove; reported again, never a crash
        assert value is None and len(messages) == 1
    else:
        np.testing.assert_array_equal(value, [1, 2, 3])
        assert messages == []


def test_a_missing_entry_is_a_quiet_miss_and_shapes_may_leave_an_axis_open(tmp_path):
    cache = EntryCache(tmp_path)
    assert _get_warned(cache, "key", (2, None)) == (None, [])
    cache.put("key", np.zeros((2, 5)))
    assert _get_warned(cache, "key", (2, None))[0].shape == (2, 5)
    assert _get_warned(cache, "key", (3, None))[0] is None


def test_the_entry_records_its_key_shape_and_checksum():
    blob = encode_entry("model/abc", np.arange(6, dtype=np.float32).reshape(2, 3))
    header = json.loads(blob.split(b"\n")[1])
    assert header["key"] == "model/abc" and header["shape"] == [2, 3] and len(header["sha256"]) == 64
    np.testing.assert_array_equal(decode_entry(blob, "model/abc", (2, 3)), np.arange(6).reshape(2, 3))


def test_both_caches_share_the_verbs_and_the_checks(tmp_path):
    embeddings = EmbeddingCache("model-x", root=tmp_path, dim=3)
    occlusions = OcclusionCache(tmp_path / "xmaps")
    embeddings.put("ab" * 32, np.ones(3))
    occlusions.put("fingerprint", "cd" * 32, "patch-7", np.ones((4, 3)))
    for source, target in ((embeddings.path("ab" * 32), embeddings.path("ef" * 32)),
                           (occlusions.path("fingerprint", "cd" * 32, "patch-7"),
                            occlusions.path("fingerprint", "cd" * 32, "patch-14"))):
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
    with pytest.warns(CacheEntryWarning, match="belongs to another key"):
        assert embeddings.get("ef" * 32) is None
    with pytest.warns(CacheEntryWarning, match="belongs to another key"):
        assert occlusions.get("fingerprint", "cd" * 32, "patch-14", 4) is None
    assert occlusions.get("fingerprint", "cd" * 32, "patch-7", 4).shape == (4, 3)


def test_verify_recomputes_a_tampered_entry_with_one_warning(tmp_path, capsys):
    """Issue 9: image C's entry file copied over image A's; ``xfv verify A B`` gives the distance of before."""
    a, b, c = (str(next((SAMPLE / name).glob("*.jpg"))) for name in ("Aaron_Peirsol", "Aaron_Sorkin", "AJ_Lamas"))
    cache_dir = tmp_path / "cache"

    def verify(*images):
        code = main(["verify", *images, "--model", "lbp", "--json"])
        captured = capsys.readouterr()
        assert code == 0, captured.err
        return json.loads(captured.out)["distance"], [line for line in captured.err.splitlines() if "warning" in line]

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XFV_CACHE_DIR", str(cache_dir))
        before, _ = verify(a, b)
        verify(c, b)
        assert len(list(cache_dir.rglob("*.entry"))) == 3
        cache = EmbeddingCache(cache_namespace(create_model("lbp"), False, FaceDetector(PHOTO_DETECTOR)), root=cache_dir)
        path_a, path_c = (cache.path(content_hash(Path(p).read_bytes())) for p in (a, c))
        shutil.copyfile(path_c, path_a)
        after, messages = verify(a, b)
        assert after == pytest.approx(before, abs=1e-6)
        assert len(messages) == 1 and str(path_a) in messages[0] and "another key" in messages[0]
        again, messages = verify(a, b)
        assert again == pytest.approx(before, abs=1e-6) and messages == []
