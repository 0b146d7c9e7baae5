"""The web app under abuse: bounded pools (503 with Retry-After), uploads and tasks surviving a restart and
expiring, integers beyond the database's range, too-large photos, readable messages, HTML error pages.

Runs on SQLite and, when ``XFV_TEST_PG_URL`` is set, on PostgreSQL (the sample fixtures are parametrised).
"""

from __future__ import annotations

import struct
import threading
import time
import zlib
from datetime import timedelta

import pytest
from conftest_web import SAMPLE
from sqlalchemy import update
from test_api import SAME, make_client, photo, upload, wait_for

from xfv.errors import BusyError
from xfv.store.db import transaction
from xfv.store.models import UploadRecord, utcnow
from xfv.web.tasks import BoundedPool

HUGE = 10**20


def png_declaring(width: int, height: int) -> bytes:
    """A PNG whose header declares ``width x height`` pixels (with one row of data: a pixel bomb's header)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00" * (width + 1)))
            + chunk(b"IEND", b""))


# -- bounded pools -----------------------------------------------------------------------------------------------
def test_a_full_pool_refuses_at_once_and_frees_its_places():
    pool = BoundedPool("test", workers=1, queue=1, retry_after=7)
    gate = threading.Event()
    running = [pool.submit(gate.wait), pool.submit(gate.wait)]
    with pytest.raises(BusyError, match="limit is 2") as refused:
        pool.submit(gate.wait)
    assert refused.value.retry_after == 7 and refused.value.http_status == 503
    gate.set()
    for future in running:
        future.result(timeout=10)
    time.sleep(0.05)  # done callbacks run right after the result is set
    assert pool.admitted == 0
    pool.submit(lambda: None).result(timeout=10)
    pool.shutdown()


def test_uploads_beyond_the_queue_get_503_with_retry_after(sample_factory, tmp_path):
    with make_client(sample_factory, tmp_path, upload_workers=1, upload_queue=0, retry_after=9) as client:
        gate = threading.Event()
        services = client.app.state.services
        services.uploads.submit(gate.wait)  # the one worker is busy with someone else's photo
        try:
            for route in ("/api/verify", "/api/explain"):
                response = upload(client, route, photo(SAME[0]), photo(SAME[1]))
                assert response.status_code == 503, response.text
                assert response.headers["retry-after"] == "9" and "busy" in response.json()["detail"]
        finally:
            gate.set()
        time.sleep(0.1)
        assert upload(client, "/api/verify", photo(SAME[0]), photo(SAME[1])).status_code == 200


def test_explanations_beyond_the_task_queue_get_503(sample_factory, tmp_path):
    with make_client(sample_factory, tmp_path, task_workers=1, task_queue=0) as client:
        gate = threading.Event()
        client.app.state.services.tasks.pool.submit(gate.wait)
        try:
            response = upload(client, "/api/explain", photo(SAME[0]), photo(SAME[1]))
            assert response.status_code == 503 and response.headers["retry-after"] == "5"
            pair_id = client.get("/api/pairs", params={"dataset": SAMPLE, "page_size": 1}).json()["items"][0]["id"]
            xmaps = client.get(f"/api/pairs/{pair_id}/xmaps/lbp").json()
            if not xmaps["ready"]:
                assert client.post(f"/api/pairs/{pair_id}/xmaps/lbp").status_code == 503
        finally:
            gate.set()


# -- kept across restarts --------------------------------------------------------------------------------------
def test_an_upload_and_its_task_survive_a_restart(fresh_sample, tmp_path):
    gate = threading.Event()
    with make_client(fresh_sample, tmp_path, task_workers=1) as first:
        first.app.state.services.tasks.pool.submit(gate.wait)  # the task stays queued until the app stops
        response = upload(first, "/api/explain", photo(SAME[0]), photo(SAME[1]))
        assert response.status_code == 202, response.text
        body = response.json()
        assert body["task"]["state"] == "queued"
        faces = [first.get(url).content for url in body["faces"]]
    gate.set()
    with make_client(fresh_sample, tmp_path) as second:  # a new process on the same database
        state = second.get(f"/api/uploads/{body['id']}")
        assert state.status_code == 200, state.text
        assert state.json()["task"]["id"] == body["task"]["id"]
        assert state.json()["distance"] == pytest.approx(body["distance"])
        assert [second.get(url).content for url in body["faces"]] == faces
        task = wait_for(second, body["task"]["id"])
        assert task["state"] == "done", task
        for url in body["xmaps"].values():
            assert second.get(url).headers["content-type"] == "image/png"
    with make_client(fresh_sample, tmp_path) as third:  # finished tasks are listed from the database
        assert third.get(f"/api/tasks/{body['task']['id']}").json()["state"] == "done"


def test_old_uploads_expire_at_start_up(fresh_sample, tmp_path):
    with make_client(fresh_sample, tmp_path) as client:
        body = upload(client, "/api/explain", photo(SAME[0]), photo(SAME[1])).json()
        wait_for(client, body["task"]["id"])
    with transaction(fresh_sample) as session:
        session.execute(update(UploadRecord).values(created_at=utcnow() - timedelta(hours=25)))
    with make_client(fresh_sample, tmp_path, upload_ttl_hours=24) as client:
        response = client.get(f"/api/uploads/{body['id']}")
        assert response.status_code == 404 and "expired" in response.json()["detail"]
        assert client.get(f"/api/tasks/{body['task']['id']}").status_code == 404


# -- integers and other input ------------------------------------------------------------------------------------
@pytest.fixture()
def client(sample_factory, tmp_path):
    with make_client(sample_factory, tmp_path) as test_client:
        yield test_client


@pytest.mark.parametrize("url", [
    f"/api/pairs/{HUGE}", "/api/pairs/3000000000", "/api/pairs/-1", "/api/pairs/0", f"/api/pairs/{HUGE}/xmaps/lbp",
    f"/api/pairs/{HUGE}/xmaps/lbp/1/1.png", f"/api/pairs/{HUGE}/xmaps/lbp/1/1.npy",
    f"/api/pairs/{HUGE}/faces/1.png?model=lbp", f"/api/pairs?fold={HUGE}", "/api/pairs?fold=3000000000",
    f"/api/pairs?page={HUGE}", "/api/pairs?page=3000000000", f"/api/pairs?page_size={HUGE}",
    f"/api/datasets/{SAMPLE}/images/x.jpg?size={HUGE}", f"/viewer/{HUGE}", "/viewer/3000000000",
    f"/viewer/1?method={HUGE}", f"/api/pairs/1/xmaps/lbp/{HUGE}/1.png", "/api/pairs?dataset=a%00b",
    "/api/tasks/a%00b", f"/api/uploads/{'f' * 1000}",
])
def test_integers_beyond_the_database_range_and_odd_text_are_4xx(client, url):
    response = client.get(url)
    assert response.status_code in (404, 422), (url, response.status_code, response.text)


def test_the_largest_page_is_an_empty_page(client):
    body = client.get("/api/pairs", params={"dataset": SAMPLE, "page": 2**31 - 1, "page_size": 500}).json()
    assert body["total"] == 60 and body["items"] == []
    assert client.post(f"/api/pairs/{HUGE}/xmaps/lbp").status_code == 422


@pytest.mark.parametrize("width, height", [(20000, 20000), (100000, 100000), (7000, 7000)])
def test_pixel_bombs_are_413_without_decoding(client, width, height):
    """Above Pillow's own limit (179 M pixels) and below it but above the upload limit (40 M)."""
    started = time.perf_counter()
    response = upload(client, "/api/verify", photo(SAME[0]), png_declaring(width, height))
    assert response.status_code == 413, response.text
    assert "image2" in response.json()["detail"] and "pixels" in response.json()["detail"]
    assert time.perf_counter() - started < 5


def test_messages_name_the_field_never_a_python_object(client):
    for data in (b"not an image at all", b"\x89PNG\r\n\x1a\n" + b"\x00" * 50, photo(SAME[1])[:300]):
        detail = upload(client, "/api/verify", photo(SAME[0]), data).json()["detail"]
        assert detail.startswith("image2") and "object at 0x" not in detail and "<" not in detail, detail


def test_uploads_must_declare_their_length(client):
    def chunks():
        yield b"--x\r\n"

    response = client.post("/api/verify", content=chunks(), headers={"content-type": "multipart/form-data; boundary=x"})
    assert response.status_code == 411 and "Content-Length" in response.json()["detail"]


# -- error pages -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("url, status", [("/viewer/999999", 404), ("/no-such-page", 404), (f"/viewer/{HUGE}", 422),
                                         ("/viewer/abc", 422), ("/plots/confidence.png", 422)])
def test_browser_routes_get_an_html_error_page(client, url, status):
    response = client.get(url)
    assert response.status_code == status
    if url.startswith("/plots/"):  # an image route: JSON like the API
        assert response.headers["content-type"] == "application/json"
        return
    assert response.headers["content-type"].startswith("text/html")
    assert f"<h1>{status}" in response.text and 'href="/"' in response.text and "Explorer" in response.text


def test_api_errors_stay_json_and_the_favicon_exists(client):
    for url in ("/api/no-such-route", "/api/pairs/999999"):
        response = client.get(url)
        assert response.status_code == 404 and response.headers["content-type"] == "application/json"
        assert response.json()["detail"]
    icon = client.get("/favicon.ico")
    assert icon.status_code == 200 and icon.content[:4] == b"\x00\x00\x01\x00"
    assert client.post("/explorer").status_code == 405


def test_a_file_outside_the_root_is_never_served_even_when_ingested(tmp_path):
    """Issue 19: a symbolic link inside the root leading out of it. Ingest refuses it unless allowed; allowed, the
    web still serves neither the file, its aligned face nor X-Maps computed from it."""
    import shutil

    from xfv.cli.platform import sample_root
    from xfv.jobs.ingest import ingest_dataset
    from xfv.jobs.precompute import precompute
    from xfv.models import create_model
    from xfv.store.db import open_database

    root = tmp_path / "sample"
    shutil.copytree(sample_root(), root)
    linked = "Abel_Pacheco/Abel_Pacheco_0004.jpg"
    outside = tmp_path / "outside.jpg"
    (root / linked).rename(outside)
    (root / linked).symlink_to(outside)
    factory = open_database(f"sqlite:///{tmp_path / 'linked.db'}")
    with pytest.raises(ValueError, match=f"image '{linked}' leads out of the dataset root"):
        ingest_dataset(factory, "lfw", root, name="linked", workers=1)
    ingest_dataset(factory, "lfw", root, name="linked", workers=1, allow_outside_root=True)
    precompute(factory, "linked", create_model("lbp"), xmaps=0)
    with make_client(factory, tmp_path) as client:
        pair = client.get("/api/pairs", params={"dataset": "linked", "path": "Abel_Pacheco_0004"}).json()["items"][0]
        image = 1 if pair["image1"] == linked else 2
        assert client.get(f"/api/pairs/{pair['id']}/faces/{3 - image}.png", params={"model": "lbp"}).status_code == 200
        for url in (f"/api/pairs/{pair['id']}/faces/{image}.png?model=lbp", f"/api/datasets/linked/images/{linked}",
                    f"/api/datasets/linked/images/{linked}?size=64"):
            response = client.get(url)
            assert response.status_code == 404 and "not available under the dataset root" in response.json()["detail"]
        task = client.post(f"/api/pairs/{pair['id']}/xmaps/lbp").json()["task"]
        assert wait_for(client, task["id"])["error"] == f"Image '{linked}' is not available under the dataset root."
