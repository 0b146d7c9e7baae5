"""Embedding models behind one protocol: aligned uint8 faces in, float32 embeddings out."""

from xfv.models.base import EmbeddingModel, ModelConfig
from xfv.models.registry import (
    ModelCard,
    create_model,
    list_models,
    model_cards,
    register_model,
    runnable_models,
)

__all__ = [
    "EmbeddingModel", "ModelCard", "ModelConfig", "create_model", "list_models", "model_cards", "register_model",
    "runnable_models",
]
