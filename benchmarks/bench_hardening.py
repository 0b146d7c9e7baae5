"""Hardening measurements against a real ``xfv serve`` on 127.0.0.1 (started and stopped here).

Sections (any of them, in order; default ``photos``):

- ``photos`` (issue 9): three photos without a face, each with an LFW face through ``POST /api/verify`` (a
  1600 x 1200 landscape JPEG, a 4000 x 3000 smooth-noise JPEG, a 6300 x 6300 constant-colour PNG); a normal
  verify sent 0.3 s later, concurrently. Goals: the bad one 4xx in <= 5 s, the normal one in <= 2 s, server peak
  RSS (VmHWM) <= 1.5 GB. Then a burst of 12 ``POST /api/explain`` (over the queue cap: 503 with ``Retry-After``,
  never a 500), and the server stopped during a task (SIGTERM, then SIGKILL) and started again: the upload and its
  task are still listed and the task finishes.
- ``burst`` (issue 19): ``--clients`` (200) concurrent explorer requests (``GET /api/pairs``, each on its own
  connection), against this checkout's server and, with ``--main-python`` and ``--main-db``, today's main side by
  side (alternating, ``--rounds`` times). Goals: every one answered within 60 s, no 5xx but 503 JSON with
  ``Retry-After``, at least 95 % 200. Prints p50 / p95 / max and the status counts.
- ``slow-bodies``: ``--connections`` (300) connections send the headers of ``POST /api/explain`` with
  ``Content-Length: 20000000`` and then nothing (``--stall headers``: half a request line); a normal request is
  sent 5 s later. Goals: at least 95 % closed by the server within 75 s, the normal request answered.
- ``bomb``: a 13300 x 13300 progressive CMYK JPEG (177 Mpx declared, generated once into ``--work``) to
  ``POST /api/verify`` once, then 8 times at once; and through ``xfv verify``. Goals: 4xx, server peak RSS
  <= 1.5 GB, ``xfv verify`` peak RSS <= 600 MB. Then the costliest photo still accepted, a 6300 x 6300 (39.7 Mpx)
  progressive CMYK JPEG, 8 times at once to a fresh server: its peak RSS (for the record, no goal).

    python benchmarks/bench_hardening.py [photos] [burst] [slow-bodies] [bomb] [--db URL] [--port 8180]
        [--main-python /path/to/main/.venv/bin/python --main-db URL]

Without ``--db`` a SQLite database is prepared like ``xfv demo --no-serve`` (the bundled LFW sample). The
database outage measurements (PostgreSQL stopped and frozen) are in ``benchmarks/bench_outage.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import random
import selectors
import signal
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

from xfv.cli.platform import sample_root

SAME = ("Abel_Pacheco/Abel_Pacheco_0001.jpg", "Abel_Pacheco/Abel_Pacheco_0004.jpg")
SORTS = ["id", "-id", "confidence", "-confidence", "distance", "-distance", "identity1", "-quality1", "fold"]


def encode(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def smooth_noise(width: int, height: int, cells: int, seed: int) -> np.ndarray:
    """Low-frequency colour noise: a coarse random grid enlarged bicubically (no face, few JPEG bytes)."""
    coarse = np.random.default_rng(seed).integers(0, 256, (cells * height // width + 1, cells, 3), dtype=np.uint8)
    return np.asarray(Image.fromarray(coarse).resize((width, height), Image.BICUBIC))


def landscape(width: int = 1600, height: int = 1200) -> bytes:
    """Sky gradient over a textured ground with a horizon: a landscape without a face."""
    rows = np.linspace(0, 1, height)[:, None, None]
    sky = (np.array([90, 150, 230]) * (1 - rows) + np.array([200, 220, 250]) * rows)
    ground = smooth_noise(width, height, 64, 1) * 0.3 + np.array([60, 110, 40])
    horizon = np.arange(height)[:, None, None] > height * 0.55 + 40 * np.sin(np.arange(width) / 150)[None, :, None]
    pixels = np.where(horizon, ground, np.broadcast_to(sky, (height, width, 3)))
    return encode(Image.fromarray(pixels.clip(0, 255).astype(np.uint8)), "JPEG", quality=90)


def photos() -> dict[str, bytes]:
    return {
        "landscape 1600x1200 JPEG": landscape(),
        "noise 4000x3000 JPEG": encode(Image.fromarray(smooth_noise(4000, 3000, 12, 2)), "JPEG", quality=35),
        "constant 6300x6300 PNG": encode(Image.new("RGB", (6300, 6300), (120, 130, 140)), "PNG"),
    }


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM")


def load() -> str:
    return "load " + " ".join(Path("/proc/loadavg").read_text().split()[:3])


class Server:
    """``xfv serve`` in a subprocess on 127.0.0.1; ``python`` picks the checkout (its venv), ``env`` adds
    settings (``XFV_...``)."""

    def __init__(self, db: str, port: int, python: str = sys.executable, env: dict | None = None,
                 name: str = "this checkout") -> None:
        self.db, self.port, self.url, self.python, self.name = db, port, f"http://127.0.0.1:{port}", python, name
        self.env = {**os.environ, **(env or {})}
        if python != sys.executable:  # another checkout: its own code, not this one's
            self.env.pop("PYTHONPATH", None)
        self.process: subprocess.Popen | None = None

    def start(self) -> float:
        with socket.socket() as probe:  # another server there would answer in this one's stead
            if probe.connect_ex(("127.0.0.1", self.port)) == 0:
                raise RuntimeError(f"{self.name}: port {self.port} is taken; choose another --port")
        started = time.perf_counter()
        self.log = Path(tempfile.mkstemp(prefix=f"xfv-serve-{self.port}-", suffix=".log")[1])
        with self.log.open("wb") as log:  # the server's stderr: a file, so that no pipe fills up and blocks it
            self.process = subprocess.Popen([self.python, "-m", "xfv", "serve", "--db", self.db, "--host",
                                             "127.0.0.1", "--port", str(self.port)], stdout=subprocess.DEVNULL,
                                            stderr=log, env=self.env, cwd=tempfile.gettempdir())
        while time.perf_counter() - started < 180:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name}: the server exited: {self.errors()}")
            try:
                if httpx.get(f"{self.url}/api/models", timeout=2).status_code == 200:
                    return time.perf_counter() - started
            except httpx.HTTPError:
                time.sleep(0.3)
        raise RuntimeError(f"{self.name}: the server did not start")

    def errors(self, lines: int = 5) -> str:
        return " | ".join(self.log.read_text(errors="replace").strip().splitlines()[-lines:])

    def stop(self, sig: int = signal.SIGTERM) -> str:
        assert self.process is not None
        self.process.send_signal(sig)
        try:
            self.process.wait(timeout=15)
            how = signal.Signals(sig).name
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            how = f"{signal.Signals(sig).name}, then SIGKILL after 15 s"
        return how


# -- photos (issue 9) -----------------------------------------------------------------------------------------------
def post_pair(url: str, route: str, data1: bytes, data2: bytes) -> tuple[int, float, dict, dict]:
    started = time.perf_counter()
    response = httpx.post(f"{url}{route}", files={"image1": ("a", data1), "image2": ("b", data2)}, timeout=300)
    body = response.json() if response.headers.get("content-type") == "application/json" else {}
    return response.status_code, time.perf_counter() - started, body, dict(response.headers)


def wait_task(url: str, task_id: str, timeout: float = 600) -> dict:
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        task = httpx.get(f"{url}/api/tasks/{task_id}", timeout=30).json()
        if task["state"] in ("done", "error"):
            return task
        time.sleep(0.5)
    return task


def fresh(face: bytes, seed: int) -> bytes:
    """The photo mirrored with +-1 noise: a new image for the caches, so its X-Maps are really computed."""
    pixels = np.asarray(Image.open(io.BytesIO(face)).convert("RGB"), dtype=np.int16)[:, ::-1]
    noise = np.random.default_rng([seed, time.time_ns()]).integers(-1, 2, pixels.shape)
    return encode(Image.fromarray((pixels + noise).clip(0, 255).astype(np.uint8)), "PNG")


def bad_photos(server: Server, face1: bytes, face2: bytes) -> list[dict]:
    rows = []
    with ThreadPoolExecutor(2) as pool:
        # the first requests load the model and each worker thread's detectors: a start-up cost, reported apart
        warm = list(pool.map(lambda _: post_pair(server.url, "/api/verify", face1, face2), range(2)))
        print(json.dumps({"warm_up_verify": [(status, round(seconds, 2)) for status, seconds, *_ in warm]}),
              flush=True)
        for name, data in photos().items():
            bad = pool.submit(post_pair, server.url, "/api/verify", data, face1)
            time.sleep(0.3)
            normal = pool.submit(post_pair, server.url, "/api/verify", face1, face2)
            (bad_status, bad_time, bad_body, _), (ok_status, ok_time, _, _) = bad.result(), normal.result()
            rows.append({"photo": name, "bytes": len(data), "status": bad_status, "seconds": round(bad_time, 2),
                         "detail": bad_body.get("detail", ""), "normal_status": ok_status,
                         "normal_seconds": round(ok_time, 2), "server_peak_rss_mb": round(peak_rss_mb(server.process.pid))})
            print(json.dumps(rows[-1]), flush=True)
    return rows


def explain_burst(server: Server, face1: bytes, face2: bytes, count: int = 12) -> dict:
    with ThreadPoolExecutor(count) as pool:
        pairs = [(fresh(face1, i), face2) for i in range(count)]
        results = list(pool.map(lambda pair: post_pair(server.url, "/api/explain", *pair), pairs))
    statuses = [status for status, *_ in results]
    refused = [(status, headers.get("retry-after")) for status, _, _, headers in results if status in (429, 503)]
    tasks = [wait_task(server.url, body["task"]["id"]) for status, _, body, _ in results if status == 202]
    summary = {"statuses": statuses, "refused_with_retry_after": sum(1 for _, ra in refused if ra),
               "slowest_answer_s": round(max(t for _, t, _, _ in results), 2),
               "tasks_done": sum(t["state"] == "done" for t in tasks), "tasks": len(tasks)}
    print(json.dumps(summary), flush=True)
    return summary


def restart(server: Server, face1: bytes, face2: bytes, sig: signal.Signals) -> dict:
    status, _, body, _ = post_pair(server.url, "/api/explain", fresh(face1, 100 + sig), face2)
    assert status == 202, body
    time.sleep(1.0)
    state_before = httpx.get(f"{server.url}/api/tasks/{body['task']['id']}", timeout=30).json()["state"]
    how = server.stop(sig)
    downtime = server.start()
    listed = httpx.get(f"{server.url}/api/uploads/{body['id']}", timeout=30)
    task = wait_task(server.url, body["task"]["id"])
    maps = [httpx.get(f"{server.url}{url}", timeout=30).status_code for url in body["xmaps"].values()]
    summary = {"task_state_before": state_before, "stopped_with": how, "restart_s": round(downtime, 1),
               "upload_listed_after": listed.status_code, "task_after": listed.json().get("task", {}).get("state"),
               "same_task": listed.json().get("task", {}).get("id") == body["task"]["id"],
               "task_final": task["state"], "xmap_statuses": sorted(set(maps))}
    print(json.dumps(summary), flush=True)
    return summary


def section_photos(args: argparse.Namespace, db: str) -> bool:
    face1, face2 = ((sample_root() / path).read_bytes() for path in SAME)
    server = Server(db, args.port)
    print(f"server started in {server.start():.1f} s", flush=True)
    try:
        rows = bad_photos(server, face1, face2)
        explained = explain_burst(server, face1, face2)
        restarts = [restart(server, face1, face2, sig) for sig in (signal.SIGTERM, signal.SIGKILL)]
    finally:
        peak = peak_rss_mb(server.process.pid)
        server.stop()
    ok = (all(400 <= r["status"] < 500 and r["seconds"] <= 5 and r["normal_status"] == 200
              and r["normal_seconds"] <= 2 for r in rows) and max(r["server_peak_rss_mb"] for r in rows) <= 1536
          and 500 not in explained["statuses"] and explained["refused_with_retry_after"] > 0
          and all(r["upload_listed_after"] == 200 and r["task_final"] == "done" for r in restarts))
    print(f"photos: peak RSS of the restarted server {peak:.0f} MB; goals met: {ok}")
    return ok


# -- burst (issue 19) -----------------------------------------------------------------------------------------------
def explorer_queries(dataset: str, model: str, count: int, seed: int) -> list[dict]:
    """What explorers ask for: a sort, a page, sometimes a filter (the same list for every server)."""
    rng = random.Random(seed)
    queries = []
    for _ in range(count):
        params = {"dataset": dataset, "model": model, "sort": rng.choice(SORTS), "page": rng.randint(1, 60),
                  "page_size": rng.choice([20, 20, 50])}
        if rng.random() < 0.3:
            params["label"] = rng.choice(["same", "different"])
        if rng.random() < 0.2:
            params["where"] = f"{model}:correct:{rng.choice(['true', 'false'])}"
        queries.append(params)
    return queries


async def one_request(client: httpx.AsyncClient, url: str, params: dict, timeout: float) -> dict:
    started = time.perf_counter()
    try:
        response = await client.get(url, params=params, timeout=timeout)
        return {"status": response.status_code, "seconds": time.perf_counter() - started,
                "json": response.headers.get("content-type", "").startswith("application/json"),
                "retry_after": response.headers.get("retry-after")}
    except httpx.HTTPError as error:
        return {"status": type(error).__name__, "seconds": time.perf_counter() - started, "json": False,
                "retry_after": None}


async def burst(base: str, queries: list[dict], timeout: float) -> list[dict]:
    """All queries at once, each on a connection of its own (no pooling: as many browsers would)."""
    limits = httpx.Limits(max_connections=len(queries), max_keepalive_connections=0)
    async with httpx.AsyncClient(limits=limits) as client:
        return await asyncio.gather(*(one_request(client, f"{base}/api/pairs", q, timeout) for q in queries))


def summarise(name: str, results: list[dict], seconds: float) -> dict:
    statuses: dict[str, int] = {}
    for r in results:
        statuses[str(r["status"])] = statuses.get(str(r["status"]), 0) + 1
    times = np.array([r["seconds"] for r in results])
    ok = np.array([r["seconds"] for r in results if r["status"] == 200])
    bad_5xx = [r for r in results if isinstance(r["status"], int) and r["status"] >= 500
               and not (r["status"] == 503 and r["json"] and r["retry_after"])]
    summary = {"server": name, "statuses": statuses, "p50_s": round(float(np.percentile(times, 50)), 2),
               "p95_s": round(float(np.percentile(times, 95)), 2), "max_s": round(float(times.max()), 2),
               "p50_200_s": round(float(np.percentile(ok, 50)), 2) if ok.size else None,
               "share_200": round(float(np.mean([r["status"] == 200 for r in results])), 3),
               "other_5xx_or_plain_503": len(bad_5xx), "burst_s": round(seconds, 1), "load": load()}
    summary["goals_met"] = bool(summary["max_s"] <= 60 and not bad_5xx and summary["share_200"] >= 0.95
                                and all(isinstance(r["status"], int) for r in results))
    return summary


def section_burst(args: argparse.Namespace, db: str) -> bool:
    servers = [Server(db, args.port, name="this checkout")]
    if args.main_python:
        servers.insert(0, Server(args.main_db or db, args.port + 1, python=args.main_python, name="main"))
    ok = True
    try:
        for server in servers:
            print(f"{server.name}: started in {server.start():.1f} s", flush=True)
        dataset = httpx.get(f"{servers[-1].url}/api/datasets", timeout=60).json()[0]
        model = "dlib" if any(m["name"] == "dlib" for m in dataset["models"]) else dataset["models"][0]["name"]
        for server in servers:  # warm: the first queries of a process are slower
            asyncio.run(burst(server.url, explorer_queries(dataset["name"], model, 10, 0), 120))
        for round_ in range(args.rounds):
            for server in servers:
                queries = explorer_queries(dataset["name"], model, args.clients, seed=round_ + 1)
                started = time.perf_counter()
                results = asyncio.run(burst(server.url, queries, args.client_timeout))
                summary = summarise(server.name, results, time.perf_counter() - started)
                summary["round"] = round_ + 1
                print(json.dumps(summary), flush=True)
                ok &= summary["goals_met"] or server.name == "main"
    finally:
        for server in servers:
            if server.process is not None:
                server.stop()
    print(f"burst of {args.clients} on {dataset['name']} / {model}: goals met by this checkout: {ok}")
    return ok


# -- slow clients ---------------------------------------------------------------------------------------------------
def stalled_connections(url: str, count: int, stall: str, observe: float) -> dict:
    """``count`` connections that stall (after their headers, or within them); seconds until the server closes
    each, a normal request 5 s in."""
    host, port = url.removeprefix("http://").split(":")
    request = (b"POST /api/explain HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\n"
               b"Content-Length: 20000000\r\n\r\n--b\r\n")
    partial = b"GET /api/pairs HTTP/1.1\r\nHost: x\r\nX-Slow: "
    selector, opened, closed, answers = selectors.DefaultSelector(), {}, {}, {}
    started = time.perf_counter()
    for i in range(count):
        sock = socket.create_connection((host, int(port)), timeout=10)
        sock.sendall(request if stall == "body" else partial)
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ, i)
        opened[i] = sock
    normal = None
    while time.perf_counter() - started < observe and len(closed) < count:
        if normal is None and time.perf_counter() - started > 5:
            t0 = time.perf_counter()
            try:
                status = httpx.get(f"{url}/api/models", timeout=30).status_code
            except httpx.HTTPError as error:
                status = type(error).__name__
            normal = {"status": status, "seconds": round(time.perf_counter() - t0, 3)}
        for key, _ in selector.select(timeout=0.2):
            try:
                data = key.fileobj.recv(65536)
            except OSError:
                data = b""
            if data:
                answers.setdefault(key.data, data.split(b"\r\n", 1)[0].decode(errors="replace"))
                continue
            closed[key.data] = time.perf_counter() - started
            selector.unregister(key.fileobj)
            key.fileobj.close()
    for sock in opened.values():
        if sock.fileno() != -1:
            sock.close()
    times = sorted(closed.values())
    return {"connections": count, "stall": stall, "closed_by_server": len(closed),
            "closed_within_75s": sum(t <= 75 for t in times), "median_close_s": round(float(np.median(times)), 1)
            if times else None, "answers": sorted(set(answers.values())), "normal_request": normal, "load": load()}


def section_slow(args: argparse.Namespace, db: str) -> bool:
    servers = [Server(db, args.port, name="this checkout")]
    if args.main_python:
        servers.insert(0, Server(args.main_db or db, args.port + 1, python=args.main_python, name="main"))
    ok = True
    for server in servers:
        server.start()
        try:
            for stall in ("body", "headers"):
                summary = {"server": server.name, **stalled_connections(server.url, args.connections, stall, 80)}
                summary["goals_met"] = (summary["closed_within_75s"] >= 0.95 * args.connections
                                        and summary["normal_request"] is not None
                                        and summary["normal_request"]["status"] == 200)
                print(json.dumps(summary), flush=True)
                ok &= summary["goals_met"] or server.name == "main"
        finally:
            server.stop()
    print(f"slow bodies: goals met by this checkout: {ok}")
    return ok


# -- a JPEG bomb ----------------------------------------------------------------------------------------------------
def bomb_jpeg(folder: Path, side: int = 13300) -> Path:
    """A ``side`` x ``side`` progressive CMYK JPEG (made once, in a process of its own: it needs ~1.5 GB)."""
    path = folder / f"bomb-cmyk-progressive-{side}.jpg"
    if not path.exists():
        script = ("import sys; from PIL import Image; s = int(sys.argv[2]); "
                  "g = Image.linear_gradient('L').resize((s, s)); "
                  "Image.merge('CMYK', (g, g.rotate(90), g.transpose(Image.FLIP_TOP_BOTTOM), g.rotate(270)))"
                  ".save(sys.argv[1], 'JPEG', progressive=True, quality=70)")
        subprocess.run([sys.executable, "-c", script, str(path), str(side)], check=True)
    return path


def cli_peak(python: str, photo: Path, face: Path) -> dict:
    """``xfv verify photo face`` in a process of its own: exit code, first error line, peak RSS (VmHWM)."""
    script = ("import sys; from xfv.cli import main; code = main(sys.argv[1:]); "
              "hwm = next(line.split()[1] for line in open('/proc/self/status') if line.startswith('VmHWM')); "
              "print('peak', hwm, file=sys.stderr); sys.exit(code)")
    env = {k: v for k, v in os.environ.items() if python == sys.executable or k != "PYTHONPATH"}
    started = time.perf_counter()
    result = subprocess.run([python, "-c", script, "verify", str(photo), str(face), "--model", "lbp"],
                            capture_output=True, text=True, check=False, env=env, cwd=tempfile.gettempdir())
    lines = result.stderr.strip().splitlines()
    return {"exit": result.returncode, "seconds": round(time.perf_counter() - started, 1),
            "peak_mb": round(int(lines[-1].split()[1]) / 1024), "message": next(
                (line for line in lines if "error" in line), lines[0] if lines else "")[:160]}


def section_bomb(args: argparse.Namespace, db: str) -> bool:
    photo = bomb_jpeg(Path(args.work))
    face = sample_root() / SAME[0]
    data, face_bytes = photo.read_bytes(), face.read_bytes()
    print(f"bomb: {photo.name}, {len(data) / 1e6:.1f} MB", flush=True)
    servers = [Server(db, args.port, name="this checkout")]
    pythons = [("this checkout", sys.executable)]
    if args.main_python:
        servers.insert(0, Server(args.main_db or db, args.port + 1, python=args.main_python, name="main"))
        pythons.insert(0, ("main", args.main_python))
    ok = True
    for server in servers:
        server.start()
        try:
            one = post_pair(server.url, "/api/verify", data, face_bytes)
            after_one = peak_rss_mb(server.process.pid)
            with ThreadPoolExecutor(8) as pool:
                eight = list(pool.map(post_pair, [server.url] * 8, ["/api/verify"] * 8, [data] * 8, [face_bytes] * 8))
            summary = {"server": server.name, "one": [one[0], round(one[1], 2), one[2].get("detail", "")[:120]],
                       "peak_rss_after_one_mb": round(after_one), "eight_statuses": sorted(r[0] for r in eight),
                       "eight_slowest_s": round(max(r[1] for r in eight), 2),
                       "peak_rss_after_eight_mb": round(peak_rss_mb(server.process.pid)), "load": load()}
            summary["goals_met"] = (400 <= one[0] < 500 and all(400 <= r[0] < 500 for r in eight)
                                    and summary["peak_rss_after_eight_mb"] <= 1536)
            print(json.dumps(summary), flush=True)
            ok &= summary["goals_met"] or server.name == "main"
        finally:
            server.stop()
    at_cap = bomb_jpeg(Path(args.work), 6300).read_bytes()
    for server in servers:
        server.start()
        try:
            with ThreadPoolExecutor(8) as pool:
                eight = list(pool.map(post_pair, [server.url] * 8, ["/api/verify"] * 8, [at_cap] * 8, [face_bytes] * 8))
            print(json.dumps({"server": server.name, "photo": "6300x6300 progressive CMYK JPEG, 8 at once",
                              "statuses": sorted(r[0] for r in eight), "slowest_s": round(max(r[1] for r in eight), 1),
                              "peak_rss_mb": round(peak_rss_mb(server.process.pid)), "load": load()}), flush=True)
        finally:
            server.stop()
    for name, python in pythons:
        summary = {"cli": name, **cli_peak(python, photo, face)}
        summary["goals_met"] = summary["exit"] == 2 and summary["peak_mb"] <= 600
        print(json.dumps(summary), flush=True)
        ok &= summary["goals_met"] or name == "main"
    print(f"bomb: goals met by this checkout: {ok}")
    return ok


SECTIONS = {"photos": section_photos, "burst": section_burst, "slow-bodies": section_slow, "bomb": section_bomb}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sections", nargs="*", metavar="SECTION", help=f"any of {list(SECTIONS)} (default: photos)")
    parser.add_argument("--db", help="database URL (default: a fresh SQLite prepared like 'xfv demo --no-serve')")
    parser.add_argument("--port", type=int, default=8180, help="this checkout's port (main's: the next one)")
    parser.add_argument("--main-python", help="the Python of a checkout of main (its venv) to measure side by side")
    parser.add_argument("--main-db", help="main's copy of the database (default: --db; a migration may differ)")
    parser.add_argument("--clients", type=int, default=200, help="burst: concurrent requests")
    parser.add_argument("--rounds", type=int, default=2, help="burst: rounds (alternating servers)")
    parser.add_argument("--client-timeout", type=float, default=120.0, help="burst: seconds a client waits")
    parser.add_argument("--connections", type=int, default=300, help="slow-bodies: stalled connections")
    parser.add_argument("--work", default=tempfile.gettempdir(), help="bomb: folder for the generated JPEG")
    args = parser.parse_args()
    if unknown := [name for name in args.sections if name not in SECTIONS]:
        parser.error(f"unknown sections {unknown}; expected any of {list(SECTIONS)}")
    db = args.db
    if db is None:
        db = f"sqlite:///{Path(tempfile.mkdtemp(prefix='xfv-bench-')) / 'demo.db'}"
        subprocess.run([sys.executable, "-m", "xfv", "demo", "--no-serve", "--db", db], check=True, env=os.environ)
    print(load(), flush=True)
    results = {name: SECTIONS[name](args, db) for name in args.sections or ["photos"]}
    print(f"all goals met: {all(results.values())} ({results})")
    return 0 if all(results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
