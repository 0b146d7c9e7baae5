"""Explorer API benchmark: p95 latency of ``GET /api/pairs`` (sort + filter + page) over 6,000 synthetic pairs
x 3 models on SQLite (goal: <= 50 ms), with per-model filters on any of them (``where``) and the viewer's
previous / next (``/api/pairs/{id}/neighbours``), then a bounded load of 50 concurrent clients on 127.0.0.1 (goal: no errors).

    python benchmarks/bench_api.py [--requests 300] [--clients 50] [--per-client 20]

The server is ``uvicorn --factory xfv.web.main:create_app`` in a subprocess, bound to 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
from sqlalchemy import insert

from xfv.store.db import open_database
from xfv.store.models import Dataset, Image, ModelRecord, Pair, Result

PAIRS, MODELS, FOLDS = 6000, ("dlib", "lbp", "sface"), 10
SORTS = ["id", "-id", "confidence", "-confidence", "distance", "-distance", "identity1", "-quality1", "fold", "-correct"]


def populate(url: str, seed: int = 0) -> None:
    """A dataset of 6,000 pairs over 7,000 images with results of three models (synthetic values)."""
    rng = np.random.default_rng(seed)
    factory = open_database(url)
    with factory() as session, session.begin():
        dataset = Dataset(name="synthetic", format="csv", root=tempfile.gettempdir(), pairs_file="pairs.csv")
        session.add(dataset)
        session.flush()
        identities = [f"Person_{i:04d}" for i in range(3000)]
        session.execute(insert(Image), [
            {"id": i + 1, "dataset_id": dataset.id, "path": f"{identities[i % 3000]}/{identities[i % 3000]}_{i:04d}.jpg",
             "identity": identities[i % 3000], "sha256": f"{i:064x}", "width": 250, "height": 250,
             "quality": float(rng.uniform(0, 100)), "sharpness": 50.0, "brightness": 120.0, "contrast": 40.0,
             "aligned": True} for i in range(7000)])
        labels = np.tile(np.repeat([1, 0], 300), FOLDS)
        session.execute(insert(Pair), [
            {"id": i + 1, "dataset_id": dataset.id, "position": i, "fold": i // 600, "label": int(labels[i]),
             "image1_id": int(rng.integers(1, 7001)), "image2_id": int(rng.integers(1, 7001))} for i in range(PAIRS)])
        for model_id, name in enumerate(MODELS, start=1):
            session.add(ModelRecord(id=model_id, name=name, fingerprint="synthetic", description="synthetic"))
            session.flush()
            distances = np.where(labels == 1, rng.normal(0.3, 0.1, PAIRS), rng.normal(0.7, 0.1, PAIRS)).clip(0, 2)
            session.execute(insert(Result), [
                {"pair_id": i + 1, "model_id": model_id, "distance": float(d), "threshold": 0.5,
                 "prediction": bool(d <= 0.5), "correct": bool((d <= 0.5) == (labels[i] == 1)),
                 "confidence": float(0.5 + 0.5 * min(1.0, abs(d - 0.5) * 4))} for i, d in enumerate(distances)])


def random_query(rng: random.Random) -> dict:
    params = {"dataset": "synthetic", "model": rng.choice(MODELS), "sort": rng.choice(SORTS),
              "page": rng.randint(1, 50), "page_size": rng.choice([20, 50, 100])}
    for key, values in (("label", ["same", "different"]), ("correct", ["true", "false"]),
                        ("fold", [str(k) for k in range(FOLDS)]), ("identity", ["Person_01", "son_1"])):
        if rng.random() < 0.4:
            params[key] = rng.choice(values)
    if rng.random() < 0.3:
        params["confidence_min"] = 0.75
    where = [f"{model}:{field}:{rng.choice(values)}" for model in MODELS
             for field, values in (("correct", ["true", "false"]), ("prediction", ["same", "different"]))
             if rng.random() < 0.25]
    if where:
        params["where"] = where
    return params


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def latency(base: str, requests: int, rng: random.Random, neighbours: bool = False) -> list[float]:
    """Milliseconds per explorer page (or, with ``neighbours``, per previous / next of a random pair)."""
    timings = []
    with httpx.Client(base_url=base, timeout=30) as client:
        for _ in range(requests):
            params = random_query(rng)
            route = f"/api/pairs/{rng.randint(1, PAIRS)}/neighbours" if neighbours else "/api/pairs"
            started = time.perf_counter()
            response = client.get(route, params=params)
            timings.append((time.perf_counter() - started) * 1000)
            response.raise_for_status()
    return timings


async def load(base: str, clients: int, per_client: int, seed: int) -> tuple[list[float], int]:
    errors = 0
    timings: list[float] = []

    async def one_client(index: int) -> None:
        nonlocal errors
        rng = random.Random(seed + index)
        async with httpx.AsyncClient(base_url=base, timeout=60) as client:
            for _ in range(per_client):
                started = time.perf_counter()
                try:
                    response = await client.get("/api/pairs", params=random_query(rng))
                    if response.status_code != 200:
                        errors += 1
                except httpx.HTTPError:
                    errors += 1
                timings.append((time.perf_counter() - started) * 1000)

    await asyncio.gather(*(one_client(i) for i in range(clients)))
    return timings, errors


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--per-client", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'bench.db'}"
        started = time.perf_counter()
        populate(url)
        print(f"populated {PAIRS} pairs x {len(MODELS)} models in {time.perf_counter() - started:.1f} s")
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        server = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--factory", "xfv.web.main:create_app", "--host", "127.0.0.1",
             "--port", str(port), "--log-level", "warning"], env={**os.environ, "XFV_DB_URL": url})
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    httpx.get(base + "/api/datasets", timeout=2).raise_for_status()
                    break
                except httpx.HTTPError:
                    if time.monotonic() > deadline or server.poll() is not None:
                        raise SystemExit("the server did not start")
                    time.sleep(0.2)
            latency(base, 20, random.Random(1))  # warm-up
            timings = latency(base, args.requests, random.Random(2))
            print(f"sequential: {args.requests} requests, p50 {percentile(timings, 50):.1f} ms, "
                  f"p95 {percentile(timings, 95):.1f} ms, max {max(timings):.1f} ms (goal p95 <= 50 ms)")
            timings = latency(base, args.requests, random.Random(4), neighbours=True)
            print(f"previous/next: {args.requests} requests, p50 {percentile(timings, 50):.1f} ms, "
                  f"p95 {percentile(timings, 95):.1f} ms, max {max(timings):.1f} ms")
            started = time.perf_counter()
            timings, errors = asyncio.run(load(base, args.clients, args.per_client, seed=3))
            elapsed = time.perf_counter() - started
            print(f"load: {args.clients} concurrent clients x {args.per_client} requests = {len(timings)} requests in "
                  f"{elapsed:.1f} s ({len(timings) / elapsed:.0f} req/s), errors {errors}, "
                  f"p50 {statistics.median(timings):.0f} ms, p95 {percentile(timings, 95):.0f} ms")
            return 1 if errors else 0
        finally:
            server.terminate()
            server.wait(10)


if __name__ == "__main__":
    sys.exit(main())
