"""Persistence: on-disk caches keyed by content, and the platform's database."""
