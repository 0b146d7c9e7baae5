"""The platform commands: ingest and precompute through ``xfv`` with ``--db``, twice (idempotent)."""

from __future__ import annotations

import pytest

from xfv.cli import main
from xfv.cli.platform import sample_root


def test_ingest_and_precompute_commands(tmp_path, capsys):
    db = f"sqlite:///{tmp_path / 'cli.db'}"
    assert main(["ingest", "--dataset", "lfw", "--root", str(sample_root()), "--name", "sample", "--db", db,
                 "--workers", "1"]) == 0
    assert "96 images added (0 already there), 60 pairs added" in capsys.readouterr().out
    assert main(["precompute", "--dataset", "sample", "--model", "lbp", "--xmaps", "1", "--db", db]) == 0
    assert "sample / lbp: 60 pairs (computed)" in capsys.readouterr().out
    assert main(["ingest", "--dataset", "lfw", "--root", str(sample_root()), "--name", "sample", "--db", db]) == 0
    assert "0 images added (96 already there), 0 pairs added (60 already there)" in capsys.readouterr().out
    assert main(["precompute", "--dataset", "sample", "--model", "lbp", "--xmaps", "1", "--db", db]) == 0
    assert "(already there)" in capsys.readouterr().out


def test_precompute_errors(tmp_path, capsys):
    db = f"sqlite:///{tmp_path / 'cli.db'}"
    assert main(["precompute", "--dataset", "missing", "--model", "lbp", "--db", db]) == 2
    assert "No dataset named 'missing'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["precompute", "--dataset", "x", "--xmaps", "some"])


def test_serve_binds_to_loopback_by_default():
    from xfv.cli import build_parser

    for command in ("serve", "demo"):
        args = build_parser().parse_args([command])
        assert (args.host, args.port, args.db) == ("127.0.0.1", 8000, None)


def test_web_settings_come_from_the_environment(monkeypatch):
    from xfv.web.core.config import Settings

    monkeypatch.setenv("XFV_DB_URL", "sqlite:///env.db")
    monkeypatch.setenv("XFV_MAX_UPLOAD_BYTES", "1234")
    settings = Settings()
    assert (settings.db_url, settings.max_upload_bytes) == ("sqlite:///env.db", 1234)
    assert Settings(max_upload_bytes=99).max_upload_bytes == 99


def test_demo_counts_stored_xmaps_on_a_second_run(tmp_path, capsys, monkeypatch):
    from xfv.cli import platform

    monkeypatch.setattr(platform, "DEMO_MODELS", {"lbp": 4})
    db = f"sqlite:///{tmp_path / 'demo.db'}"
    assert main(["demo", "--no-serve", "--db", db]) == 0
    first = capsys.readouterr().out
    assert main(["demo", "--no-serve", "--db", db]) == 0
    second = capsys.readouterr().out
    count = 4
    assert f"X-Maps for {count} pairs ({count} computed now)" in first
    assert f"X-Maps for {count} pairs (0 computed now)" in second


def test_serve_on_a_busy_port_is_one_clear_error(tmp_path, capsys):
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        assert main(["serve", "--port", str(port), "--db", f"sqlite:///{tmp_path / 'x.db'}"]) == 2
    captured = capsys.readouterr()
    assert "serving on" not in captured.out
    assert f"cannot listen on 127.0.0.1:{port}" in captured.err and captured.err.count("\n") == 1


def test_json_into_a_closed_pipe_ends_quietly(tmp_path):
    import subprocess
    import sys

    import numpy as np

    rng = np.random.default_rng(0)
    labels = np.repeat([1, 0], 200)
    distances = np.clip(np.where(labels == 1, rng.normal(0.3, 0.1, 400), rng.normal(0.7, 0.1, 400)), 0, 2)
    scores = tmp_path / "scores.csv"
    scores.write_text("distance,label,fold\n" + "".join(f"{d},{y},{i % 10}\n"
                                                        for i, (d, y) in enumerate(zip(distances, labels))))
    command = f"{sys.executable} -m xfv evaluate --scores {scores} --out {tmp_path / 'out'} --json | head -2"
    result = subprocess.run(["bash", "-o", "pipefail", "-c", command], check=False, capture_output=True, text=True,
                            timeout=300)
    assert result.stdout.splitlines() == ["{", '  "dataset": null,']
    assert "Traceback" not in result.stderr and "BrokenPipeError" not in result.stderr


# -- issue 19: datasets that can be removed, ingests that are all or nothing, a damaged database ------------------------
def _small_dataset(folder, bad: bool = False):
    """Two sample pairs as a CSV dataset in ``folder`` (the second image of the second pair not an image if ``bad``)."""
    import shutil

    folder.mkdir(exist_ok=True)
    images = ["Abel_Pacheco/Abel_Pacheco_0001.jpg", "Abel_Pacheco/Abel_Pacheco_0004.jpg",
              "Aaron_Peirsol/Aaron_Peirsol_0001.jpg", "AJ_Lamas/AJ_Lamas_0001.jpg"]
    for image in images:
        (folder / image).parent.mkdir(exist_ok=True)
        shutil.copyfile(sample_root() / image, folder / image)
    if bad:
        (folder / images[3]).write_text("not an image")
    (folder / "pairs.csv").write_text(f"{images[0]},{images[1]},1\n{images[2]},{images[3]},0\n")
    return folder


def test_a_failed_ingest_leaves_nothing_and_a_corrected_one_succeeds(tmp_path, capsys):
    from sqlalchemy import func, select

    from xfv.store.db import open_database
    from xfv.store.models import Dataset, Image, Pair

    db = f"sqlite:///{tmp_path / 'x.db'}"
    root = _small_dataset(tmp_path / "data", bad=True)
    ingest = ["ingest", "--dataset", "csv", "--root", str(root), "--name", "mine", "--db", db, "--workers", "1"]
    assert main(ingest) == 2
    assert "AJ_Lamas_0001.jpg is not an image file Pillow can read" in capsys.readouterr().err
    with open_database(db)() as session:
        assert [session.scalar(select(func.count()).select_from(t)) for t in (Dataset, Image, Pair)] == [0, 0, 0]
    _small_dataset(root)  # corrected
    assert main(ingest) == 0
    assert "mine: 4 images added (0 already there), 2 pairs added" in capsys.readouterr().out


def test_datasets_are_listed_and_removed_with_everything_stored_for_them(tmp_path, capsys):
    db = f"sqlite:///{tmp_path / 'x.db'}"
    ingest = ["ingest", "--dataset", "lfw", "--root", str(sample_root()), "--name", "mine", "--db", db, "--workers", "1"]
    assert main(ingest) == 0
    assert main(["precompute", "--dataset", "mine", "--model", "lbp", "--xmaps", "1", "--db", db]) == 0
    capsys.readouterr()
    assert main(["datasets", "list", "--db", db]) == 0
    assert capsys.readouterr().out == "mine\tlfw\t60 pairs\t96 images\tlbp\n"
    assert main(["datasets", "remove", "mine", "--db", db]) == 0
    assert capsys.readouterr().out == ("mine: removed 60 pairs, 96 images, 60 results, 26 X-Maps and 11 calibrations "
                                       "(its files are untouched)\n")
    assert (sample_root() / "pairs.txt").is_file()
    assert main(["datasets", "list", "--db", db]) == 0 and capsys.readouterr().out == ""
    assert main(["datasets", "remove", "mine", "--db", db]) == 2
    assert "No dataset named 'mine'; datasets: []." in capsys.readouterr().err
    assert main(ingest) == 0  # anew, at its own root or another
    assert "mine: 96 images added (0 already there), 60 pairs added" in capsys.readouterr().out


def test_an_image_that_links_out_of_the_root_is_refused_unless_allowed(tmp_path, capsys):
    root = _small_dataset(tmp_path / "data")
    outside = tmp_path / "elsewhere.jpg"
    (root / "AJ_Lamas/AJ_Lamas_0001.jpg").rename(outside)
    (root / "AJ_Lamas/AJ_Lamas_0001.jpg").symlink_to(outside)
    db = f"sqlite:///{tmp_path / 'x.db'}"
    ingest = ["ingest", "--dataset", "csv", "--root", str(root), "--db", db, "--workers", "1"]
    assert main(ingest) == 2
    err = capsys.readouterr().err
    assert f"{root / 'pairs.csv'}:2: image 'AJ_Lamas/AJ_Lamas_0001.jpg' leads out of the dataset root" in err
    assert "--allow-outside-root" in err and err.count("\n") == 1
    assert main([*ingest, "--allow-outside-root"]) == 0


def test_a_damaged_database_is_one_line_and_exit_2(tmp_path, capsys):
    damaged = tmp_path / "damaged.db"
    damaged.write_bytes(b"this is not a database" * 1000)
    for command in (["datasets", "list"], ["precompute", "--dataset", "x"], ["serve", "--port", "0"]):
        assert main([*command, "--db", f"sqlite:///{damaged}"]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "Traceback" not in err
        assert f"Cannot open the database sqlite:///{damaged}: file is not a database." in err
