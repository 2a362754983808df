"""Schemathesis against the district's served OpenAPI document: generated requests (valid and
not) never get a 5xx, and every response matches what the document says."""

from __future__ import annotations

import asyncio
import os

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import positive_data_acceptance

from services.common.config import Settings
from services.district.app import create_app as district_app
from tests.support import running

pytestmark = pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisDeprecationWarning")
#: the event stream never ends: it has its own test (test_api_roles.py)
SKIP = {"GET /api/v1/events"}
#: schema-valid bodies naming a category or unit the district does not have are refused (422)
SEMANTIC_422 = {"PUT /api/v1/routing-rules"}
EXAMPLES = 25
#: a schema-valid request may still be refused for what the schema cannot say: a cursor this API
#: did not issue, a KPI period that ends before it starts (400), an unknown case (404), a case
#: whose state refuses the decision (409)
CONFIG = schemathesis.Config.from_dict(
    {
        "checks": {
            "positive_data_acceptance": {
                "expected-statuses": ["2xx", "400", "401", "403", "404", "409"]
            }
        }
    }
)


def fuzz(url: str, token: str) -> list[str]:
    """Run every operation's generated cases; return the failures (empty: all good)."""
    schema = schemathesis.openapi.from_url(f"{url}/api/v1/openapi.json", config=CONFIG)
    headers = {"Authorization": f"Bearer {token}"}
    failures = []
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.label not in SKIP:
            failure = _fuzz_one(operation, url, headers)
            if failure:
                failures.append(f"{operation.label}: {failure}")
    return failures


def _fuzz_one(operation: schemathesis.APIOperation, url: str, headers: dict[str, str]) -> str:
    excluded = [positive_data_acceptance] if operation.label in SEMANTIC_422 else []

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
        derandomize=bool(os.environ.get("CI")),  # CI repeats the same examples
    )
    @given(case=operation.as_strategy())
    def check(case: schemathesis.Case) -> None:
        case.call_and_validate(base_url=url, headers=headers, excluded_checks=excluded)

    try:
        check()
    except (Exception, BaseExceptionGroup) as exc:  # try every operation, report them all
        return str(exc)
    return ""


async def test_the_district_api_holds_up_to_generated_requests(settings: Settings) -> None:
    async with running(district_app(settings)) as district:
        assert district.token
        failures = await asyncio.to_thread(fuzz, district.url, district.token)
        assert not failures, "\n\n".join(failures)
