"""Property-based fuzzing of the whole API from its own OpenAPI schema (schemathesis).

Every operation gets up to 25 generated requests, valid and invalid ones, sent with an admin token
through the real Django stack to PostgreSQL and Redis. Each answer must not be a 5xx, must use a
documented status code and content type, must match its documented schema, and a request the
schema forbids must be refused (4xx). Bounded so the whole run takes a minute or two.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from django.core import signals
from django.db import close_old_connections
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from inference_app.wsgi import application
from tests import test_api_fixtures as fixtures
from tests.test_api_fixtures import World
from tickets.services.api_tokens import token_create

pytestmark = [pytest.mark.slow, pytest.mark.django_db]
world = fixtures.world
fresh_cache = fixtures.fresh_cache

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
    negative_data_rejection,
]


# Loaded when the tests are collected (the schema needs no database). schemathesis's lazy
# from_fixture loader does not work with pytest 9.
schema = schemathesis.openapi.from_wsgi("/api/v1/schema/", application)


@pytest.fixture(autouse=True)
def _keep_the_test_connection() -> Iterator[None]:
    """Like Django's test client: keep this test's connection (and its transaction) across requests."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def fuzz_token(world: World, knowledge_dir: Any, eager_celery: None) -> str:
    """An admin token; searches run inline (eager Celery) on an empty knowledge base of their own."""
    return token_create(name="fuzzer", scopes=["read", "write", "admin"], rate_limit_per_minute=10**6)[1]


@schema.parametrize()
@hypothesis_settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_the_api_keeps_its_contract(case: Any, fuzz_token: str) -> None:
    case.call_and_validate(headers={"Authorization": f"Bearer {fuzz_token}"}, checks=CHECKS)
