"""The OpenAPI documents the services serve: valid OpenAPI 3.1, every /api/v1/ route listed."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import web
from openapi_spec_validator import validate

from services.common.config import Settings
from services.common.openapi import routes_of
from services.district.api import openapi as district_openapi
from services.district.app import create_app as district_app
from services.street import openapi as street_openapi
from services.street.app import create_app as street_app


def _documents() -> list[tuple[web.Application, dict[str, Any]]]:
    district, street = district_app(Settings()), street_app(Settings())
    return [
        (district, district_openapi.spec(district.router)),
        (street, street_openapi.spec(street.router)),
    ]


@pytest.mark.parametrize("index", [0, 1], ids=["district", "street"])
def test_document_is_valid_and_lists_every_route(index: int) -> None:
    app, doc = _documents()[index]
    validate(doc)
    listed = {(m.upper(), p) for p, ops in doc["paths"].items() for m in ops}
    assert routes_of(app.router) <= listed
    assert doc["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            if path == "/api/v1/openapi.json":
                assert op["security"] == []
                continue
            assert {"401", "500"} <= set(op["responses"]), (method, path)
            error = op["responses"]["401"]["content"]["application/json"]["schema"]
            assert error == {"$ref": "#/components/schemas/Error"}


def test_the_district_documents_its_routes_with_their_models() -> None:
    [(_, doc), _] = _documents()
    dispatch = doc["paths"]["/api/v1/cases/{case_no}/dispatch"]["post"]
    body = dispatch["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/DispatchTo"}
    assert set(doc["components"]["schemas"]["DispatchTo"]["required"]) == {"actor", "unit"}
    search = doc["paths"]["/api/v1/cases"]["get"]
    names = {p["name"] for p in search["parameters"]}
    assert {"unit", "street", "state", "category", "source", "overdue", "supervised"} <= names
    assert {"from", "to", "limit", "after"} <= names
    for op in ("/api/v1/queues", "/api/v1/cases", "/api/v1/events"):
        assert op in doc["paths"]
