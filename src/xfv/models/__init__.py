"""Embedding models behind one protocol: aligned uint8 faces in, float32 embeddings out."""

from xfv.models.base import EmbeddingModel, ModelConfig
from xfv.models.registry import create_model, list_models, register_model

__all__ = ["EmbeddingModel", "ModelConfig", "create_model", "list_models", "register_model"]
