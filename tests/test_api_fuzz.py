"""Property-based fuzzing of the whole OpenAPI schema with schemathesis, through the ASGI app (no server).

Every operation gets ``FUZZ_EXAMPLES`` generated requests that fit the schema and as many that do not; each
response must be below 500 and conform to the schema (status code declared, content type, body). The test
prints the number of requests it sent. It loops over the operations itself (``schema.parametrize`` with a
fixture does not run under pytest 9).
"""

from __future__ import annotations

from collections import Counter

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance

from xfv.web.core.config import Settings
from xfv.web.main import create_app

FUZZ_EXAMPLES = 25


@pytest.fixture()
def api_schema(sample_factory, tmp_path):
    app = create_app(Settings(db_url=f"sqlite:///{tmp_path / 'unused.db'}", upload_model="lbp"),
                     factory=sample_factory)
    return schemathesis.openapi.from_asgi("/openapi.json", app)


def fuzz(operation, mode: GenerationMode, statuses: Counter[int]) -> None:
    """``FUZZ_EXAMPLES`` requests of one mode to one operation, each checked by schemathesis."""
    # any bytes fit the schema of an uploaded photo, but only a photo with a face is accepted (422 otherwise)
    excluded = [positive_data_acceptance] if operation.path in ("/api/verify", "/api/explain") else []

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=FUZZ_EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    def run(case) -> None:
        response = case.call_and_validate(excluded_checks=excluded)
        statuses[response.status_code] += 1
        assert response.status_code < 500, (case.method, case.formatted_path, response.text)

    try:
        run()
    except Unsatisfiable:  # an operation without parameters has no invalid request
        assert mode == GenerationMode.NEGATIVE


def test_every_route_answers_below_500_and_as_declared(api_schema, capsys):
    statuses: Counter[int] = Counter()
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 14
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            fuzz(operation, mode, statuses)
    with capsys.disabled():
        print(f"\nschemathesis: {statuses.total()} requests over {len(operations)} operations, "
              f"statuses {dict(sorted(statuses.items()))}")
    assert not any(status >= 500 for status in statuses)
