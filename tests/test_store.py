"""The platform database: migrations, ingest, precompute (idempotent, transactional), queries, quality score."""

from __future__ import annotations

import numpy as np
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from conftest_web import SAMPLE
from reference import eq3_reference
from sqlalchemy import func, inspect, select, update

from xfv.cli.platform import sample_root
from xfv.confidence import default_calibration
from xfv.jobs import explain as explain_module
from xfv.jobs import precompute as precompute_module
from xfv.jobs import verify as verify_module
from xfv.jobs.explain import explain_pair
from xfv.jobs.ingest import ingest_dataset, quality_score
from xfv.jobs.precompute import precompute, xmap_selection
from xfv.models import create_model
from xfv.store.db import (
    create_db_engine,
    current_revision,
    default_db_url,
    downgrade,
    head_revision,
    migrate,
    resolve_db_url,
)
from xfv.store.maps import decode_map
from xfv.store.models import Base, CalibrationRecord, Image, Pair, Result, XMapRecord
from xfv.store.queries import NotFoundError, PairQuery, list_pairs


def test_url_precedence(monkeypatch):
    monkeypatch.delenv("XFV_DB_URL", raising=False)
    assert resolve_db_url(None) == default_db_url()
    assert default_db_url().startswith("sqlite:///") and default_db_url().endswith("xfv.db")
    monkeypatch.setenv("XFV_DB_URL", "sqlite:///from-env.db")
    assert resolve_db_url(None) == "sqlite:///from-env.db"
    assert resolve_db_url("sqlite:///given.db") == "sqlite:///given.db"


@pytest.mark.parametrize("before_revision", ["0003_result_calibration", "0004_method4_coalitions"])
def test_the_former_method_4_maps_are_dropped_by_migrations_0004_and_0005(fresh_sample, before_revision):
    """Method 4 changed its definition (0004: coalitions; 0005: shifted grids and a multi-scale fit): a database from
    before keeps methods 1-3 and loses method 4's maps, which precompute then recomputes (the pairs no longer have
    all their rows)."""
    factory = fresh_sample
    engine = factory.kw["bind"]
    with factory() as session:
        before = session.scalar(select(func.count(XMapRecord.id)).where(XMapRecord.method != 4))
        assert session.scalar(select(func.count(XMapRecord.id)).where(XMapRecord.method == 4)) == 2 * 2
    downgrade(engine, before_revision)
    migrate(engine)
    with factory() as session:
        assert session.scalar(select(func.count(XMapRecord.id)).where(XMapRecord.method == 4)) == 0
        assert session.scalar(select(func.count(XMapRecord.id))) == before
    report = precompute(factory, SAMPLE, create_model("lbp"), xmaps=2)
    assert (report.xmaps_computed, report.xmaps_skipped) == (2, 0)


def test_invalid_url_is_a_clear_error():
    with pytest.raises(ValueError, match="Invalid database URL 'not a url'"):
        create_db_engine("not a url")


def test_migrations_build_the_models_schema(platform_url):
    engine = create_db_engine(platform_url)
    assert current_revision(engine) is None
    migrate(engine)
    assert current_revision(engine) == head_revision()
    with engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
    migrate(engine)  # already at head: nothing to do
    downgrade(engine)
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    migrate(engine)
    assert {"datasets", "images", "pairs", "models", "results", "calibrations", "xmaps"} <= set(inspect(engine).get_table_names())
    engine.dispose()


def test_quality_score_prefers_sharp_well_exposed_faces(rng):
    sharp = rng.integers(0, 256, (112, 112, 3), dtype=np.uint8)
    blurred = np.full_like(sharp, 128)
    blurred[::2] = 140
    dark = (sharp // 8).astype(np.uint8)
    q_sharp, q_blurred, q_dark = quality_score(sharp), quality_score(blurred), quality_score(dark)
    assert 0 <= q_blurred.quality < q_sharp.quality <= 100
    assert q_dark.quality < q_sharp.quality
    assert q_dark.brightness < q_sharp.brightness


def test_ingest_and_precompute_are_idempotent(fresh_sample):
    factory = fresh_sample
    again = ingest_dataset(factory, "lfw", sample_root(), name=SAMPLE, workers=1)
    assert (again.images_added, again.pairs_added) == (0, 0)
    assert (again.images_skipped, again.pairs_skipped) == (96, 60)
    report = precompute(factory, SAMPLE, create_model("lbp"), xmaps=2)
    assert not report.results_computed and report.xmaps_computed == 0 and report.xmaps_skipped == 2
    with factory() as session:
        assert session.scalar(select(func.count(Pair.id))) == 60
        assert session.scalar(select(func.count(Result.id))) == 60
        qualities = session.scalars(select(Image.quality)).all()
        assert len(qualities) == 96 and all(0 <= q <= 100 for q in qualities)
        folds = session.scalars(select(CalibrationRecord.fold)).all()
        assert sorted(f for f in folds if f is not None) == list(range(10)) and folds.count(None) == 1
        # 60 pairs are too few for a calibration: each result is Eq. 3 of the shipped lbp calibration, named so.
        shipped = default_calibration("lbp")
        for result, pair in session.execute(select(Result, Pair).join(Pair, Result.pair_id == Pair.id)):
            assert result.threshold == shipped.threshold
            assert result.prediction == (result.distance <= shipped.threshold)
            assert result.correct == (result.prediction == (pair.label == 1))
            expected = eq3_reference([result.distance], shipped.threshold, shipped.to_dict()["parameters"])[0]
            assert result.confidence == pytest.approx(expected, abs=1e-9)
            assert result.calibration.startswith("shipped: lbp on lfw, 6000 pairs (the one fitted on")
        maps = session.scalars(select(XMapRecord)).all()
        assert len(maps) == 2 * 2 * (3 * 4 + 1)  # pairs x images x (methods 1-3: final + 3 patch sizes; 4: final)
        assert sorted({m.scale for m in maps}) == [0, 7, 14, 28]
        for record in maps:  # normalised to [-1, 1] by the largest absolute value (method.md §3)
            xmap = decode_map(record.data)
            assert xmap.shape == (112, 112) and xmap.dtype == np.float32
            assert np.abs(xmap).max() == pytest.approx(1.0)


def test_a_dataset_large_enough_is_judged_out_of_fold(fresh_sample, monkeypatch):
    """At or above the minimum, each stored result is Eq. 3 of its own fold's calibration (fitted on the other nine
    folds); the sample stands in for a large dataset by lowering the minimum."""
    factory = fresh_sample
    monkeypatch.setattr(verify_module, "MIN_CALIBRATION_PAIRS", 60)
    with factory() as session:  # stored rows without a calibration name are recomputed (migration 0003)
        session.execute(update(Result).values(calibration=None))
        session.commit()
    assert precompute(factory, SAMPLE, create_model("lbp"), xmaps=0).results_computed
    with factory() as session:
        calibrations = {c.fold: c for c in session.scalars(select(CalibrationRecord)) if c.fold is not None}
        assert sorted(calibrations) == list(range(10))
        for result, pair in session.execute(select(Result, Pair).join(Pair, Result.pair_id == Pair.id)):
            fold = calibrations[pair.fold]
            assert result.threshold == fold.threshold
            assert result.correct == ((result.distance <= fold.threshold) == (pair.label == 1))
            expected = eq3_reference([result.distance], fold.threshold, fold.parameters["cscore"])[0]
            assert result.confidence == pytest.approx(expected, abs=1e-9)
            assert result.calibration == f"out of fold: fitted on the other folds of {SAMPLE}"


def test_results_say_which_detector_found_each_face_and_older_rows_are_recomputed(fresh_sample):
    """Migration 0005 leaves rows from before without their faces' detectors: precompute recomputes them (from the
    embedding cache, which then records the detectors too)."""
    factory = fresh_sample
    engine = factory.kw["bind"]
    with factory() as session:
        faces = {(r.face1, r.face2) for r in session.scalars(select(Result))}
        assert faces <= {("hog", "hog"), ("hog", "cnn"), ("cnn", "hog")} and ("hog", "hog") in faces
        counts = [session.scalar(select(func.count(t.id))) for t in (Result, XMapRecord, CalibrationRecord)]
    downgrade(engine, "0004_method4_coalitions")
    migrate(engine)  # through 0005 and back: nothing else is lost (no table is copied and dropped)
    with factory() as session:
        assert [session.scalar(select(func.count(t.id))) for t in (Result, XMapRecord, CalibrationRecord)] == counts
        assert {(r.face1, r.face2) for r in session.scalars(select(Result))} == {(None, None)}
    assert precompute(factory, SAMPLE, create_model("lbp"), xmaps=0).results_computed
    with factory() as session:
        assert {(r.face1, r.face2) for r in session.scalars(select(Result))} == faces
    assert not precompute(factory, SAMPLE, create_model("lbp"), xmaps=0).results_computed


def test_ingest_refuses_a_second_root_under_the_same_name(fresh_sample, tmp_path):
    factory = fresh_sample
    other = tmp_path / "other"
    other.mkdir()
    (other / "pairs.txt").write_text((sample_root() / "pairs.txt").read_text())
    with pytest.raises(ValueError, match="already in the database"):
        ingest_dataset(factory, "lfw", other, name=SAMPLE)


def test_an_interrupted_precompute_writes_nothing_and_a_rerun_finishes(fresh_sample, monkeypatch):
    factory = fresh_sample
    fit = precompute_module.Calibration.fit
    monkeypatch.setattr(precompute_module.Calibration, "fit", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("interrupted")))
    lbp4 = create_model("lbp", grid=4)  # a new configuration of lbp: its stale results are dropped, then recomputed
    with pytest.raises(RuntimeError, match="interrupted"):
        precompute(factory, SAMPLE, lbp4, xmaps=0)
    with factory() as session:
        assert session.scalar(select(func.count(Result.id))) == 0
        assert session.scalar(select(func.count(CalibrationRecord.id))) == 0
    monkeypatch.setattr(precompute_module.Calibration, "fit", fit)
    report = precompute(factory, SAMPLE, lbp4, xmaps=0)
    assert report.results_computed and report.pairs == 60
    with factory() as session:
        assert session.scalar(select(func.count(Result.id))) == 60


def test_an_interrupted_explanation_writes_no_maps(fresh_sample, monkeypatch):
    factory = fresh_sample
    with factory() as session:
        pair_id = session.scalar(select(Pair.id).where(~Pair.id.in_(select(XMapRecord.pair_id))).limit(1))

    def broken(*args, **kwargs):
        raise RuntimeError("interrupted")

    monkeypatch.setattr(explain_module, "encode_map", broken)
    with pytest.raises(RuntimeError, match="interrupted"):
        explain_pair(factory, pair_id, create_model("lbp"))
    with factory() as session:
        assert session.scalar(select(func.count(XMapRecord.id)).where(XMapRecord.pair_id == pair_id)) == 0


def test_xmap_selection_spreads_over_the_list():
    ids = list(range(100, 160))
    assert xmap_selection(ids, 0) == []
    assert xmap_selection(ids, None) == ids
    chosen = xmap_selection(ids, 4)
    assert chosen[0] == 100 and chosen[-1] == 159 and len(set(chosen)) == 4


def test_list_pairs_filters_sorts_and_pages(sample_factory):
    with sample_factory() as session:
        total, rows = list_pairs(session, PairQuery(dataset=SAMPLE, model="lbp", sort="-confidence", page_size=500))
        assert total == 60 and len(rows) == 60
        confidences = [row.results["lbp"].confidence for row in rows]
        assert confidences == sorted(confidences, reverse=True)
        total, rows = list_pairs(session, PairQuery(dataset=SAMPLE, model="lbp", label=1, correct=False, page_size=500))
        assert total == len(rows) and all(r.pair.label == 1 and not r.results["lbp"].correct for r in rows)
        total, page2 = list_pairs(session, PairQuery(dataset=SAMPLE, sort="identity1", page=2, page_size=7))
        _, everything = list_pairs(session, PairQuery(dataset=SAMPLE, sort="identity1", page_size=500))
        assert [r.pair.id for r in page2] == [r.pair.id for r in everything[7:14]]
        total, rows = list_pairs(session, PairQuery(dataset=SAMPLE, identity="abdullah_", page_size=500))
        assert total > 0 and all("Abdullah_" in r.image1.identity + r.image2.identity for r in rows)
        total, _ = list_pairs(session, PairQuery(dataset=SAMPLE, identity="%"))
        assert total == 0  # LIKE wildcards are matched literally
        with pytest.raises(NotFoundError):
            list_pairs(session, PairQuery(dataset="nope"))
    with pytest.raises(ValueError, match="Cannot sort by 'distance; drop'"):
        PairQuery(dataset=SAMPLE, sort="distance; drop")
