"""Compact X-Map storage: int16 + delta + zlib blobs, their error bound, older rows, the 0002 migration."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from sqlalchemy import insert, select, text

from xfv.errors import XfvError
from xfv.store.db import create_db_engine, migrate
from xfv.store.maps import MAX_ERROR, decode_map, encode_map
from xfv.store.models import XMapRecord


def smooth_map(rng) -> np.ndarray:
    """A normalised map like an X-Map: smooth, in [-1, 1], reaching +-1."""
    y, x = np.mgrid[:112, :112] / 112.0
    raw = np.sin(3 * x + rng.uniform(0, 3)) * np.cos(2 * y) + 0.1 * rng.standard_normal((112, 112))
    return (raw / np.abs(raw).max()).astype(np.float32)


def test_round_trip_error_is_within_the_float16_bound(rng):
    assert MAX_ERROR == pytest.approx(1.53e-5, rel=1e-2)
    worst = 0.0
    for _ in range(20):
        xmap = smooth_map(rng)
        decoded = decode_map(encode_map(xmap))
        assert decoded.shape == (112, 112) and decoded.dtype == np.float32
        worst = max(worst, float(np.abs(decoded - xmap).max()))
    assert 1e-6 < worst <= MAX_ERROR
    exact = np.array([[-1.0, 0.0, 1.0]], dtype=np.float32)
    assert np.array_equal(decode_map(encode_map(exact)), exact)
    wide = rng.uniform(-5, 5, (7, 9))  # any finite map: the bound scales with its largest |value|
    assert np.abs(decode_map(encode_map(wide)) - wide).max() <= 5 * MAX_ERROR * 1.0001
    assert decode_map(encode_map(np.zeros((3, 2)))).tolist() == [[0, 0]] * 3


def test_blobs_are_smaller_than_float32_npy(rng):
    xmap = smooth_map(rng)
    buffer = io.BytesIO()
    np.save(buffer, xmap)
    assert len(encode_map(xmap)) < 0.5 * len(buffer.getvalue())


def test_older_rows_still_decode(rng):
    xmap = smooth_map(rng)
    buffer = io.BytesIO()
    np.save(buffer, xmap)
    assert np.array_equal(decode_map(buffer.getvalue()), xmap)
    version1 = b"XFVM" + struct.pack("<BB2I", 1, 2, 112, 112) + zlib.compress(xmap.astype("<f2").tobytes())
    assert np.abs(decode_map(version1) - xmap).max() <= 2.0**-12


def test_bad_maps_and_blobs_are_clear_errors():
    with pytest.raises(XfvError, match="finite"):
        encode_map(np.array([np.nan, 0.0]))
    with pytest.raises(XfvError, match="Not a stored X-Map"):
        decode_map(b"garbage")
    blob = encode_map(np.zeros((4, 4)))
    with pytest.raises(XfvError, match="corrupt"):
        decode_map(blob[:-3])
    with pytest.raises(XfvError, match="version 9"):
        decode_map(blob[:4] + b"\x09" + blob[5:])
    with pytest.raises(XfvError, match="do not fill"):
        decode_map(blob[:18] + zlib.compress(b"\x00" * 6))


def test_migration_keeps_old_maps_as_the_final_scale(platform_url, rng):
    engine = create_db_engine(platform_url)
    migrate(engine, "0002_tasks_uploads")  # the schema before this migration
    xmap = smooth_map(rng)
    buffer = io.BytesIO()
    np.save(buffer, xmap)
    with engine.begin() as connection:
        connection.execute(text("INSERT INTO datasets (id, name, format, root, pairs_file, created_at) "
                                "VALUES (1, 'd', 'lfw', '/r', 'p', CURRENT_TIMESTAMP)"))
        connection.execute(text("INSERT INTO images (id, dataset_id, path, identity, sha256, width, height, quality, "
                                "sharpness, brightness, contrast, aligned) VALUES (1, 1, 'a.jpg', 'a', 'x', 1, 1, "
                                "1, 1, 1, 1, true)"))
        connection.execute(text("INSERT INTO pairs (id, dataset_id, position, fold, label, image1_id, image2_id) "
                                "VALUES (1, 1, 0, 0, 1, 1, 1)"))
        connection.execute(text("INSERT INTO models (id, name, fingerprint, description) VALUES (1, 'm', 'f', '')"))
        connection.execute(text("INSERT INTO xmaps (pair_id, model_id, method, image, data, options, created_at) "
                                "VALUES (1, 1, 1, 1, :data, '{}', CURRENT_TIMESTAMP)"), {"data": buffer.getvalue()})
    migrate(engine)
    with engine.begin() as connection:
        row = connection.execute(select(XMapRecord.scale, XMapRecord.data)).one()
        assert row.scale == 0 and np.array_equal(decode_map(row.data), xmap)
        connection.execute(insert(XMapRecord.__table__).values(
            pair_id=1, model_id=1, method=1, image=1, scale=7, data=encode_map(xmap), options={}))
    with pytest.raises(Exception, match="(?i)unique|duplicate"), engine.begin() as connection:
        connection.execute(insert(XMapRecord.__table__).values(
            pair_id=1, model_id=1, method=1, image=1, scale=7, data=encode_map(xmap), options={}))
    engine.dispose()
