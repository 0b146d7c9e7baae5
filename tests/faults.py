"""Faults for the platform tests: a PostgreSQL server of the test's own to stop and freeze, a model that takes its
time, an ``xfv serve``-like server in a thread, and a file listing to see what a request left behind."""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Self

import numpy as np

from xfv.models.lbp import LBPModel


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class ThrowawayPostgres:
    """A PostgreSQL cluster in a temporary folder on a free loopback port, which the test may stop and freeze
    (SIGSTOP, as a hung host would be) and start and thaw again; removed at :meth:`close`. As root the server
    runs as the ``postgres`` user (``su``), as CI's does."""

    def __init__(self) -> None:
        binaries = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        if not binaries:
            raise RuntimeError("no PostgreSQL server binaries (/usr/lib/postgresql/*/bin)")
        self.bin = Path(binaries[-1]).parent
        self.folder = Path(tempfile.mkdtemp(prefix="xfv-pg-"))
        self.data, self.port = self.folder / "data", free_port()
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres")
        self._run(f"{self.bin / 'initdb'} -D {self.data} -A trust -U postgres")
        self.start()
        self._run(f"{self.bin / 'psql'} -h 127.0.0.1 -p {self.port} -U postgres -qc 'CREATE DATABASE xfv'")

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/xfv"

    def _run(self, command: str) -> None:
        argv = ["su", "postgres", "-c", command] if os.geteuid() == 0 else ["bash", "-c", command]
        subprocess.run(argv, check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        self._run(f"{self.bin / 'pg_ctl'} -D {self.data} -o '-h 127.0.0.1 -p {self.port} -k {self.data}' "
                  f"-l {self.folder / 'log'} -w start")

    def stop(self) -> None:
        self._run(f"{self.bin / 'pg_ctl'} -D {self.data} -m immediate -w stop")

    def _pids(self) -> list[int]:
        """The postmaster and its children (checkpointer, backends, ...)."""
        main = int((self.data / "postmaster.pid").read_text().split()[0])
        children = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == main:
                children.append(int(stat.parent.name))
        return [*children, main]

    def freeze(self) -> None:
        for pid in self._pids():
            os.kill(pid, signal.SIGSTOP)

    def thaw(self) -> None:
        for pid in reversed(self._pids()):
            os.kill(pid, signal.SIGCONT)

    def close(self) -> None:
        try:
            self.thaw()
            self.stop()
        except (OSError, subprocess.CalledProcessError, ValueError):
            pass
        shutil.rmtree(self.folder, ignore_errors=True)


def slow_down_lbp(monkeypatch, delay: float = 0.05) -> None:
    """Make the ``lbp`` model pause ``delay`` s per batch (an upload's X-Maps then take ~3 s: long enough to be
    caught running); its outputs and fingerprint stay those of lbp, so the shipped calibration still judges it."""
    forward = LBPModel._forward

    def slow(self, faces: np.ndarray) -> np.ndarray:
        time.sleep(delay)
        return forward(self, faces)

    monkeypatch.setattr(LBPModel, "_forward", slow)


class LiveServer:
    """The app served by Uvicorn as ``xfv serve`` configures it (:func:`xfv.web.server.server_config`), in a
    thread of this process (so that models registered by the test are known), on a free loopback port."""

    def __init__(self, app, settings) -> None:
        import uvicorn

        from xfv.web.server import server_config

        self.port = free_port()
        config = server_config(app, settings)
        config.host, config.port = "127.0.0.1", self.port
        self.server = uvicorn.Server(config)
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> Self:
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *_exc) -> None:
        self.server.should_exit = True
        self.thread.join(15)


def files_under(*folders: Path) -> dict[str, int]:
    """Every file under the folders, with its size."""
    found = {}
    for folder in folders:
        for path in Path(folder).rglob("*"):
            if path.is_file():
                found[str(path)] = path.stat().st_size
    return found


class ServeProcess:
    """``xfv serve`` in a process of its own on a free loopback port, with ``XFV_*`` settings from ``env``; its
    stderr goes to ``log`` (read it with :meth:`output`)."""

    def __init__(self, db_url: str, log: Path, **env: str) -> None:
        self.db_url, self.log, self.port = db_url, log, free_port()
        self.env = {**os.environ, **{f"XFV_{key.upper()}": str(value) for key, value in env.items()}}
        self.url = f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Self:
        import httpx

        with self.log.open("wb") as log:
            self.process = subprocess.Popen([sys.executable, "-m", "xfv", "serve", "--db", self.db_url, "--port",
                                             str(self.port)], stdout=subprocess.DEVNULL, stderr=log, env=self.env)
        deadline = time.monotonic() + 120
        while True:
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"xfv serve did not start: {self.output()}")
            try:
                if httpx.get(f"{self.url}/api/models", timeout=5).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.2)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def __exit__(self, *_exc) -> None:
        self.process.terminate()
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def engine_url(factory) -> str:
    """The database URL behind a session factory (with its password, to hand to another process)."""
    return factory.kw["bind"].url.render_as_string(hide_password=False)
