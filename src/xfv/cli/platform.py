"""Platform commands: ingest, datasets (list, remove), precompute, serve, demo."""

from __future__ import annotations

import argparse
import socket
import time
from importlib import resources
from pathlib import Path

from xfv.cli.common import add_engine_arguments, add_outside_root_argument, engine_options, show_progress
from xfv.datasets import DATASET_FORMATS
from xfv.models import create_model

SAMPLE_NAME = "lfw-sample"
DEMO_MODELS = ("dlib", "sface")
"""The demo's models: the strong ones, side by side. Others run by name: ``xfv precompute --model lbp``."""
DEMO_XMAP_PAIRS = (18, 19, 20)
"""Places in the sample's pair list of the pairs whose X-Maps the demo computes for both models before it serves:
three photos of Abdoulaye Wade compared with each other (3 genuine pairs over 3 distinct images, the cost of X-Maps
being per image: 2,117 forward passes each). Pair 19 is the sample's hardest for dlib (C-Score 0.57) and an easy
one for SFace; its second photo is the one dlib's HOG detector misses (its CNN finds the face)."""


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    ingest = subparsers.add_parser("ingest", help="register a dataset's images and pairs in the platform database")
    ingest.add_argument("--dataset", required=True, choices=sorted(DATASET_FORMATS), help="pair-list format")
    ingest.add_argument("--root", required=True, help="folder the image paths are relative to")
    ingest.add_argument("--pairs", help="pair list (default: the format's usual file inside --root)")
    ingest.add_argument("--name", help="dataset name in the database (default: the format name)")
    ingest.add_argument("--workers", type=int, help="processes for hashing and quality scores (default: up to 8)")
    add_outside_root_argument(ingest)
    _add_db_argument(ingest)
    ingest.set_defaults(handler=run_ingest)

    datasets = subparsers.add_parser("datasets", help="list the datasets of the platform database, or remove one")
    actions = datasets.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="each dataset with its format, pairs, images and models")
    _add_db_argument(listing)
    listing.set_defaults(handler=run_datasets_list)
    remove = actions.add_parser("remove", help="delete a dataset with its images, pairs, results, X-Maps and "
                                               "calibrations from the database (its files are not touched)")
    remove.add_argument("name", help="the dataset's name in the database")
    _add_db_argument(remove)
    remove.set_defaults(handler=run_datasets_remove)

    precompute = subparsers.add_parser("precompute", help="distances, thresholds, C-Scores and X-Maps of a dataset")
    precompute.add_argument("--dataset", required=True, help="dataset name in the database")
    precompute.add_argument("--model", action="append", help="model name, repeatable (default: dlib)")
    precompute.add_argument("--xmaps", default="0", type=_xmap_count, metavar="N|all",
                            help="X-Maps for N pairs spread over the dataset, or all (default 0)")
    cluster = precompute.add_argument_group("X-Maps on Dask (pip install 'xfv[dask]'; default: in this process)")
    where = cluster.add_mutually_exclusive_group()
    where.add_argument("--scheduler", metavar="ADDRESS", help="an existing Dask scheduler, e.g. tcp://10.0.0.1:8786")
    where.add_argument("--workers", type=_positive, metavar="N", help="start a local cluster of N processes, one "
                       "thread each")
    cluster.add_argument("--threads", type=_positive, metavar="N",
                         help="engine threads per model (ONNX models: dlib, sface, onnx; default: the cores this "
                              "process may use, shared out among --workers)")
    cluster.add_argument("--scheduler-port", type=int, default=0, help="local cluster's scheduler port (0: any)")
    cluster.add_argument("--worker-ports", metavar="LOW:HIGH", help="local workers' port range (default: any)")
    cluster.add_argument("--dashboard", default="127.0.0.1:8787", metavar="ADDRESS",
                         help="local cluster's dashboard address, or 'none' (default 127.0.0.1:8787)")
    add_engine_arguments(precompute.add_argument_group("engine of the ONNX models (dlib, sface, onnx)"))
    _add_db_argument(precompute)
    precompute.set_defaults(handler=run_precompute)

    serve = subparsers.add_parser("serve", help="run the web platform (explorer, viewer, live explanations, API)")
    _add_server_arguments(serve)
    serve.set_defaults(handler=run_serve)

    demo = subparsers.add_parser("demo", help="ingest and precompute the bundled LFW sample, then serve it")
    _add_server_arguments(demo)
    demo.add_argument("--no-serve", action="store_true", help="prepare the database only")
    demo.set_defaults(handler=run_demo)


def _add_db_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", help="database URL (default: $XFV_DB_URL, else SQLite in the user data folder)")


def _add_server_arguments(parser: argparse.ArgumentParser) -> None:
    _add_db_argument(parser)
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000)")


def _xmap_count(text: str) -> int | None:
    if text == "all":
        return None
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected a number of pairs or 'all', got {text!r}")
    return int(text)


def run_ingest(args: argparse.Namespace) -> int:
    from xfv.jobs.ingest import ingest_dataset
    from xfv.store.db import open_database

    report = ingest_dataset(open_database(args.db), args.dataset, args.root, args.pairs, args.name,
                            workers=args.workers, progress=show_progress(args),
                            allow_outside_root=args.allow_outside_root)
    print(f"{report.dataset}: {report.images_added} images added ({report.images_skipped} already there), "
          f"{report.pairs_added} pairs added ({report.pairs_skipped} already there)")
    return 0


def run_datasets_list(args: argparse.Namespace) -> int:
    from xfv.store.db import open_database
    from xfv.store.queries import dataset_summaries

    with open_database(args.db)() as session:
        for dataset in dataset_summaries(session):
            models = ", ".join(m.name for m in dataset.models) or "no results"
            print(f"{dataset.name}\t{dataset.format}\t{dataset.pairs} pairs\t{dataset.images} images\t{models}")
    return 0


def run_datasets_remove(args: argparse.Namespace) -> int:
    from xfv.jobs.ingest import remove_dataset
    from xfv.store.db import open_database

    report = remove_dataset(open_database(args.db), args.name)
    print(f"{report.dataset}: removed {report.pairs} pairs, {report.images} images, {report.results} results, "
          f"{report.xmaps} X-Maps and {report.calibrations} calibrations (its files are untouched)")
    return 0


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return int(text)


def run_precompute(args: argparse.Namespace) -> int:
    from contextlib import nullcontext

    from xfv.jobs.cluster import ModelSpec, dashboard_note, dask_client
    from xfv.jobs.precompute import precompute
    from xfv.store.db import open_database

    factory = open_database(args.db)
    specs = [ModelSpec.of(name, **engine_spec(args, name)) for name in args.model or ["dlib"]]
    models = [spec.create() for spec in specs]  # a bad name or option fails here, before a cluster starts
    on_dask = args.scheduler is not None or args.workers is not None
    context = dask_client(args.scheduler, args.workers, scheduler_port=args.scheduler_port,
                          dashboard_address=None if args.dashboard == "none" else args.dashboard,
                          worker_ports=args.worker_ports) if on_dask else nullcontext()
    with context as client:
        if client is not None:
            workers = len(client.scheduler_info()["workers"])
            print(f"Dask: {client.scheduler.address}, {workers} workers. {dashboard_note(client)}")
        for spec, model in zip(specs, models):
            report = precompute(factory, args.dataset, model, xmaps=args.xmaps, progress=show_progress(args),
                                client=client, spec=spec)
            state = "computed" if report.results_computed else "already there"
            print(f"{report.dataset} / {report.model}: {report.pairs} pairs ({state}), accuracy "
                  f"{report.accuracy:.4f}; X-Maps for {report.xmaps_computed} pairs computed, "
                  f"{report.xmaps_skipped} already there; calibration: {report.calibration}")
            if report.xmaps_computed:
                ran = (f", {report.passes_run / report.xmap_seconds:.0f} passes/s run here" if report.passes_run
                       else "")
                print(f"X-Maps: {report.xmaps_computed} pairs, {report.xmap_images} distinct images in "
                      f"{report.xmap_seconds:.1f} s: {report.xmaps_computed / report.xmap_seconds:.2f} pairs/s, "
                      f"{report.xmap_passes / report.xmap_seconds:.0f} passes/s (cached ones counted){ran}")
    return 0


def engine_spec(args: argparse.Namespace, model: str) -> dict:
    """A model's engine options for ``xfv precompute``: ``--provider``, ``--precision`` and the threads (``--threads``,
    else the cores this process may use, divided among the ``--workers`` of a local cluster), for the ONNX models."""
    from xfv.models.engines import ENGINE_MODELS, usable_cores

    if model not in ENGINE_MODELS:
        return {}
    threads = args.threads or (max(1, usable_cores() // args.workers) if args.workers else None)
    return {**engine_options(args, model), **({"threads": threads} if threads else {})}


def sample_root() -> Path:
    """The bundled sample of 60 LFW pairs (see its SOURCES.md)."""
    return Path(str(resources.files("xfv") / "data" / "sample"))


def run_demo(args: argparse.Namespace) -> int:
    from xfv.jobs.ingest import ingest_dataset
    from xfv.jobs.precompute import precompute
    from xfv.store.db import open_database, resolve_db_url

    started = time.perf_counter()
    listener = None if args.no_serve else _listen(args.host, args.port)  # a taken port fails now, not after the work

    def step(text: str) -> None:
        print(f"[{time.perf_counter() - started:5.1f} s] {text}", flush=True)

    factory = open_database(args.db)
    step(f"database: {resolve_db_url(args.db)}")
    step(f"registering the bundled sample ({SAMPLE_NAME}: 60 LFW pairs, 96 images) ...")
    report = ingest_dataset(factory, "lfw", sample_root(), name=SAMPLE_NAME, progress=True)
    step(f"{report.images_added} images added, {report.images_skipped} already there")
    for name in DEMO_MODELS:
        step(f"{name}: loading the model ...")
        model = create_model(name)
        step(f"{name}: distances, thresholds and C-Scores of the 60 pairs, then the X-Maps of pairs "
             f"{', '.join(str(p + 1) for p in DEMO_XMAP_PAIRS)} of the list (all four methods) ...")
        result = precompute(factory, SAMPLE_NAME, model, xmap_positions=DEMO_XMAP_PAIRS, progress=True)
        rate = (f" in {result.xmap_seconds:.1f} s ({result.passes_run / result.xmap_seconds:.0f} passes/s)"
                if result.passes_run else "")
        step(f"{name}: accuracy {result.accuracy:.4f} ({result.calibration}); X-Maps for "
             f"{result.xmaps_computed + result.xmaps_skipped} pairs, {result.xmaps_computed} computed now{rate}")
    step("ready. More models by name, e.g. xfv precompute --dataset lfw-sample --model lbp")
    if listener is None:
        return 0
    return run_serve(args, listener)


def run_serve(args: argparse.Namespace, listener: socket.socket | None = None) -> int:
    from xfv.web.core.config import Settings
    from xfv.web.main import create_app
    from xfv.web.server import serve

    listener = listener or _listen(args.host, args.port)
    settings = Settings(db_url=args.db) if args.db else Settings()
    app = create_app(settings)
    print(f"xfv: serving on http://{args.host}:{args.port}/ (API docs at /docs)", flush=True)
    serve(app, listener, settings)
    return 0


def _listen(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` before anything is announced; a clear error if the port is taken."""
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        listener = socket.socket(family, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((host, port))
    except OSError as error:
        raise ValueError(f"cannot listen on {host}:{port} ({error.strerror}); is another server running there? "
                         "Choose another --port.") from None
    listener.listen(2048)
    listener.set_inheritable(True)
    return listener
