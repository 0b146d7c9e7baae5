"""Shared fixtures: an isolated cache directory and the real data (``../shared/data``) for slow tests."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

# ``../shared/data`` beside the clone (as in CI), or wherever ``XFV_TEST_DATA`` points (a git worktree elsewhere).
# The platform fixtures (sample database, fresh URLs on SQLite and PostgreSQL) for the tests that use them.
pytest_plugins = ["conftest_web"]

SHARED_DATA = Path(os.environ.get("XFV_TEST_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data")


@pytest.fixture(autouse=True, scope="session")
def isolated_cache(tmp_path_factory):
    """Every test session writes caches to a fresh folder, never to the user's cache."""
    directory = tmp_path_factory.mktemp("xfv-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XFV_CACHE_DIR", str(directory))
        yield directory


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data not found at {SHARED_DATA} (a fresh clone without ../shared)")
    return SHARED_DATA


@pytest.fixture()
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


@pytest.fixture()
def run_cli(monkeypatch, capsys):
    """``xfv`` with only the X-Map commands registered; returns (exit code, stdout, stderr)."""
    import xfv.cli

    monkeypatch.setattr(xfv.cli, "COMMAND_MODULES", ["xfv.cli.xmaps"])

    def run(*argv: str) -> tuple[int, str, str]:
        code = xfv.cli.main(list(argv))
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run
