"""Fixtures of the platform tests (imported by ``test_store*``, ``test_api*``, ``test_browser*``).

``platform_url``: a fresh database URL per test, on SQLite and, when ``XFV_TEST_PG_URL`` is set, on PostgreSQL
(each use gets a new schema there). ``sample_factory``: the bundled LFW sample ingested and
precomputed with ``lbp`` (X-Maps for 2 pairs), once per backend and session. ``faceless_root``: a copy of the
sample in which one photo shows no face (:data:`FACELESS_IMAGE`, in two pairs).
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import uuid
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import text
from sqlalchemy.engine import make_url

from xfv.cli.platform import sample_root
from xfv.jobs.ingest import ingest_dataset
from xfv.jobs.precompute import precompute
from xfv.models import create_model, list_models, register_model
from xfv.models.lbp import LBPModel
from xfv.store.db import create_db_engine, open_database

PG_URL = os.environ.get("XFV_TEST_PG_URL")
BACKENDS = ["sqlite"] + ([pytest.param("postgresql", marks=pytest.mark.postgres)] if PG_URL else [])
SAMPLE = "lfw-sample"
SECOND_MODEL = "lbp-grid4"
FACELESS = "sample-noface"  # the sample with FACELESS_IMAGE replaced by a photo without a face
FACELESS_IMAGE = "Abdoulaye_Wade/Abdoulaye_Wade_0003.jpg"  # image 2 of the pairs at places 19 and 20


def fresh_url(backend: str, tmp_path) -> str:
    """An empty database: a SQLite file, or a new PostgreSQL schema selected through ``search_path``."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'platform.db'}"
    schema = f"xfv_test_{uuid.uuid4().hex[:12]}"
    engine = create_db_engine(PG_URL)
    with engine.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine.dispose()
    return make_url(PG_URL).update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(hide_password=False)


@pytest.fixture(params=BACKENDS)
def platform_url(request, tmp_path) -> str:
    return fresh_url(request.param, tmp_path)


def lbp_variant(name: str, grid: int) -> LBPModel:
    """A cheap extra model registered as ``name``: LBP histograms on a ``grid`` x ``grid`` grid."""
    if name not in list_models():
        @register_model(name, f"LBP on a {grid} x {grid} grid (tests only)")
        def _create(**options) -> LBPModel:
            model = LBPModel(grid=grid, **options)
            model.config = dataclasses.replace(model.config, name=name)
            return model
    return create_model(name)


def second_model() -> LBPModel:
    """A second cheap model, to switch between models: LBP on a 4 x 4 grid."""
    return lbp_variant(SECOND_MODEL, 4)


def build_sample(url: str, *, second: bool = False):
    factory = open_database(url)
    ingest_dataset(factory, "lfw", sample_root(), name=SAMPLE, workers=1)
    precompute(factory, SAMPLE, create_model("lbp"), xmaps=2)
    if second:
        precompute(factory, SAMPLE, second_model(), xmaps=0)
    return factory


@pytest.fixture(scope="session", params=BACKENDS)
def sample_factory(request, tmp_path_factory, isolated_cache):
    """The sample ingested and precomputed (lbp, X-Maps for 2 pairs); shared by tests that only read."""
    url = fresh_url(request.param, tmp_path_factory.mktemp("sample-db"))
    return build_sample(url)


def sample_copy(tmp_path_factory, destination: Path):
    """A copy of the precomputed sample as a SQLite file at ``destination`` (the template is built once)."""
    template = tmp_path_factory.getbasetemp() / "sample-template.db"
    if not template.exists():
        build_sample(f"sqlite:///{template}").kw["bind"].dispose()
    shutil.copyfile(template, destination)
    return open_database(f"sqlite:///{destination}")


@pytest.fixture(params=BACKENDS)
def fresh_sample(request, tmp_path, tmp_path_factory, isolated_cache):
    """A private copy of the precomputed sample, for tests that write."""
    if request.param != "sqlite":
        return build_sample(fresh_url(request.param, tmp_path))
    return sample_copy(tmp_path_factory, tmp_path / "sample.db")


def faceless_photo() -> Image.Image:
    """A 250 x 250 photo without a face: a smooth grey-blue gradient (no detector finds one)."""
    ramp = np.linspace(60, 200, 250, dtype=np.float32)
    pixels = np.stack([ramp[None, :].repeat(250, 0), ramp[:, None].repeat(250, 1), np.full((250, 250), 150.0)], -1)
    return Image.fromarray(pixels.astype(np.uint8))


@pytest.fixture(scope="session")
def faceless_root(tmp_path_factory) -> Path:
    """The sample's folder with :data:`FACELESS_IMAGE` replaced by a photo in which no face can be found."""
    root = tmp_path_factory.mktemp("faceless") / "sample"
    shutil.copytree(sample_root(), root)
    faceless_photo().save(root / FACELESS_IMAGE, format="JPEG", quality=95)
    return root


def add_faceless(factory, root: Path, *models) -> None:
    """Ingest the faceless sample as :data:`FACELESS` and precompute ``models`` on it (results only)."""
    ingest_dataset(factory, "lfw", root, name=FACELESS, workers=1)
    for model in models:
        precompute(factory, FACELESS, model, xmaps=0)
