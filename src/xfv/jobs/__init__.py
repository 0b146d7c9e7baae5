"""Jobs: long-running work over datasets (embedding, evaluation, ingest, precompute) with progress."""
