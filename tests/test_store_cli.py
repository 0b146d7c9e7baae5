"""The platform commands: ingest and precompute through ``xfv`` with ``--db``, twice (idempotent)."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from xfv.cli import main
from xfv.cli.platform import sample_root
from xfv.models import list_models
from xfv.store.db import open_database
from xfv.store.models import ModelRecord, Pair, Result, XMapRecord


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


def test_demo_prints_its_progress_and_counts_stored_xmaps_on_a_second_run(tmp_path, capsys, monkeypatch):
    from xfv.cli import platform

    monkeypatch.setattr(platform, "DEMO_MODELS", ("lbp",))
    monkeypatch.setattr(platform, "DEMO_XMAP_PAIRS", (18, 19, 20))
    db = f"sqlite:///{tmp_path / 'demo.db'}"
    assert main(["demo", "--no-serve", "--db", db]) == 0
    first = capsys.readouterr()
    assert main(["demo", "--no-serve", "--db", db]) == 0
    second = capsys.readouterr().out
    steps = [line for line in first.out.splitlines() if line.startswith("[")]  # "[  1.2 s] what it does"
    assert len(steps) >= 6 and all(float(line[1:6]) >= 0 for line in steps)
    assert "X-Maps (lbp, 3 pairs, 3 images)" in first.err  # the progress bar counts forward passes
    assert "X-Maps for 3 pairs, 3 computed now in" in first.out and "passes/s" in first.out
    assert "X-Maps for 3 pairs, 0 computed now" in second
    with open_database(db)() as session:
        names = dict(session.execute(select(Pair.position, Pair.id)).all())
        stored = set(session.scalars(select(XMapRecord.pair_id).distinct()))
        assert stored == {names[p] for p in (18, 19, 20)}  # the pairs named, which share 3 images
        assert session.scalar(select(ModelRecord.passes_per_second)) > 0  # measured for the viewer's estimates


def test_the_demo_shows_the_strong_models_side_by_side():
    from xfv.cli.platform import DEMO_MODELS, DEMO_XMAP_PAIRS, sample_root
    from xfv.datasets import read_pairs

    assert DEMO_MODELS == ("dlib", "sface") and "lbp" in list_models()  # lbp stays available by name
    pairs = read_pairs("lfw", sample_root()).pairs
    images = {image for p in DEMO_XMAP_PAIRS for image in (pairs[p].image1, pairs[p].image2)}
    assert len(DEMO_XMAP_PAIRS) == 3 and len(images) == 3  # X-Maps cost per image: 3 pairs for the price of 3 images


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
        # the demo finds out at once, before its minutes of work
        assert main(["demo", "--port", str(port), "--db", f"sqlite:///{tmp_path / 'demo.db'}"]) == 2
        captured = capsys.readouterr()
        assert captured.out == "" and f"cannot listen on 127.0.0.1:{port}" in captured.err


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
@pytest.mark.slow
def test_the_real_demo_computes_both_models_maps_for_the_same_pairs(tmp_path, capsys):
    """``xfv demo`` as a user runs it (without serving): dlib and SFace, results for the 60 pairs and X-Maps of the
    same three pairs for both, computed here by the code (nothing shipped), each model's speed measured."""
    db = f"sqlite:///{tmp_path / 'demo.db'}"
    assert main(["demo", "--no-serve", "--db", db]) == 0
    out = capsys.readouterr().out
    assert "dlib: accuracy" in out and "sface: accuracy" in out and out.rstrip().endswith("--model lbp")
    with open_database(db)() as session:
        models = dict(session.execute(select(ModelRecord.name, ModelRecord.id)).all())
        assert set(models) == {"dlib", "sface"}
        for model_id in models.values():
            assert session.scalar(select(func.count(Result.id)).where(Result.model_id == model_id)) == 60
        mapped = {name: set(session.scalars(select(XMapRecord.pair_id).distinct().where(XMapRecord.model_id == i)))
                  for name, i in models.items()}
        assert mapped["dlib"] == mapped["sface"] and len(mapped["dlib"]) == 3
        assert all(rate > 0 for rate in session.scalars(select(ModelRecord.passes_per_second)))
