"""The viewer's on-demand X-Maps of a stored pair arrive progressively, as an upload's do: while the task runs,
``GET /api/pairs/{id}/xmaps/{model}`` lists each map partial or final with its stage and the time left, the map
routes serve the latest version (never cached), only the final maps are stored, and
``DELETE /api/pairs/{id}/xmaps/{model}/task`` stops the task with nothing stored.

Runs on SQLite and, when ``XFV_TEST_PG_URL`` is set, on PostgreSQL (the sample fixtures are parametrised).
"""

from __future__ import annotations

import io
import re
import time

import numpy as np
import pytest
from conftest_web import SAMPLE
from faults import slow_down_lbp
from PIL import Image
from sqlalchemy import func, select
from test_api import make_client, wait_for

from xfv.store.models import XMapRecord
from xfv.xmaps import METHODS

PARTIAL = re.compile(r"(32|64|128|256|512|1058) of 1058 masks")


@pytest.fixture()
def cache(tmp_path, monkeypatch):
    """An empty occlusion cache: the pair's faces are embedded, not read back."""
    monkeypatch.setenv("XFV_CACHE_DIR", str(tmp_path / "cache"))


def missing_pair(client) -> int:
    items = client.get("/api/pairs", params={"dataset": SAMPLE, "page_size": 100}).json()["items"]
    return next(item["id"] for item in items if not client.get(f"/api/pairs/{item['id']}/xmaps/lbp").json()["ready"])


def stored_rows(factory, pair_id: int) -> int:
    with factory() as session:
        return session.scalar(select(func.count()).select_from(XMapRecord).where(XMapRecord.pair_id == pair_id))


def wait_for_status(client, url: str, ready, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = client.get(url).json()
        if ready(status):
            return status
        time.sleep(0.02)
    raise AssertionError(f"{url} never reached the state asked for: {status}")


def test_a_pairs_maps_are_listed_and_served_partial_while_computed_then_final(fresh_sample, tmp_path, cache,
                                                                              monkeypatch):
    slow_down_lbp(monkeypatch)
    with make_client(fresh_sample, tmp_path) as client:
        pair_id = missing_pair(client)
        url = f"/api/pairs/{pair_id}/xmaps/lbp"
        started = client.post(url).json()
        assert started["cancel"] == f"{url}/task" and started["map_states"] == {}
        status = wait_for_status(client, url, lambda s: "4-1" in s["map_states"])
        assert status["task"]["state"] == "running" and not status["ready"]
        assert status["map_states"]["4-1"]["state"] == "partial"
        assert PARTIAL.fullmatch(status["map_states"]["4-1"]["stage"])
        assert status["eta_seconds"] > 0 and "1-1" not in status["map_states"]  # method 4 first
        assert status["urls"]["4-2"] == f"{url}/4/2.png"
        png, partial = client.get(f"{url}/4/1.png"), client.get(f"{url}/4/1.npy")
        for response in (png, partial):
            assert response.status_code == 200 and response.headers["cache-control"] == "no-store"
            assert response.headers["x-xmap-state"] == "partial"
            assert PARTIAL.fullmatch(response.headers["x-xmap-stage"]) or response.headers["x-xmap-stage"] == "final"
        assert Image.open(io.BytesIO(png.content)).size == (112, 112)
        assert client.get(f"{url}/4/1.png", params={"kind": "map"}).status_code == 200
        assert stored_rows(fresh_sample, pair_id) == 0  # nothing stored while partial
        assert client.get(f"{url}/1/1.png").status_code == 404  # methods 1-3: not yet

        assert wait_for(client, started["task"]["id"])["state"] == "done"
        status = client.get(url).json()
        assert status["ready"] and status["task"] is None and status["eta_seconds"] is None
        assert status["map_states"] == {f"{m}-{i}": {"state": "final", "stage": "final"} for m in METHODS for i in (1, 2)}
        final = client.get(f"{url}/4/1.npy")
        assert final.headers["x-xmap-state"] == "final" and "no-store" not in final.headers.get("cache-control", "")
        early, late = (np.load(io.BytesIO(r.content)) for r in (partial, final))
        assert early.shape == late.shape == (112, 112) and not np.array_equal(early, late)
        assert np.corrcoef(early.ravel(), late.ravel())[0, 1] > 0  # a coarse version of the same map
        assert len(client.app.state.services.partials) == 0  # dropped once the final maps are stored
        assert stored_rows(fresh_sample, pair_id) > 0


def test_a_pairs_task_cancelled_stops_and_stores_nothing(fresh_sample, tmp_path, cache, monkeypatch):
    slow_down_lbp(monkeypatch)
    with make_client(fresh_sample, tmp_path) as client:
        pair_id = missing_pair(client)
        url = f"/api/pairs/{pair_id}/xmaps/lbp"
        started = client.post(url).json()
        wait_for_status(client, url, lambda s: "4-1" in s["map_states"])
        answer = client.delete(started["cancel"])
        assert answer.status_code == 200
        status = answer.json()
        assert status["task"]["state"] == "cancelled" and "nothing unfinished was stored" in status["task"]["error"]
        assert status["map_states"] == {} and status["eta_seconds"] is None and not status["ready"]
        assert client.app.state.services.tasks.pool.admitted == 0  # the worker has stopped
        task = client.get(f"/api/tasks/{started['task']['id']}").json()
        time.sleep(0.3)
        assert task["state"] == "cancelled"
        assert client.get(f"/api/tasks/{started['task']['id']}").json()["done"] == task["done"]  # quiet
        assert stored_rows(fresh_sample, pair_id) == 0
        assert client.get(f"{url}/4/1.png").status_code == 404
        assert client.get(url).json()["task"] is None and len(client.app.state.services.partials) == 0
        # no task running: the cancel answers the status as it is
        assert client.delete(started["cancel"]).json()["task"] is None
        assert client.delete("/api/pairs/999999/xmaps/lbp/task").status_code == 404
