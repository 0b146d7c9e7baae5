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
