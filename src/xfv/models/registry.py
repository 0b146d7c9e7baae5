"""An explicit model registry: ``create_model(name, **options)`` and ``list_models()`` (style.md item 4)."""

from __future__ import annotations

from typing import Callable

from xfv.models.base import EmbeddingModel

_FACTORIES: dict[str, Callable[..., EmbeddingModel]] = {}
_DESCRIPTIONS: dict[str, str] = {}


def register_model(name: str, description: str) -> Callable:
    """Decorator that registers a factory ``(**options) -> EmbeddingModel`` under ``name``."""

    def decorator(factory: Callable[..., EmbeddingModel]) -> Callable[..., EmbeddingModel]:
        if name in _FACTORIES:
            raise ValueError(f"A model named {name!r} is already registered.")
        _FACTORIES[name] = factory
        _DESCRIPTIONS[name] = description
        return factory

    return decorator


def list_models() -> dict[str, str]:
    """The registered model names with a one-line description each."""
    _load_builtins()
    return dict(sorted(_DESCRIPTIONS.items()))


def create_model(name: str, **options) -> EmbeddingModel:
    """Build the model registered as ``name`` with its ``options`` (e.g. ``backend="dlib"``)."""
    _load_builtins()
    if name not in _FACTORIES:
        raise ValueError(f"Unknown model {name!r}; expected one of {sorted(_FACTORIES)}.")
    return _FACTORIES[name](**options)


def _load_builtins() -> None:
    # Importing the modules runs their @register_model decorators.
    from xfv.models import callable_model, dlib_resnet, lbp, onnx_model  # noqa: F401
