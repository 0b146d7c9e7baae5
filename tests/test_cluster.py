"""X-Maps on a real Dask cluster: the same maps as in-process, resumable runs, a worker killed mid-run.

Ports: ``XFV_TEST_DASK_PORTS="LOW:HIGH"`` confines the schedulers and workers these tests start to a range
(default: any free port). All servers listen on 127.0.0.1 only.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from conftest_web import SAMPLE, sample_copy
from sqlalchemy import func, select

from xfv.cli.platform import sample_root
from xfv.errors import XfvError
from xfv.jobs import cluster
from xfv.jobs.cluster import ModelSpec, dashboard_note, dask_client
from xfv.jobs.explain import make_explainer
from xfv.jobs.precompute import precompute
from xfv.models import create_model
from xfv.store.maps import decode_map
from xfv.store.models import XMapRecord

pytest.importorskip("distributed")
ROWS_PER_PAIR = 2 * (3 * 4 + 1)  # images x (methods 1-3: final map + patch sizes 7, 14, 28; method 4: final map)


def port_range() -> tuple[int, int] | None:
    text = os.environ.get("XFV_TEST_DASK_PORTS")
    if not text:
        return None
    low, high = (int(part) for part in text.split(":"))
    return low, high


def stored(factory) -> dict[tuple[int, int, int, int, int], np.ndarray]:
    with factory() as session:
        return {(r.pair_id, r.model_id, r.method, r.image, r.scale): decode_map(r.data)
                for r in session.scalars(select(XMapRecord))}


def assert_complete_without_duplicates(factory, pairs: int) -> None:
    with factory() as session:
        counts = session.execute(select(XMapRecord.pair_id, func.count(XMapRecord.id)).group_by(XMapRecord.pair_id)).all()
        keys = session.execute(select(XMapRecord.pair_id, XMapRecord.method, XMapRecord.image, XMapRecord.scale)).all()
    assert len(counts) == pairs and all(count == ROWS_PER_PAIR for _, count in counts)
    assert len(set(keys)) == len(keys)


def test_maps_from_a_local_cluster_equal_in_process_maps(tmp_path, tmp_path_factory, monkeypatch):
    on_cluster = sample_copy(tmp_path_factory, tmp_path / "cluster.db")
    in_process = sample_copy(tmp_path_factory, tmp_path / "local.db")
    monkeypatch.setenv("XFV_CACHE_DIR", str(tmp_path / "worker-cache"))  # the workers start with empty caches
    ports = port_range()
    options = {"scheduler_port": ports[0], "worker_ports": f"{ports[0] + 1}:{ports[0] + 9}"} if ports else {}
    with dask_client(workers=2, **options) as client:
        assert len(client.scheduler_info()["workers"]) == 2
        note = dashboard_note(client)
        assert note.startswith("Dask dashboard: ")
        assert ("needs bokeh" in note) == (importlib.util.find_spec("bokeh") is None) or note.endswith("off.")
        report = precompute(on_cluster, SAMPLE, create_model("lbp"), xmaps=4, client=client)
    assert (report.xmaps_computed, report.xmaps_skipped, report.xmap_images) == (2, 2, 4)
    assert report.xmap_passes == 4 * (1 + 1058 + 1058)  # original, occlusions, method 4's masks
    monkeypatch.setenv("XFV_CACHE_DIR", str(tmp_path / "local-cache"))
    assert precompute(in_process, SAMPLE, create_model("lbp"), xmaps=4).xmaps_computed == 2
    assert_complete_without_duplicates(on_cluster, 4)
    cluster_maps, local_maps = stored(on_cluster), stored(in_process)
    assert cluster_maps.keys() == local_maps.keys()
    assert max(float(np.abs(cluster_maps[k] - local_maps[k]).max()) for k in cluster_maps) <= 1e-3


def test_a_window_bounds_the_pairs_in_flight_and_reuses_each_image(tmp_path, monkeypatch):
    """Window 1 on a real local cluster: one pair unit at a time, yet an image shared by the first and the last
    pair is aligned and embedded once, and the maps are the in-process ones."""
    from distributed import get_task_stream

    monkeypatch.setenv("XFV_CACHE_DIR", str(tmp_path / "cache"))
    root = str(sample_root())
    a, b, c, d = ((root, path) for path in sorted(
        str(p.relative_to(root)) for p in sample_root().rglob("*.jpg"))[:4])
    pairs = [cluster.PairWork(1, a, b), cluster.PairWork(2, c, d), cluster.PairWork(3, a, c)]
    with dask_client(workers=1) as client, get_task_stream(client) as stream:
        submitted, in_flight, results = [], [], []
        submit = client.submit

        def counting_submit(function, *args, **kwargs):
            submitted.append(kwargs["key"])
            return submit(function, *args, **kwargs)

        monkeypatch.setattr(client, "submit", counting_submit)
        for result in cluster.run_on_cluster(client, ModelSpec("lbp"), pairs, window=1):
            results.append(result)  # pair units submitted, less the results received, after each result
            in_flight.append(sum(key.startswith("xfv-pair") for key in submitted) - len(results))
        with pytest.raises(ValueError, match="window must be a positive integer, got 0"):
            next(cluster.run_on_cluster(client, ModelSpec("lbp"), pairs, window=0))
    assert in_flight == [1, 1, 0]  # the next pair goes out only when one comes back
    assert sum(key.startswith("xfv-align") for key in submitted) == 4  # every image's bytes sent once
    assert sorted(r.pair_id for r in results) == [1, 2, 3]
    embedded = [task["key"] for task in stream.data if str(task["key"]).startswith("xfv-occlusion")]
    assert len(embedded) == len(set(embedded)) == 4  # a, b, c, d once each
    local = {r.pair_id: r for r in cluster.run_in_process(make_explainer(create_model("lbp")), pairs)}
    for result in results:
        assert [row[:3] for row in result.rows] == [row[:3] for row in local[result.pair_id].rows]
        for mine, theirs in zip(result.rows, local[result.pair_id].rows):
            assert float(np.abs(decode_map(mine[3]) - decode_map(theirs[3])).max()) <= 1e-3


def test_a_killed_client_resumes_where_it_stopped(tmp_path, tmp_path_factory, monkeypatch):
    factory = sample_copy(tmp_path_factory, tmp_path / "sample.db")
    pair_unit, calls = cluster.pair_unit, []

    def dies_on_the_second_pair(*args):
        calls.append(args[1])
        if len(calls) == 2:
            raise KeyboardInterrupt
        return pair_unit(*args)

    monkeypatch.setattr(cluster, "pair_unit", dies_on_the_second_pair)
    with pytest.raises(KeyboardInterrupt):
        precompute(factory, SAMPLE, create_model("lbp"), xmaps=4)
    assert_complete_without_duplicates(factory, 3)  # the sample's 2 pairs and the first new one, kept on the way out
    monkeypatch.setattr(cluster, "pair_unit", pair_unit)
    report = precompute(factory, SAMPLE, create_model("lbp"), xmaps=4)
    assert (report.xmaps_computed, report.xmaps_skipped) == (1, 3)
    assert_complete_without_duplicates(factory, 4)


def test_cluster_options_are_checked():
    with pytest.raises(XfvError, match="either a scheduler address or a number of local workers"), dask_client():
        pass
    with pytest.raises(XfvError, match="workers must be a positive"), dask_client(workers=0):
        pass
    assert ModelSpec.of("lbp", grid=4) == ModelSpec("lbp", (("grid", 4),))
    assert ModelSpec.of("lbp", grid=4).create().config.options["grid"] == 4


@pytest.mark.slow
def test_a_worker_killed_halfway_loses_only_its_units(tmp_path, tmp_path_factory, monkeypatch):
    """``dask scheduler`` and two ``dask worker`` processes; one is killed with SIGKILL mid-run."""
    factory = sample_copy(tmp_path_factory, tmp_path / "sample.db")
    monkeypatch.setenv("XFV_CACHE_DIR", str(tmp_path / "worker-cache"))
    low = (port_range() or (0, 0))[0]
    port = low or free_port()
    dask = [sys.executable, "-m", "dask"]
    processes = [subprocess.Popen([*dask, "scheduler", "--host", "127.0.0.1", "--port", str(port),
                                   "--dashboard-address", f"127.0.0.1:{low + 1 if low else 0}"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        for index in (1, 2):
            processes.append(subprocess.Popen(
                [*dask, "worker", f"tcp://127.0.0.1:{port}", "--nthreads", "1", "--no-nanny", "--host", "127.0.0.1",
                 "--worker-port", str(low + 1 + index if low else 0), "--no-dashboard", "--name", f"w{index}"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        outcome: dict = {}
        with dask_client(f"tcp://127.0.0.1:{port}") as client:
            client.wait_for_workers(2, timeout=120)
            victim = next(address for address, info in client.scheduler_info()["workers"].items()
                          if info["name"] == "w1")

            def run() -> None:
                try:
                    outcome["report"] = precompute(factory, SAMPLE, create_model("lbp"), xmaps=10, client=client)
                except BaseException as error:  # noqa: BLE001 (reported below)
                    outcome["error"] = error

            worker = threading.Thread(target=run)
            worker.start()
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline:  # halfway: some images embedded, the victim busy with more
                done = [key for key in client.who_has() if str(key).startswith("xfv-occlusion")]
                if len(done) >= 4 and client.processing().get(victim):
                    break
                time.sleep(0.2)
            else:
                pytest.fail("the run never got halfway")
            processes[1].send_signal(signal.SIGKILL)
            worker.join(timeout=600)
            assert not worker.is_alive(), "the run did not finish after a worker was killed"
        assert "error" not in outcome, outcome.get("error")
        assert processes[1].wait(timeout=10) == -signal.SIGKILL
        assert outcome["report"].xmaps_computed == 8
        assert_complete_without_duplicates(factory, 10)
    finally:
        for process in processes:
            if process.poll() is None:
                process.terminate()
                process.wait(timeout=30)


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
