"""Arguments shared by several commands, and the helpers that turn them into objects."""

from __future__ import annotations

import argparse
import json
import sys

from xfv.models import EmbeddingModel, create_model


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """``--model``, ``--backend``, ``--model-path``, ``--model-config``, ``--flip``, ``--no-cache``, ``--aligned``."""
    group = parser.add_argument_group("model")
    group.add_argument("--model", default="dlib", help="registered model name (see 'xfv models'); default dlib")
    group.add_argument("--backend", choices=["onnx", "dlib"], help="dlib model only: onnx (fast, default) or dlib (reference)")
    group.add_argument("--model-path", help="onnx model only: path of the .onnx file")
    group.add_argument("--model-config", help="onnx model only: JSON file with input size, channel order, mean/std, alignment")
    group.add_argument("--flip", action="store_true", help="average each embedding with that of the mirrored face")
    group.add_argument("--no-cache", action="store_true", help="do not read or write the embedding cache")
    parser.add_argument("--aligned", action="store_true", help="inputs are already aligned crops: skip detection")


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
    return create_model(args.model, **options)


def show_progress(args: argparse.Namespace) -> bool:
    """Progress bars only on a terminal and never with ``--json``."""
    return not getattr(args, "json", False) and sys.stderr.isatty()


def print_json(payload: dict) -> None:
    print(json.dumps(payload, indent=2, sort_keys=False))
