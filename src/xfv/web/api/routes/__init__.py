"""One module per resource: datasets, models, pairs, images, xmaps, tasks, uploads."""
