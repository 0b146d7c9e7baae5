"""The stored X-Maps of several runs over the same pairs (SQLite files): map count, duplicates, and the largest
absolute difference of every map against the first run's (issue 12: cluster maps equal in-process maps).

    python benchmarks/compare_maps.py first.db other.db [...]
"""

from __future__ import annotations

import sqlite3
import sys

import numpy as np

from xfv.store.maps import decode_map


def stored(path: str) -> tuple[dict[tuple, np.ndarray], int, int]:
    """Maps keyed by (pair position, model, method, image, scale); duplicated keys; pairs with maps."""
    with sqlite3.connect(path) as connection:
        rows = connection.execute(
            "SELECT p.position, m.name, x.method, x.image, x.scale, x.data FROM xmaps x "
            "JOIN pairs p ON p.id = x.pair_id JOIN models m ON m.id = x.model_id").fetchall()
        duplicates = connection.execute(
            "SELECT COUNT(*) FROM (SELECT 1 FROM xmaps GROUP BY pair_id, model_id, method, image, scale "
            "HAVING COUNT(*) > 1)").fetchone()[0]
        pairs = connection.execute("SELECT COUNT(DISTINCT pair_id) FROM xmaps").fetchone()[0]
    return {row[:5]: decode_map(row[5]) for row in rows}, duplicates, pairs


def main(paths: list[str]) -> int:
    if len(paths) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    first, duplicates, pairs = stored(paths[0])
    print(f"{paths[0]}: {len(first)} maps of {pairs} pairs, {duplicates} duplicates")
    for path in paths[1:]:
        maps, duplicates, pairs = stored(path)
        if maps.keys() != first.keys():
            print(f"{path}: other maps than {paths[0]} ({len(maps)} against {len(first)})")
            return 1
        largest = max(float(np.abs(maps[key] - first[key]).max()) for key in first)
        print(f"{path}: {len(maps)} maps of {pairs} pairs, {duplicates} duplicates, "
              f"largest |difference| against the first: {largest}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
