"""Issue 19: the platform under a crowd and slow clients. Admission and deadlines (:mod:`xfv.web.limits`) on a toy
app, errors as JSON (unexpected ones and the database out of reach), and real servers (``xfv serve`` in a
process of its own) under a burst of 200 explorer requests and hundreds of stalled connections.

The database tests run on SQLite and, when ``XFV_TEST_PG_URL`` is set, on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import json
import socket
import sqlite3
import time

import httpx
import pytest
from conftest_web import SAMPLE
from faults import ServeProcess, engine_url, slow_down_lbp
from sqlalchemy import text
from test_api import SAME, make_client, photo, upload, wait_for

from xfv.store.db import DatabaseLimits, open_database
from xfv.web.core.config import Settings
from xfv.web.limits import Limits, RequestLimits
from xfv.web.main import _scope_error, create_app
from xfv.web.server import server_config


# -- admission and deadlines on a toy app -------------------------------------------------------------------------
def toy_limits(app, workers: int = 2, timeout: float = 1.8, body_timeout: float = 0.5) -> RequestLimits:
    return RequestLimits(app, Limits(workers=workers, timeout=timeout, upload_timeout=timeout,
                                     body_timeout=body_timeout, body_min_rate=1000, retry_after=7,
                                     upload_bytes=10_000), _scope_error)


def sleeping_app(seconds: float):
    async def app(scope, receive, send):
        await asyncio.sleep(seconds)
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"ok"})
    return app


async def call(app, path: str = "/api/pairs", method: str = "GET", headers=(), body_chunks=None) -> dict:
    """One request through an ASGI app: status, headers, body and seconds; ``body_chunks``: (pause, bytes) pairs,
    a pause of None stalls for good."""
    sent, started = [], time.perf_counter()
    chunks = list(body_chunks or [])

    async def receive():
        if not chunks:
            await asyncio.sleep(3600)
        pause, data = chunks.pop(0)
        await asyncio.sleep(3600 if pause is None else pause)
        return {"type": "http.request", "body": data, "more_body": bool(chunks)}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": method, "path": path, "raw_path": path.encode(), "query_string": b"",
             "headers": [(k.encode(), v.encode()) for k, v in headers], "root_path": "", "scheme": "http",
             "server": ("test", 80), "client": ("test", 1)}
    await app(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return {"status": start["status"], "headers": {k.decode(): v.decode() for k, v in start["headers"]},
            "body": body, "seconds": time.perf_counter() - started}


def assert_busy(answer: dict) -> None:
    assert answer["status"] == 503 and answer["headers"]["retry-after"] == "7", answer
    assert answer["headers"]["content-type"] == "application/json" and json.loads(answer["body"])["detail"]


def test_requests_wait_in_line_and_those_that_cannot_be_answered_in_time_get_503_at_once():
    """2 workers, 0.5 s per request, answers due within 1.8 s. Of 10 at once, three rounds (6) are answered in
    time and 4 get 503 at the deadline (the fourth round could not finish by then). Once the service time is
    known, the next 10 at once: 6 are served again, and the 4 predicted to finish too late get 503 at once."""
    limits = toy_limits(sleeping_app(0.5))

    async def waves():
        first = await asyncio.gather(*(call(limits) for _ in range(10)))
        await asyncio.sleep(0.5)  # the fourth round's work ends
        second = await asyncio.gather(*(call(limits) for _ in range(10)))
        return first, second

    first, second = asyncio.run(waves())
    for wave, late in ((first, (1.7, 2.3)), (second, (0.0, 0.3))):
        served = [a for a in wave if a["status"] == 200]
        assert len(served) == 6 and max(a["seconds"] for a in served) < 1.8
        refused = [a for a in wave if a["status"] != 200]
        assert len(refused) == 4
        for answer in refused:
            assert_busy(answer)
            assert late[0] < answer["seconds"] < late[1]  # at the deadline, or at once: never a 30 s queue
    assert limits.busy == 0 and limits.waiting == 0


def test_a_request_that_hangs_gets_503_at_its_deadline_and_keeps_its_place_until_it_ends():
    release = None

    async def hung_app(scope, receive, send):  # a thread stuck in a frozen database, say
        await release.wait()
        await sleeping_app(0)(scope, receive, send)

    async def scenario():
        nonlocal release
        release = asyncio.Event()
        limits = toy_limits(hung_app, workers=1, timeout=0.6)
        hung = await call(limits)
        assert limits.busy == 1  # its work goes on: the place stays taken
        behind = await call(limits)  # waits for the place until its own deadline
        release.set()
        await asyncio.sleep(0.05)
        after = await call(limits)
        return hung, behind, after, limits.busy

    hung, behind, after, busy = asyncio.run(scenario())
    assert_busy(hung)
    assert 0.5 < hung["seconds"] < 1.0 and "No answer within 0.6 s" in json.loads(hung["body"])["detail"]
    assert_busy(behind)
    assert after["status"] == 200 and busy == 0


@pytest.mark.parametrize("chunks, length", [
    ([(None, b"")], 5000),  # headers, then nothing
    ([(0.3, b"x" * 100), (0.3, b"x" * 100), (0.3, b"x" * 100), (None, b"")], 5000),  # a pause too long at the end
    ([(0.2, b"x")] * 20, 20),  # a trickle: 20 bytes in 4 s, the deadline is 0.5 s + 20 / 1000 bytes/s
])
def test_a_stalled_or_trickling_body_gets_408_and_the_connection_closed(chunks, length):
    async def reading_app(scope, receive, send):
        while (await receive()).get("more_body"):
            pass
        await sleeping_app(0)(scope, receive, send)

    answer = asyncio.run(call(toy_limits(reading_app), "/api/explain", "POST",
                              [("content-length", str(length)), ("content-type", "multipart/form-data")], chunks))
    assert answer["status"] == 408 and answer["headers"]["connection"] == "close"
    assert "did not arrive in time" in json.loads(answer["body"])["detail"]
    assert answer["seconds"] < 2.0


def test_a_body_in_time_is_served_whatever_its_pauses_below_the_timeout():
    async def reading_app(scope, receive, send):
        while (await receive()).get("more_body"):
            pass
        await sleeping_app(0)(scope, receive, send)

    chunks = [(0.3, b"x" * 400)] * 3
    answer = asyncio.run(call(toy_limits(reading_app), "/api/explain", "POST",
                              [("content-length", "1200"), ("content-type", "multipart/form-data")], chunks))
    assert answer["status"] == 200


# -- errors as JSON -------------------------------------------------------------------------------------------------
@pytest.fixture()
def client(sample_factory, tmp_path):
    with make_client(sample_factory, tmp_path) as test_client:
        yield test_client


def test_an_unexpected_error_is_a_json_500_for_the_api_and_a_page_for_the_browser(sample_factory, tmp_path,
                                                                                 monkeypatch):
    from xfv.web import pages
    from xfv.web.api.routes import models

    def broken(*_args, **_kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(models, "list_models", broken)
    monkeypatch.setattr(pages, "dataset_summaries", broken)
    app = create_app(Settings(db_url=f"sqlite:///{tmp_path / 'unused.db'}"), factory=sample_factory)
    from fastapi.testclient import TestClient

    with TestClient(app, raise_server_exceptions=False) as test_client:
        api = test_client.get("/api/models")
        assert api.status_code == 500 and api.headers["content-type"] == "application/json"
        assert api.json() == {"detail": "Internal error (RuntimeError); it has been logged."}
        page = test_client.get("/explorer")
        assert page.status_code == 500 and page.headers["content-type"].startswith("text/html")
        assert "Internal error" in page.text
    with TestClient(app) as test_client, pytest.raises(RuntimeError, match="a bug"):
        test_client.get("/api/models")  # the error leaves the app, so that the server logs its traceback


def test_no_free_database_connection_is_a_quick_503(fresh_sample, tmp_path):
    """A pool of one connection, held elsewhere: the request gets 503 JSON with Retry-After after the pool
    timeout (0.5 s), not after SQLAlchemy's default 30 s."""
    factory = open_database(engine_url(fresh_sample), DatabaseLimits(pool_size=1, max_overflow=0, pool_timeout=0.5))
    client = make_client(factory, tmp_path)  # no start-up (lifespan): nothing else takes the connection
    with factory() as holder:
        holder.execute(text("SELECT 1"))  # checks the only connection out
        started = time.perf_counter()
        response = client.get("/api/datasets")
        assert time.perf_counter() - started < 3
        assert response.status_code == 503 and response.headers["retry-after"] == "5"
        assert "database is unavailable or busy (TimeoutError)" in response.json()["detail"]
    assert client.get("/api/datasets").status_code == 200  # free again: served


def test_a_locked_sqlite_database_refuses_writes_with_503_and_serves_reads(sample_factory, tmp_path_factory,
                                                                            tmp_path):
    from conftest_web import sample_copy

    path = tmp_path / "locked.db"
    sample_copy(tmp_path_factory, path)
    settings = Settings(db_url=f"sqlite:///{path}", db_busy_timeout=0.5, upload_model="lbp")
    locker = sqlite3.connect(path, isolation_level=None)
    try:
        with make_client(open_database(settings.db_url, settings.database_limits()), tmp_path,
                         db_busy_timeout=0.5) as client:
            locker.execute("BEGIN EXCLUSIVE")  # another writer holds the database (WAL: readers go on)
            started = time.perf_counter()
            response = upload(client, "/api/explain", photo(SAME[0]), photo(SAME[1]))
            assert response.status_code == 503 and response.headers["retry-after"], response.text
            assert time.perf_counter() - started < 5
            assert client.get("/api/pairs", params={"dataset": SAMPLE}).status_code == 200
            locker.execute("COMMIT")
            assert upload(client, "/api/explain", photo(SAME[0]), photo(SAME[1])).status_code == 202
    finally:
        locker.close()


# -- a real server ----------------------------------------------------------------------------------------------------
async def burst(url: str, count: int) -> list[tuple]:
    limits = httpx.Limits(max_connections=count, max_keepalive_connections=0)
    async with httpx.AsyncClient(limits=limits, timeout=60) as client:
        async def one(i: int):
            started = time.perf_counter()
            response = await client.get(f"{url}/api/pairs", params={"dataset": SAMPLE, "sort": "-distance",
                                                                    "page": 1 + i % 3, "page_size": 20})
            return (response.status_code, response.headers.get("content-type"), response.headers.get("retry-after"),
                    time.perf_counter() - started)
        return await asyncio.gather(*(one(i) for i in range(count)))


@pytest.mark.parametrize("settings, served", [({}, 0.95), ({"request_workers": 1, "request_timeout": 0.3}, 0.0)])
def test_a_burst_of_200_explorer_requests_is_answered_in_time_and_only_503_json_refuses(
        fresh_sample, tmp_path, settings, served):
    """Today's main answered such a burst with 500s after 30 s and client timeouts (issue 19). With the defaults
    at least 95 % are served; with one worker and a 0.3 s deadline many are refused, all as 503 JSON."""
    with ServeProcess(engine_url(fresh_sample), tmp_path / "serve.log", **settings) as server:
        started = time.perf_counter()
        answers = asyncio.run(burst(server.url, 200))
        elapsed = time.perf_counter() - started
    statuses = [status for status, *_ in answers]
    assert set(statuses) <= {200, 503} and elapsed < 60, (set(statuses), elapsed)
    assert statuses.count(200) >= served * 200
    for status, content_type, retry_after, _ in answers:
        if status == 503:
            assert content_type == "application/json" and retry_after == "5"
    if settings:
        assert statuses.count(503) > 0


def stall(url: str, request: bytes) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=10)
    sock.sendall(request)
    return sock


def closed_within(sock: socket.socket, seconds: float) -> tuple[bool, bytes]:
    """Whether the server closed the connection within ``seconds``, and what it sent first."""
    sock.settimeout(seconds)
    received = b""
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            chunk = sock.recv(4096)
            if not chunk:
                return True, received
            received += chunk
            sock.settimeout(max(0.01, deadline - time.monotonic()))
    except (TimeoutError, OSError):
        return False, received
    return False, received


def test_stalled_bodies_and_headers_are_closed_by_the_server_while_others_are_served(sample_factory, tmp_path):
    """100 connections that send an upload's headers (Content-Length 20 MB) and no body, and 50 that send half a
    request line: all closed within the timeouts (1 s here), the body ones with 408; a normal request is served."""
    db = engine_url(sample_factory)
    with ServeProcess(db, tmp_path / "serve.log", body_timeout=1, header_timeout=1) as server:
        bodies = [stall(server.url, b"POST /api/explain HTTP/1.1\r\nHost: x\r\nContent-Length: 20000000\r\n"
                                    b"Content-Type: multipart/form-data; boundary=b\r\n\r\n--b\r\n")
                  for _ in range(100)]
        headers = [stall(server.url, b"GET /api/pairs HTTP/1.1\r\nHost: x\r\nX-Slow: ") for _ in range(50)]
        started = time.perf_counter()
        normal = httpx.get(f"{server.url}/api/pairs", params={"dataset": SAMPLE}, timeout=30)
        assert normal.status_code == 200 and time.perf_counter() - started < 5
        results = [closed_within(sock, 8) for sock in bodies + headers]
        for sock in bodies + headers:
            sock.close()
    assert all(closed for closed, _ in results)
    assert all(first.startswith(b"HTTP/1.1 408") for _, first in results[:100])


def test_the_server_settings_reach_uvicorn():
    settings = Settings(max_connections=123, keep_alive_timeout=3, max_header_bytes=8192, header_timeout=4.5)
    config = server_config(object(), settings)
    assert (config.limit_concurrency, config.timeout_keep_alive, config.h11_max_incomplete_event_size) == \
        (123, 3, 8192)
    assert config.http.header_timeout == 4.5


def test_a_task_whose_final_write_fails_ends_in_error_and_can_be_retried(fresh_sample, tmp_path, monkeypatch,
                                                                         caplog):
    """SQLite: another writer holds the database while an upload's X-Maps are written (busy timeout 0.2 s): the
    write is retried, then the task ends in ``error`` with the reason within 10 s, logged; tried again once the
    database is free, it finishes."""
    if fresh_sample.kw["bind"].dialect.name != "sqlite":
        pytest.skip("PostgreSQL outages: tests/test_outage.py (a server of the test's own)")
    slow_down_lbp(monkeypatch)
    path = fresh_sample.kw["bind"].url.database
    settings = {"db_busy_timeout": 0.2}
    factory = open_database(f"sqlite:///{path}", Settings(**settings).database_limits())
    locker = sqlite3.connect(path, isolation_level=None)
    try:
        with make_client(factory, tmp_path, **settings) as client:
            body = upload(client, "/api/explain", photo(SAME[0]), photo(SAME[1])).json()
            task_id = body["task"]["id"]
            deadline = time.monotonic() + 60
            while client.get(f"/api/tasks/{task_id}").json()["done"] == 0:
                assert time.monotonic() < deadline
                time.sleep(0.05)
            total = client.get(f"/api/tasks/{task_id}").json()["total"]
            locker.execute("BEGIN EXCLUSIVE")
            locked, written = time.monotonic(), None  # written: the X-Maps computed, the final write starts
            while (task := client.get(f"/api/tasks/{task_id}").json())["state"] != "error":
                assert time.monotonic() - locked < 60, task
                if written is None and task["done"] == total:
                    written = time.monotonic()
                time.sleep(0.05)
            assert task["done"] == total and time.monotonic() - written < 10  # the write failed, within 10 s
            assert "database is locked" in task["error"]
            assert any("failed" in r.message and task_id in r.message for r in caplog.records)
            locker.execute("COMMIT")
            retried = client.post(f"/api/tasks/{task_id}/retry")
            assert retried.status_code == 202 and retried.json()["id"] != task_id
            assert wait_for(client, retried.json()["id"])["state"] == "done"
            state = client.get(f"/api/uploads/{body['id']}").json()
            assert state["task"]["id"] == retried.json()["id"] and state["task"]["state"] == "done"
            assert client.get(f"/api/uploads/{body['id']}/xmaps/1/1.png").status_code == 200
    finally:
        locker.close()


def test_a_kept_alive_connection_serves_one_request_after_another_under_the_header_deadline(sample_factory, tmp_path):
    """The header deadline restarts after each answer: requests 0.5 s apart on one connection (deadline 2 s, five
    of them 2.5 s in all) are all served on that connection; then, idle, it is closed."""
    with ServeProcess(engine_url(sample_factory), tmp_path / "serve.log", header_timeout=2, keep_alive_timeout=3) \
            as server:
        sock = stall(server.url, b"")
        sock.settimeout(10)
        for _ in range(5):
            time.sleep(0.5)
            sock.sendall(b"GET /api/models HTTP/1.1\r\nHost: x\r\n\r\n")
            received = b""
            while b"\r\n\r\n" not in received:
                received += sock.recv(65536)
            head, _, body = received.partition(b"\r\n\r\n")
            length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                              if line.lower().startswith(b"content-length")))
            while len(body) < length:
                body += sock.recv(65536)
            assert head.startswith(b"HTTP/1.1 200") and len(body) == length, head[:100]
        closed, _ = closed_within(sock, 8)
        assert closed
        sock.close()


def test_uploads_have_a_deadline_of_their_own():
    """A photo's detection may take seconds: an upload answered in 1 s is served under a 0.6 s request deadline
    (its own is 3 s), where any other request is refused."""
    async def reading_app(scope, receive, send):
        while (await receive()).get("more_body"):
            pass
        await sleeping_app(1.0)(scope, receive, send)

    limits = RequestLimits(reading_app, Limits(workers=2, timeout=0.6, upload_timeout=3.0, body_timeout=1.0,
                                               body_min_rate=1000, retry_after=7, upload_bytes=10_000), _scope_error)
    headers = [("content-length", "10"), ("content-type", "multipart/form-data")]
    upload_answer = asyncio.run(call(limits, "/api/verify", "POST", headers, [(0.0, b"x" * 10)]))
    other = asyncio.run(call(limits, "/api/pairs/1/xmaps/lbp", "POST", headers, [(0.0, b"x" * 10)]))
    assert upload_answer["status"] == 200
    assert_busy(other)
