"""``xfv data download`` against a local HTTP server serving a tiny fixture archive (no network here)."""

import hashlib
import http.server
import io
import tarfile
import threading
from functools import partial

import pytest

from xfv.cli import main
from xfv.datasets import read_pairs
from xfv.datasets.download import RemoteFile, download_files


@pytest.fixture()
def mirror(tmp_path):
    served = tmp_path / "served"
    served.mkdir()
    with tarfile.open(served / "lfw-deepfunneled.tgz", "w:gz") as archive:
        for name in ("Ann/Ann_0001.jpg", "Ann/Ann_0002.jpg"):
            data = b"jpeg bytes of " + name.encode()
            info = tarfile.TarInfo(f"lfw-deepfunneled/{name}")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    (served / "pairs.txt").write_text("1\t1\nAnn\t1\t2\nAnn\t1\tAnn\t2\n")
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield served, f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()


def _md5(path):
    return hashlib.md5(path.read_bytes()).hexdigest()


def test_download_verifies_and_unpacks(mirror, tmp_path):
    served, url = mirror
    files = [RemoteFile("lfw-deepfunneled.tgz", _md5(served / "lfw-deepfunneled.tgz"), extract=True),
             RemoteFile("pairs.txt", _md5(served / "pairs.txt"))]
    root = download_files(files, url, tmp_path / "data", "lfw-deepfunneled")
    pairs = read_pairs("lfw", root)
    assert len(pairs) == 2 and pairs.path(pairs.pairs[0].image1).read_bytes().startswith(b"jpeg bytes")
    # A second run finds verified files and downloads nothing (the server is not needed).
    assert download_files(files, "http://127.0.0.1:9/", tmp_path / "data", "lfw-deepfunneled") == root


def test_checksum_mismatch_discards_the_file(mirror, tmp_path, capsys):
    _served, url = mirror
    # The fixture archive does not carry the official MD5: the CLI must refuse it and keep nothing.
    assert main(["data", "download", "lfw", "--dest", str(tmp_path / "data"), "--base-url", url]) == 2
    assert "Checksum mismatch" in capsys.readouterr().err
    assert not list((tmp_path / "data").glob("*.tgz*"))


def test_unreachable_mirror_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="Could not download http://127.0.0.1:9/pairs.txt"):
        download_files([RemoteFile("pairs.txt", "0" * 32)], "http://127.0.0.1:9/", tmp_path, "x")
