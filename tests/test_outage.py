"""Issue 19: PostgreSQL stopped and frozen under a running server. A PostgreSQL cluster of the test's own (initdb,
pg_ctl; stopped with ``-m immediate``, frozen with SIGSTOP on the postmaster and its children) holds the sample;
the app runs under Uvicorn as ``xfv serve`` configures it, in a thread of this process.

Goals: stopped, every database route answers 503 (JSON for the API, with ``Retry-After``) within 5 s; frozen, an
answer within 15 s; both recover without a restart; a task whose final write fails ends in ``error`` within 10 s.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from conftest_web import SAMPLE, build_sample
from faults import LiveServer, ThrowawayPostgres, slow_down_lbp
from test_api import SAME, photo

from xfv.web.core.config import Settings
from xfv.web.main import create_app

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def postgres():
    try:
        server = ThrowawayPostgres()
    except Exception as error:  # noqa: BLE001 - no server binaries, or no way to run them here
        pytest.skip(f"cannot start a PostgreSQL server of the test's own: {error}")
    try:
        build_sample(server.url).kw["bind"].dispose()
        yield server
    finally:
        server.close()


@pytest.fixture(scope="module")
def live(postgres):
    settings = Settings(db_url=postgres.url, upload_model="lbp")
    with LiveServer(create_app(settings), settings) as server:
        yield server


def routes(url: str) -> list[tuple[str, str, dict]]:
    """Every route that reads or writes the database, with a real pair, upload and task (method, URL, options)."""
    pair = httpx.get(f"{url}/api/pairs", params={"dataset": SAMPLE, "page_size": 1}, timeout=30).json()["items"][0]
    files = {"image1": ("a.jpg", photo(SAME[0])), "image2": ("b.jpg", photo(SAME[1]))}
    explained = httpx.post(f"{url}/api/explain", files=files, data={"model": "lbp"}, timeout=60).json()
    upload, task, p = explained["id"], explained["task"]["id"], pair["id"]  # a task in memory needs no database
    return [("GET", "/api/datasets", {}), ("GET", "/api/models", {}), ("GET", f"/api/pairs?dataset={SAMPLE}", {}),
            ("GET", f"/api/pairs/{p}", {}), ("GET", f"/api/pairs/{p}/neighbours?dataset={SAMPLE}", {}),
            ("GET", f"/api/pairs/{p}/xmaps/lbp", {}), ("POST", f"/api/pairs/{p}/xmaps/lbp", {}),
            ("GET", f"/api/pairs/{p}/faces/1.png?model=lbp", {}), ("GET", f"{pair['thumbnail1']}", {}),
            ("GET", f"/api/uploads/{upload}", {}), ("GET", f"/api/uploads/{upload}/faces/1.png", {}),
            ("GET", f"/api/uploads/{upload}/report.json", {}), ("GET", f"/api/tasks/{task}-unknown", {}),
            ("POST", "/api/verify", {"files": files, "data": {"model": "lbp"}}),
            ("POST", "/api/explain", {"files": files, "data": {"model": "lbp"}}),
            ("GET", "/", {}), ("GET", "/explorer", {}), ("GET", f"/viewer/{p}", {}),
            ("GET", f"/plots/reliability.png?dataset={SAMPLE}&model=lbp", {}),
            ("DELETE", f"/api/uploads/{upload}", {})]


def answers(url: str, requests: list[tuple[str, str, dict]]) -> list[tuple[str, int, str, str | None, float]]:
    """All requests at once: (URL, status, content type, Retry-After, seconds)."""
    def one(request):
        method, path, options = request
        started = time.perf_counter()
        response = httpx.request(method, f"{url}{path}", timeout=60, **options)
        return (path, response.status_code, response.headers.get("content-type", ""),
                response.headers.get("retry-after"), time.perf_counter() - started)

    with ThreadPoolExecutor(len(requests)) as pool:
        return list(pool.map(one, requests))


def recovered(url: str, requests: list[tuple[str, str, dict]], within: float) -> list:
    """Wait until every read answers below 500 again (no restart); the reads' answers."""
    reads = [r for r in requests if r[0] == "GET"]
    deadline = time.monotonic() + within
    while True:
        got = answers(url, reads)
        if all(status < 500 for _, status, *_ in got):
            return got
        assert time.monotonic() < deadline, [(path, status) for path, status, *_ in got if status >= 500]
        time.sleep(0.5)


def report(capsys, what: str, got: list) -> None:
    """The figures, printed (``pytest -s`` or not): the slowest answer and the statuses."""
    statuses: dict[int, int] = {}
    for _, status, *_ in got:
        statuses[status] = statuses.get(status, 0) + 1
    with capsys.disabled():
        print(f"\n{what}: {len(got)} routes, slowest answer {max(g[4] for g in got):.2f} s, statuses {statuses}")


def assert_unavailable(got: list, within: float) -> None:
    for path, status, content_type, retry_after, seconds in got:
        assert status == 503 and retry_after and seconds < within, (path, status, seconds)
        expected = "text/html" if not path.startswith(("/api/", "/plots/")) else "application/json"
        assert content_type.startswith(expected), (path, content_type)


def during(fault, repair, url: str, requests: list) -> list:
    """:func:`answers` while the fault lasts; repaired whatever happens."""
    fault()
    try:
        return answers(url, requests)
    finally:
        repair()


def test_a_stopped_database_is_a_503_on_every_route_within_5_s_and_reads_recover(postgres, live, capsys):
    requests = routes(live.url)
    got = during(postgres.stop, postgres.start, live.url, requests)
    report(capsys, "PostgreSQL stopped", got)
    assert_unavailable(got, within=5)
    report(capsys, "started again, no restart of xfv", recovered(live.url, requests, within=20))


def test_a_frozen_database_is_answered_within_15_s_and_recovers(postgres, live, capsys):
    requests = [r for r in routes(live.url) if r[0] == "GET"]
    got = during(postgres.freeze, postgres.thaw, live.url, requests)
    report(capsys, "PostgreSQL frozen (SIGSTOP)", got)
    for path, status, _, retry_after, seconds in got:
        assert seconds < 15 and (status < 500 or (status == 503 and retry_after)), (path, status, seconds)
    assert sum(status == 503 for _, status, *_ in got) > 0  # the database was needed, and waited for in vain
    report(capsys, "thawed, no restart of xfv", recovered(live.url, requests, within=30))


def test_a_task_whose_final_write_fails_ends_in_error_within_10_s(postgres, live, monkeypatch, caplog, capsys):
    slow_down_lbp(monkeypatch)
    files = {"image1": ("a.jpg", photo(SAME[0])), "image2": ("b.jpg", photo(SAME[1]))}
    body = httpx.post(f"{live.url}/api/explain", files=files, data={"model": "lbp"}, timeout=60).json()
    task_url = f"{live.url}/api/tasks/{body['task']['id']}"
    deadline = time.monotonic() + 60
    while httpx.get(task_url, timeout=30).json()["done"] == 0:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    total = httpx.get(task_url, timeout=30).json()["total"]
    postgres.stop()
    stopped = time.monotonic()
    written = None  # when the X-Maps were all computed: the final write starts then
    try:
        while (task := httpx.get(task_url, timeout=30).json())["state"] != "error":  # from the server's memory
            assert task["state"] == "running" and time.monotonic() - stopped < 60, task
            if written is None and task["done"] == total:
                written = time.monotonic()
            time.sleep(0.05)
        ended = time.monotonic()
    finally:
        postgres.start()
    with capsys.disabled():
        print(f"\nfailed final write: error {ended - written:.2f} s after the X-Maps were computed "
              f"({ended - stopped:.2f} s after PostgreSQL stopped): {task['error']}")
    assert task["done"] == total and ended - written < 10, task  # the write failed, not the work; within 10 s
    assert "OperationalError" in task["error"] and "connection" in task["error"]
    assert any(body["task"]["id"] in record.getMessage() for record in caplog.records)
    retried = httpx.post(f"{task_url}/retry", timeout=30).json()
    deadline = time.monotonic() + 60
    while (again := httpx.get(f"{live.url}/api/tasks/{retried['id']}", timeout=30).json())["state"] != "done":
        assert again["state"] in ("queued", "running") and time.monotonic() < deadline, again
        time.sleep(0.2)
    assert httpx.get(f"{live.url}/api/uploads/{body['id']}/xmaps/1/1.png", timeout=30).status_code == 200
