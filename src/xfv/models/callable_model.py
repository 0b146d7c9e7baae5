"""Wrap any Python callable ``images -> embeddings`` as a model."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from xfv.models.base import EmbeddingModel, ModelConfig
from xfv.models.registry import register_model


class CallableModel(EmbeddingModel):
    """``fn(uint8 (N, S, S, 3)) -> (N, D)`` with ``S = input_size``; ``name`` and ``alignment`` describe it."""

    def __init__(
        self, fn: Callable[[np.ndarray], np.ndarray], name: str = "callable", input_size: int = 112,
        alignment: str = "none", batch_size: int = 64, flip: bool = False,
    ):
        if not callable(fn):
            raise TypeError(f"fn must be callable, got {type(fn).__name__}.")
        self.fn = fn
        self.batch_size = batch_size
        self.config = ModelConfig(
            name=name, input_size=input_size, alignment=alignment,
            options={"callable": getattr(fn, "__qualname__", None) or type(fn).__name__, "flip": bool(flip)},
        )

    def _forward(self, faces: np.ndarray) -> np.ndarray:
        output = np.asarray(self.fn(faces))
        if output.ndim != 2 or output.shape[0] != len(faces):
            raise ValueError(f"The callable must return an array of shape ({len(faces)}, D), got {output.shape}.")
        return output


@register_model("callable", "any Python callable images -> embeddings (fn=...)", needs="fn", source="your Python function",
                input="input_size (default 112) RGB uint8", template="alignment (default none)")
def create_callable(**options) -> CallableModel:
    if "fn" not in options:
        raise ValueError("The callable model needs fn=<callable>.")
    return CallableModel(**options)
