"""An explicit model registry: ``create_model(name, **options)`` and ``list_models()`` (style.md item 4)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from xfv.models.base import EmbeddingModel

_FACTORIES: dict[str, Callable[..., EmbeddingModel]] = {}
_CARDS: dict[str, ModelCard] = {}


@dataclass(frozen=True)
class ModelCard:
    """What ``xfv models`` shows: a one-line description, where the weights come from and under which licence,
    the input and face template, and the LFW view 2 accuracy measured with xfv (docs/models.md)."""

    description: str
    needs: str = ""  # an option the model cannot be built without (e.g. "path"); "": runs by its name alone
    source: str = ""
    licence: str = ""
    input: str = ""
    template: str = ""
    lfw: str = ""


def register_model(name: str, description: str, **facts: str) -> Callable:
    """Decorator that registers a factory ``(**options) -> EmbeddingModel`` under ``name``; ``facts``: the
    other fields of its :class:`ModelCard`."""
    card = ModelCard(description, **facts)

    def decorator(factory: Callable[..., EmbeddingModel]) -> Callable[..., EmbeddingModel]:
        if name in _FACTORIES:
            raise ValueError(f"A model named {name!r} is already registered.")
        _FACTORIES[name] = factory
        _CARDS[name] = card
        return factory

    return decorator


def list_models() -> dict[str, str]:
    """The registered model names with a one-line description each."""
    return {name: card.description for name, card in model_cards().items()}


def runnable_models() -> dict[str, str]:
    """The registered models that run by their name alone (no ``path=`` or ``fn=`` to give), with descriptions:
    the ones a web page can offer."""
    return {name: card.description for name, card in model_cards().items() if not card.needs}


def model_cards() -> dict[str, ModelCard]:
    """The registered model names with their :class:`ModelCard`, sorted by name."""
    _load_builtins()
    return dict(sorted(_CARDS.items()))


def create_model(name: str, /, **options) -> EmbeddingModel:
    """Build the model registered as ``name`` with its ``options`` (e.g. ``backend="dlib"``)."""
    _load_builtins()
    if name not in _FACTORIES:
        raise ValueError(f"Unknown model {name!r}; expected one of {sorted(_FACTORIES)}.")
    return _FACTORIES[name](**options)


def _load_builtins() -> None:
    # Importing the modules runs their @register_model decorators.
    from xfv.models import callable_model, dlib_resnet, lbp, onnx_model, sface  # noqa: F401
