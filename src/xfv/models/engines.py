"""Execution engines: what runs an ONNX embedding graph (``provider``), at which arithmetic (``precision``), with
how many threads and images per call, chosen from the machine.

Providers (docs/models.md, "Engines"):

- ``cpu``: ONNX Runtime's CPUExecutionProvider (the default; always there). Graphs with per-channel ``PRelu``
  (SFace) run with it rewritten as two depthwise 1 x 1 convolutions and a ``Relu``
  (:func:`xfv.models.onnx_graph.prelu_as_convs`): the same function, kept in ONNX Runtime's blocked-layout kernels.
- ``openvino``: the OpenVINO runtime's CPU plugin (``pip install 'xfv[openvino]'``), with its inference precision
  set explicitly (its default on CPUs with bf16 instructions is bf16, not fp32).
- ``cuda`` and ``tensorrt``: ONNX Runtime's GPU providers (``pip install 'xfv[gpu]'``, an NVIDIA GPU); TF32 and
  fp16 are off, so fp32 stays fp32. A provider that cannot start is an error, never a silent fall-back to the CPU.
- ``auto`` (the default): for fp32, the fastest provider available here whose embeddings equal the ``cpu``
  provider's (cosine >= :data:`FP32_MIN_COSINE` on the bundled sample's real faces), measured once per model and
  machine and kept in the cache; ``cpu`` when it is the only one. For int8, ``openvino`` where installed, else
  ``cpu``; for bf16, ``openvino``.

Precisions: ``fp32`` (default); ``int8`` (:mod:`xfv.models.precision`; ``cpu`` and ``openvino``) and ``bf16``
(``openvino`` on a CPU with bf16 instructions) are explicit options, never chosen silently, and are part of the
model's fingerprint (with the provider that runs them): their embeddings differ from fp32's.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import threading
import time
import warnings
from collections.abc import Callable
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from xfv.errors import XfvError
from xfv.files import atomic_write, default_cache_dir

if TYPE_CHECKING:
    import onnxruntime as ort

# A provider that is not installed: onnxruntime warns, then falls back; the EngineError below says it in one line.
# Filtered once, here: warnings.catch_warnings changes process-wide state and is not safe in worker threads.
warnings.filterwarnings("ignore", message="Specified provider", category=UserWarning)

PROVIDERS = ("cpu", "openvino", "cuda", "tensorrt")
PROVIDER_CHOICES = ("auto", *PROVIDERS)
PRECISIONS = ("fp32", "int8", "bf16")
#: the registered models that run an ONNX graph, and so take ``provider`` and ``precision``
ENGINE_MODELS = ("dlib", "onnx", "sface")
#: the least cosine similarity between an fp32 engine's embeddings and the ``cpu`` provider's on real faces
FP32_MIN_COSINE = 0.9999
#: images per call tried when choosing a batch size (the smallest within 5% of the fastest is taken)
BATCH_CANDIDATES = (16, 32, 64, 128)
SMALL_CALL = 64  # calls with at most this many images run as one batch, without measuring anything
#: ``auto`` leaves the ``cpu`` provider only for an engine measured at least this much faster
AUTO_MARGIN = 1.1
PROBE_FACES = 32  # real faces behind each measured choice

_ORT_NAMES = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider", "tensorrt": "TensorrtExecutionProvider"}
_INSTALL = {
    "openvino": "pip install 'xfv[openvino]'",
    "cuda": "pip install 'xfv[gpu]' (onnxruntime-gpu in place of onnxruntime) on a machine with an NVIDIA GPU",
    "tensorrt": "pip install 'xfv[gpu]' on a machine with an NVIDIA GPU and TensorRT's libraries",
}
_PRECISION_PROVIDERS = {"fp32": PROVIDERS, "int8": ("cpu", "openvino"), "bf16": ("openvino",)}


class EngineError(XfvError):
    """A provider or precision that is unknown, not installed, or cannot run here; the message says what is."""


def usable_cores() -> int:
    """The CPU cores this process may run on (its affinity mask, e.g. a container's or taskset's share)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _openvino():
    try:
        import openvino
    except ImportError:
        return None
    return openvino


def _openvino_version() -> str:
    return _openvino().__version__.split("-")[0]  # "2026.4.1-22982-<commit>-releases/..." -> "2026.4.1"


@lru_cache(maxsize=1)
def _openvino_core():
    return _openvino().Core()


@lru_cache(maxsize=1)
def available_providers() -> dict[str, str]:
    """The providers installed here, each with its runtime in words (a GPU provider listed here may still fail
    to start on a machine without a GPU; :class:`OrtRunner` says so)."""
    import onnxruntime as ort  # imported where used: the command line starts without it

    found = {"cpu": f"onnxruntime {ort.__version__} CPUExecutionProvider"}
    openvino = _openvino()
    if openvino is not None and "CPU" in _openvino_core().available_devices:
        found["openvino"] = f"openvino {_openvino_version()} CPU"
    offered = ort.get_available_providers()
    for name in ("cuda", "tensorrt"):
        if _ORT_NAMES[name] in offered:
            found[name] = f"onnxruntime {ort.__version__} {_ORT_NAMES[name]}"
    return found


def engines_here() -> list[str]:
    """What ``xfv models`` says about the engines: each provider here or how to get it, the precisions, auto."""
    here = available_providers()
    lines = [f"{name}: {here[name]}" if name in here else f"{name}: not here ({_INSTALL[name]})" for name in PROVIDERS]
    lines.append("precision: fp32 (default); int8 on " + ", ".join(_PRECISION_PROVIDERS["int8"]) + "; bf16 on "
                 + ", ".join(_PRECISION_PROVIDERS["bf16"]) + " (explicit only; docs/models.md lists their cost)")
    lines.append("auto (default): per model, the fastest fp32 engine whose embeddings equal cpu's (cosine >= "
                 f"{FP32_MIN_COSINE}), measured once per machine; cpu unless one is {AUTO_MARGIN:.1f}x as fast")
    return lines


def check_engine(provider: str, precision: str) -> None:
    """``EngineError`` unless ``provider`` (or ``auto``) and ``precision`` are known, go together and the provider
    is installed here; the message names what is available."""
    if provider not in PROVIDER_CHOICES:
        raise EngineError(f"Unknown provider {provider!r}; expected one of {', '.join(PROVIDER_CHOICES)} "
                          f"(available here: {', '.join(available_providers())}).")
    if precision not in PRECISIONS:
        raise EngineError(f"Unknown precision {precision!r}; expected one of {', '.join(PRECISIONS)}.")
    allowed = _PRECISION_PROVIDERS[precision]
    if provider != "auto" and provider not in allowed:
        raise EngineError(f"Precision {precision} runs on the {' and '.join(allowed)} provider{'s' * (len(allowed) > 1)}"
                          f", not on {provider!r}.")
    wanted = [provider] if provider != "auto" else ["openvino"] if precision == "bf16" else []
    for name in wanted:
        if name not in available_providers():
            raise EngineError(f"Provider {name!r} is not available here (available: "
                              f"{', '.join(available_providers())}); to get it: {_INSTALL[name]}.")
    if precision == "bf16" and "BF16" not in _openvino_core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"):
        raise EngineError("Precision bf16 needs a CPU with bf16 instructions (AVX-512 BF16 or AMX); this one has "
                          "none, so OpenVINO would run fp32.")


class Runner:
    """Runs one graph: ``run(x)`` takes the graph's input tensor and returns its first output."""

    provider: str
    precision: str
    threads: int
    runtime: str

    def run(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    @property
    def description(self) -> str:
        """E.g. ``cpu fp32 (onnxruntime 1.32.0 CPUExecutionProvider, 2 threads)``."""
        return f"{self.provider} {self.precision} ({self.runtime}, {self.threads} thread{'s' * (self.threads != 1)})"


class OrtRunner(Runner):
    """An ONNX Runtime session on the ``cpu``, ``cuda`` or ``tensorrt`` provider."""

    def __init__(self, graph: Path, provider: str, precision: str, threads: int, cache_dir: Path,
                 session: ort.InferenceSession | None = None) -> None:
        """``session``: a CPU session of ``graph`` with ``threads`` already at hand, used where nothing is rewritten."""
        import onnxruntime as ort

        from xfv.models.onnx_graph import load_graph, prelu_as_convs

        self.provider, self.precision, self.threads = provider, precision, threads
        self.runtime = f"onnxruntime {ort.__version__} {_ORT_NAMES[provider]}"
        data: bytes | str = str(graph)
        if provider == "cpu" and precision == "fp32":
            model = load_graph(graph)
            if prelu_as_convs(model):
                data, session = model.SerializeToString(), None
        else:
            session = None
        if session is not None:
            self.session = session
            self.input_name = session.get_inputs()[0].name
            self.output_name = session.get_outputs()[0].name
            return
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        cuda = ("CUDAExecutionProvider", {"use_tf32": "0"})  # TF32 would round fp32 products to 10-bit mantissas
        providers = {
            "cpu": ["CPUExecutionProvider"],
            "cuda": [cuda, "CPUExecutionProvider"],
            "tensorrt": [("TensorrtExecutionProvider", {
                "trt_fp16_enable": "False", "trt_int8_enable": "False", "trt_engine_cache_enable": "True",
                "trt_engine_cache_path": str(cache_dir / "tensorrt")}), cuda, "CPUExecutionProvider"],
        }[provider]
        self.session = ort.InferenceSession(data, sess_options=options, providers=providers)
        started = self.session.get_providers()
        if started[0] != _ORT_NAMES[provider]:  # onnxruntime falls back to the next provider with a log line only
            raise EngineError(f"Provider {provider!r} could not start here (onnxruntime runs {', '.join(started)} "
                              f"instead); to get it: {_INSTALL[provider]}.")
        self.input_name = self.session.get_inputs()[0].name
        self.output_name = self.session.get_outputs()[0].name

    def run(self, x: np.ndarray) -> np.ndarray:
        return self.session.run([self.output_name], {self.input_name: x})[0]


class OpenVinoRunner(Runner):
    """The graph compiled by OpenVINO's CPU plugin at ``precision`` (bf16: its inference precision hint; fp32 and
    int8 graphs: f32, which keeps a QDQ graph's quantised operators in int8). One inference request per thread."""

    def __init__(self, graph: Path, precision: str, threads: int) -> None:
        self.provider, self.precision, self.threads = "openvino", precision, threads
        self.runtime = f"openvino {_openvino_version()} CPU"
        hint = "bf16" if precision == "bf16" else "f32"
        try:
            self.compiled = _openvino_core().compile_model(str(graph), "CPU", {
                "INFERENCE_PRECISION_HINT": hint, "INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY"})
        except RuntimeError as error:  # e.g. operators its ONNX reader does not take (blocked DequantizeLinear)
            reason = next((line.strip() for line in str(error).splitlines() if "must" in line or "failed" in line),
                          str(error).splitlines()[0] if str(error) else "unknown error")
            raise EngineError(f"OpenVINO cannot run the graph {Path(graph).name}: {reason}") from None
        granted = self.compiled.get_property("INFERENCE_PRECISION_HINT")
        if granted != getattr(_openvino().Type, hint):
            raise EngineError(f"OpenVINO runs this graph at {granted}, not {hint} as asked.")
        self._local = threading.local()

    def run(self, x: np.ndarray) -> np.ndarray:
        request = getattr(self._local, "request", None)
        if request is None:
            request = self._local.request = self.compiled.create_infer_request()
        return np.array(request.infer({0: x})[0], dtype=np.float32)


def make_runner(graph: Path, provider: str, precision: str, threads: int, cache_dir: Path,
                session: ort.InferenceSession | None = None) -> Runner:
    if provider == "openvino":
        return OpenVinoRunner(graph, precision, threads)
    return OrtRunner(graph, provider, precision, threads, cache_dir, session=session)


def machine_key() -> str:
    """Identifies what a measured choice depends on: the processor, the cores available, the runtimes."""
    cpu = platform.processor()
    try:
        cpu = next(line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    facts = [cpu, platform.machine(), str(usable_cores()), *sorted(available_providers().values())]
    return hashlib.sha256("\n".join(facts).encode()).hexdigest()[:12]


class Measurements:
    """Choices measured for one model configuration on this machine, kept as JSON in the cache
    (``<cache>/engines/<model key>-<machine key>.json``): which provider ``auto`` picked and why, and the batch
    size of each engine."""

    def __init__(self, model_key: str, cache_dir: Path) -> None:
        self.path = cache_dir / "engines" / f"{model_key}-{machine_key()}.json"

    def get(self, key: str) -> dict | None:
        try:
            return json.loads(self.path.read_text()).get(key)
        except (OSError, ValueError, AttributeError):
            return None

    def put(self, key: str, value: dict) -> None:
        try:
            entries = json.loads(self.path.read_text())
        except (OSError, ValueError):
            entries = {}
        entries[key] = {**value, "measured": datetime.now(UTC).isoformat(timespec="seconds")}
        atomic_write(self.path, json.dumps(entries, indent=2).encode())


def passes_per_second(runs: dict[str, tuple[Runner, int]], inputs: np.ndarray, rounds: int = 4) -> dict[str, float]:
    """Images per second of each ``name: (runner, batch)``, best of ``rounds``, the runners taking turns within each
    round (so that a busy minute on a shared machine slows all of them alike)."""
    batches = {name: np.ascontiguousarray(np.resize(inputs, (batch, *inputs.shape[1:])))
               for name, (_, batch) in runs.items()}
    for name, (runner, _) in runs.items():
        runner.run(batches[name])  # warm-up: first-call allocations, shape-specific compilation
    best = dict.fromkeys(runs, float("inf"))
    for _ in range(rounds):
        for name, (runner, _) in runs.items():
            started = time.perf_counter()
            runner.run(batches[name])
            best[name] = min(best[name], time.perf_counter() - started)
    return {name: len(batches[name]) / seconds for name, seconds in best.items()}


def _min_cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(((a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)).min())


class GraphEngine:
    """One ONNX graph run by the engine that ``provider`` and ``precision`` name, resolved here.

    ``feed``: aligned ``uint8`` faces to the graph's input tensor (the model's preprocessing); ``faces(limit)``: real
    aligned faces at the graph's size (the bundled sample), used only where a choice is measured or an int8 graph
    calibrated; ``model_key``: identifies the model configuration for the measurements kept in the cache;
    ``reference``: a CPU session of ``graph`` with the same threads at hand (reused by the cpu fp32 engine where it
    rewrites nothing).
    """

    def __init__(self, graph: Path, *, provider: str = "auto", precision: str = "fp32", threads: int | None = None,
                 feed: Callable[[np.ndarray], np.ndarray], faces: Callable[..., np.ndarray], model_key: str,
                 cache_dir: Path | None = None, reference: ort.InferenceSession | None = None) -> None:
        check_engine(provider, precision)
        if threads is not None and (not isinstance(threads, int) or threads < 1):
            raise EngineError(f"threads must be a positive integer, got {threads!r}.")
        self.graph, self.feed, self.faces = Path(graph), feed, faces
        self.threads = threads or usable_cores()
        self.cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir() / "models"
        self.measurements = Measurements(model_key, self.cache_dir)
        self.requested, self.precision = provider, precision
        self.auto_reason = ""
        if provider == "auto":
            provider = self._auto() if precision == "fp32" else "openvino" if "openvino" in available_providers() \
                else "cpu"
        self.provider = provider
        self.runner = make_runner(self.model_file(), provider, precision, self.threads, self.cache_dir,
                                  session=reference)
        self._batch: int | None = None

    def model_file(self) -> Path:
        """The graph the engine runs: the fp32 graph, or its int8 copy (made and cached on first use)."""
        if self.precision != "int8":
            return self.graph
        from xfv.models.precision import calibration_faces, int8_graph

        return int8_graph(self.graph, lambda: self.feed(calibration_faces(self.faces())),
                          cache_dir=self.cache_dir)

    @property
    def name(self) -> str:
        """``provider precision``, e.g. ``cpu fp32``."""
        return f"{self.provider} {self.precision}"

    @property
    def description(self) -> str:
        """The runner's description, and whether ``auto`` chose it (why: :attr:`auto_reason`)."""
        return f"{self.runner.description}{', picked by auto' if self.auto_reason else ''}"

    def run(self, x: np.ndarray) -> np.ndarray:
        return self.runner.run(x)

    def _auto(self) -> str:
        """The fastest fp32 provider here whose embeddings equal the cpu provider's, measured once per model and
        machine (and kept); ``cpu`` when no other is installed."""
        candidates = [p for p in ("tensorrt", "cuda", "openvino") if p in available_providers()]
        if not candidates:
            return "cpu"
        key = "auto:" + ",".join(candidates)
        known = self.measurements.get(key)
        if known is None:
            inputs = self.feed(self.faces(PROBE_FACES))
            runners = {"cpu": make_runner(self.graph, "cpu", "fp32", self.threads, self.cache_dir)}
            try:
                expected = runners["cpu"].run(inputs)
            except _ort_errors() as error:  # e.g. a graph that takes one image at a time: nothing to compare
                self.auto_reason = f"cpu, not measured: the graph fails on {len(inputs)} faces at once ({error})"
                return "cpu"
            results: dict[str, dict] = {"cpu": {"min_cosine": 1.0}}
            for provider in candidates:
                try:
                    runner = make_runner(self.graph, provider, "fp32", self.threads, self.cache_dir)
                    results[provider] = {"min_cosine": _min_cosine(runner.run(inputs), expected)}
                except (EngineError, RuntimeError, *_ort_errors()) as error:  # OpenVINO raises RuntimeError
                    results[provider] = {"error": str(error).splitlines()[0] if str(error) else type(error).__name__}
                    continue
                if results[provider]["min_cosine"] >= FP32_MIN_COSINE:
                    runners[provider] = runner
            speeds = passes_per_second({name: (runner, 64) for name, runner in runners.items()}, inputs)
            for provider, speed in speeds.items():
                results[provider]["passes_per_s"] = round(speed, 1)
            fastest = max(speeds, key=speeds.get)
            choice = fastest if speeds[fastest] >= AUTO_MARGIN * speeds["cpu"] else "cpu"
            known = {"choice": choice, "results": results}
            self.measurements.put(key, known)
        choice = known["choice"]
        speeds = ", ".join(f"{p} {r['passes_per_s']:.0f}/s" for p, r in known["results"].items() if "passes_per_s" in r)
        unequal = ", ".join(f"{p} " + (r["error"] if "error" in r else f"min cosine {r['min_cosine']:.6f}")
                            for p, r in known["results"].items() if "passes_per_s" not in r)
        self.auto_reason = (f"fp32 engines equal to cpu's, measured here: {speeds}; another than cpu only if "
                            f"{AUTO_MARGIN:.1f}x as fast" + (f"; left out: {unequal}" if unequal else ""))
        return choice

    def batch_size(self, images: int) -> int:
        """Images per call for a call of ``images``: all of them up to :data:`SMALL_CALL`; beyond that the batch size
        measured fastest for this engine on this machine (once, then kept)."""
        if images <= SMALL_CALL:
            return max(1, images)
        if self._batch is None:
            key = f"batch:{self.name}"
            known = self.measurements.get(key)
            if known is None:
                speeds = passes_per_second({str(batch): (self.runner, batch) for batch in BATCH_CANDIDATES},
                                           self.feed(self.faces(PROBE_FACES)), rounds=3)
                speeds = {int(batch): speed for batch, speed in speeds.items()}
                best = max(speeds.values())
                known = {"batch": min(b for b, s in speeds.items() if s >= 0.95 * best),
                         "passes_per_s": {str(b): round(s, 1) for b, s in speeds.items()}}
                self.measurements.put(key, known)
            self._batch = int(known["batch"])
        return self._batch


def _ort_errors() -> tuple[type[Exception], ...]:
    from onnxruntime.capi import onnxruntime_pybind11_state as state

    return tuple(getattr(state, name) for name in ("Fail", "InvalidArgument", "NotImplemented", "RuntimeException"))
