"""Each service's OpenAPI declares the bearer JWT its routes take, so /docs
can send one; health stays outside the API."""

import pytest

from auditor.main import create_app as auditor_app
from projector.main import create_app as projector_app
from registrar.main import create_app as registrar_app


@pytest.mark.parametrize("create_app, protected", [
    (registrar_app, ("/v1/models/{name}/versions/{version}/transitions", "post")),
    (projector_app, ("/v1/models/{name}", "get")),
    (auditor_app, ("/v1/audit/models/{name}/timeline", "get")),
])
def test_the_openapi_declares_a_bearer_jwt_and_every_route_takes_it(create_app, protected):
    spec = create_app().openapi()  # the app is only built: no engine is reached
    schemes = spec["components"]["securitySchemes"]
    [(name, scheme)] = schemes.items()
    assert (scheme["type"], scheme["scheme"], scheme["bearerFormat"]) == ("http", "bearer", "JWT")
    path, method = protected
    assert {name: []} in spec["paths"][path][method]["security"]
    assert all({name: []} in operation.get("security", [])
               for operations in spec["paths"].values() for operation in operations.values())
    assert "/healthz" not in spec["paths"] and "/readyz" not in spec["paths"]
