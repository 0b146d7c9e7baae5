"""Arguments shared by several commands, and the helpers that turn them into objects."""

from __future__ import annotations

import argparse
import json
import sys
import warnings

from xfv.confidence import Calibration
from xfv.models import EmbeddingModel, create_model
from xfv.models.engines import ENGINE_MODELS, PRECISIONS, PROVIDER_CHOICES


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """``--model``, ``--backend``, ``--model-path``, ``--model-config``, ``--flip``, ``--provider``, ``--precision``,
    ``--no-cache``, ``--aligned``."""
    group = parser.add_argument_group("model")
    group.add_argument("--model", default="dlib", help="registered model name (see 'xfv models'); default dlib")
    group.add_argument("--backend", choices=["onnx", "dlib"], help="dlib model only: onnx (fast, default) or dlib (reference)")
    group.add_argument("--model-path", help="onnx model only: path of the .onnx file")
    group.add_argument("--model-config", help="onnx model only: JSON file with input size, channel order, mean/std, alignment")
    group.add_argument("--flip", action="store_true", help="average each embedding with that of the mirrored face")
    add_engine_arguments(group)
    group.add_argument("--no-cache", action="store_true", help="do not read or write the embedding cache")
    parser.add_argument("--aligned", action="store_true", help="inputs are already aligned crops: skip detection")


def add_engine_arguments(group) -> None:
    """``--provider`` and ``--precision`` (ONNX models: dlib, sface, onnx; docs/models.md, "Engines")."""
    group.add_argument("--provider", choices=PROVIDER_CHOICES,
                       help="engine of ONNX models: auto (default: the fastest fp32 engine equal to cpu's, measured "
                            "once per model and machine), cpu, openvino, cuda, tensorrt")
    group.add_argument("--precision", choices=PRECISIONS,
                       help="fp32 (default), or int8 / bf16: reduced precision, a different model configuration "
                            "(own fingerprint and caches), with the measured cost in docs/models.md")


def engine_options(args: argparse.Namespace, model: str) -> dict:
    """``--provider`` / ``--precision`` as model options; an error for a model that runs no ONNX graph."""
    options = {name: getattr(args, name) for name in ("provider", "precision") if getattr(args, name, None)}
    if options and model not in ENGINE_MODELS:
        flags = " and ".join(f"--{name}" for name in options)
        raise ValueError(f"{flags} appl{'y' if len(options) > 1 else 'ies'} to the ONNX models "
                         f"({', '.join(ENGINE_MODELS)}), not to {model!r}.")
    return options


def add_outside_root_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--allow-outside-root", action="store_true",
                        help="accept image paths in the pair list that leave --root (absolute or through '..')")


def model_from_args(args: argparse.Namespace) -> EmbeddingModel:
    options: dict = {}
    if args.backend is not None:
        if args.model != "dlib":
            raise ValueError(f"--backend applies to the dlib model only, not to {args.model!r}.")
        options["backend"] = args.backend
    if args.model_path is not None:
        options["path"] = args.model_path
    if args.model_config is not None:
        with open(args.model_config, encoding="utf-8") as handle:
            options.update(json.load(handle))
    if args.flip:
        options["flip"] = True
    options.update(engine_options(args, args.model))
    return create_model(args.model, **options)


def show_progress(args: argparse.Namespace) -> bool:
    """Progress bars only on a terminal and never with ``--json``."""
    return not getattr(args, "json", False) and sys.stderr.isatty()


def print_json(payload: dict) -> None:
    print(json.dumps(payload, indent=2, sort_keys=False))


def add_calibration_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--calibration", help="calibration JSON (default: the one shipped for the model)")
    add_cscore_argument(parser)


def add_cscore_argument(parser: argparse.ArgumentParser) -> None:
    from xfv.confidence.calibration_file import VARIANTS

    parser.add_argument("--cscore", choices=VARIANTS, help="C-Score variant of the calibration (default: its own "
                                                           "default; paper: the paper's Eq. 2-3; docs/quality.md)")


def cli_calibration(args: argparse.Namespace, model: EmbeddingModel) -> tuple[Calibration, str]:
    """The calibration of ``--calibration`` (named after its file) or the one shipped for the model."""
    from xfv.confidence import load_calibration
    from xfv.jobs.verify import describe, shipped_calibration

    if not args.calibration:
        return shipped_calibration(model.name, model.fingerprint)
    calibration = load_calibration(args.calibration)
    if calibration.model != model.name:
        raise ValueError(f"The calibration was fitted for model {calibration.model!r}, not {model.name!r}.")
    if not calibration.holds_for(model.fingerprint):
        raise ValueError(f"The calibration was fitted with another configuration of {model.name!r} (fingerprint "
                         f"{', '.join(calibration.fingerprints)}; this one is {model.fingerprint}).")
    return calibration, f"{args.calibration}: {describe(calibration)}"


def verdict_line(verdict) -> str:
    """``same (distance 0.0412, threshold 0.0928, confidence 0.999; model dlib on <engine>; calibration ...)``; a
    confidence below 0.5 (the quality-aware C-Score's) says ``confidence 0.370: more likely wrong than right``."""
    reading = f": {verdict.reading}" if verdict.reading else ""
    confidence = "" if verdict.confidence is None else f", confidence {verdict.confidence:.3f}{reading}"
    engine = f" on {verdict.engine}" if verdict.engine else ""
    variant = f", {verdict.cscore} C-Score" if verdict.cscore else ""
    quality = ("" if verdict.quality1 is None else
               f"; quality {verdict.quality1:.3f} / {verdict.quality2:.3f}")
    note = f"\nwarning: {verdict.quality_note}" if verdict.quality_note else ""
    return (f"{verdict.prediction} (distance {verdict.distance:.4f}, threshold {verdict.threshold:.4f}{confidence}; "
            f"model {verdict.model}{engine}; calibration {verdict.calibration}{variant}{quality}){note}")


def verify_photos(args: argparse.Namespace, model: EmbeddingModel):
    """``args.image1`` and ``args.image2`` as faces (``--detector``, ``--aligned``) and their verdict under
    ``--calibration`` (or ``--threshold`` where the command has it): ``xfv verify`` and ``xfv explain`` alike."""
    from xfv.jobs.verify import photo_cache, photo_detector, photo_face, verify_faces

    detector = photo_detector(model, args.detector)
    faces = [photo_face(path, model, detector=detector, aligned=args.aligned) for path in (args.image1, args.image2)]
    for face in faces:
        if face.note is not None:
            warnings.warn(face.note, stacklevel=2)  # "<photo>: 3 faces found, using the largest."
    threshold = getattr(args, "threshold", None)
    calibration, name = (None, "") if threshold is not None and not args.calibration else cli_calibration(args, model)
    cache = None if args.no_cache else photo_cache(model, detector, args.aligned)
    return faces, verify_faces(model, *faces, calibration, name, threshold=threshold, cache=cache,
                               variant=getattr(args, "cscore", None))
