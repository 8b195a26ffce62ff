"""Schemathesis over the registrar's OpenAPI schema, against the running stack:
whatever a client sends that the schema allows (and much it does not), the
answer is never a server error."""

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from registrar.main import create_app
from tests.e2e.helpers import bearer

pytestmark = pytest.mark.engines

# The schema comes from the app object itself, the same document it serves at
# /openapi.json; the requests go to the real registrar process.
schema = schemathesis.openapi.from_dict(create_app().openapi())


@schema.parametrize()
@settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_request_gets_a_server_error(case, stack):
    case.call_and_validate(base_url=stack.url("registrar"), checks=[not_a_server_error], timeout=30,
                           headers=bearer("fuzz", "admin"))
