"""Hardening measurement of issue 9 against a real ``xfv serve`` on 127.0.0.1 (started and stopped here).

1. Three photos without a face, each with an LFW face through ``POST /api/verify`` (a 1600 x 1200 landscape
   JPEG, a 4000 x 3000 smooth-noise JPEG, a 6300 x 6300 constant-colour PNG); a normal verify (two photos of
   one person) is sent 0.3 s later, concurrently. Goals: the bad one 4xx in <= 5 s, the normal one in <= 2 s,
   server peak RSS (VmHWM) <= 1.5 GB.
2. A burst of 12 ``POST /api/explain``: those over the queue cap get 503 with ``Retry-After``, none a 500.
3. ``POST /api/explain``, then the server is stopped while its task runs (SIGTERM, then again with SIGKILL) and
   started again: the upload and its task are still listed, and the task finishes.

    python benchmarks/bench_hardening.py [--db URL] [--port 8180]

Without ``--db`` a SQLite database is prepared like ``xfv demo --no-serve`` (the bundled LFW sample).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import signal
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


class Server:
    """``xfv serve`` in a subprocess on 127.0.0.1."""

    def __init__(self, db: str, port: int) -> None:
        self.db, self.port, self.url = db, port, f"http://127.0.0.1:{port}"
        self.process: subprocess.Popen | None = None

    def start(self) -> float:
        started = time.perf_counter()
        self.process = subprocess.Popen([sys.executable, "-m", "xfv", "serve", "--db", self.db, "--host",
                                         "127.0.0.1", "--port", str(self.port)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        while time.perf_counter() - started < 120:
            try:
                if httpx.get(f"{self.url}/api/models", timeout=2).status_code == 200:
                    return time.perf_counter() - started
            except httpx.HTTPError:
                time.sleep(0.3)
        raise RuntimeError("the server did not start")

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


def burst(server: Server, face1: bytes, face2: bytes, count: int = 12) -> dict:
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", help="database URL (default: a fresh SQLite prepared like 'xfv demo --no-serve')")
    parser.add_argument("--port", type=int, default=8180)
    args = parser.parse_args()
    db = args.db
    if db is None:
        db = f"sqlite:///{Path(tempfile.mkdtemp(prefix='xfv-bench-')) / 'demo.db'}"
        subprocess.run([sys.executable, "-m", "xfv", "demo", "--no-serve", "--db", db], check=True, env=os.environ)
    face1, face2 = ((sample_root() / path).read_bytes() for path in SAME)
    server = Server(db, args.port)
    print(f"server started in {server.start():.1f} s", flush=True)
    try:
        rows = bad_photos(server, face1, face2)
        explained = burst(server, face1, face2)
        restarts = [restart(server, face1, face2, sig) for sig in (signal.SIGTERM, signal.SIGKILL)]
    finally:
        peak = peak_rss_mb(server.process.pid)
        server.stop()
    ok = (all(400 <= r["status"] < 500 and r["seconds"] <= 5 and r["normal_status"] == 200
              and r["normal_seconds"] <= 2 for r in rows) and max(r["server_peak_rss_mb"] for r in rows) <= 1536
          and 500 not in explained["statuses"] and explained["refused_with_retry_after"] > 0
          and all(r["upload_listed_after"] == 200 and r["task_final"] == "done" for r in restarts))
    print(f"peak RSS of the restarted server: {peak:.0f} MB; all goals met: {ok}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
