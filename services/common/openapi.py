"""OpenAPI 3 documents built from the pydantic models the handlers validate and answer with."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

REF = "#/components/schemas/{model}"


class Error(BaseModel):
    """Every 4xx and 5xx answer."""

    error: str = Field(description="machine-readable reason, e.g. `forbidden`, `invalid`")
    detail: Any = Field(default=None, description="what was wrong, for a human")
    id: str | None = Field(default=None, description="5xx only: the id the server logged")


class Object(BaseModel):
    """A JSON object (the fields are documented by the endpoint)."""

    model_config = ConfigDict(extra="allow")


_ERRORS = {
    400: "the body is not JSON, or a query parameter is malformed",
    401: "no bearer token, or an unknown, revoked or expired one (`token_expired`)",
    403: "the token's role may not take this action",
    404: "not found (or held by another unit)",
    409: "the case's state refuses this action",
    413: "the request body is larger than 1 MiB",
    422: "the body or the query does not match its schema",
    429: "too many requests with this token (`rate_limited`): retry after `Retry-After` seconds",
    500: "unexpected server error (logged with the returned id)",
}


@dataclass(frozen=True)
class Op:
    method: str
    path: str
    summary: str
    ok: type[BaseModel] | None = None
    ok_status: int = 200
    query: type[BaseModel] | None = None
    body: type[BaseModel] | None = None
    errors: tuple[int, ...] = (401, 403)
    public: bool = False
    stream: str | None = None  # a media type the 200 streams instead of JSON
    headers: dict[str, str] = field(default_factory=dict)  # optional request headers


def routes_of(router: web.UrlDispatcher) -> set[tuple[str, str]]:
    """(method, path) of every /api/v1/ route (HEAD, which aiohttp adds to GET, left out)."""
    found = set()
    for route in router.routes():
        resource = route.resource
        if resource is None or route.method in ("HEAD", "*"):
            continue
        if resource.canonical.startswith("/api/v1/"):
            found.add((route.method, resource.canonical))
    return found


def with_undocumented(ops: list[Op], router: web.UrlDispatcher) -> list[Op]:
    """`ops` plus a generic entry for any route they do not describe yet (so the document
    always lists every route; a test keeps this list empty)."""
    known = {(op.method, op.path) for op in ops}
    extra = [
        Op(
            method,
            path,
            "(not yet described)",
            Object,
            body=Object if method in ("POST", "PUT", "PATCH") else None,
            errors=(400, 401, 403, 404, 409, 422),
        )
        for method, path in sorted(routes_of(router) - known)
    ]
    return ops + extra


def document(title: str, description: str, ops: list[Op]) -> dict[str, Any]:
    components: dict[str, Any] = {}
    paths: dict[str, dict[str, Any]] = {}
    for op in ops:
        paths.setdefault(op.path, {})[op.method.lower()] = _operation(op, components)
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": "1", "description": description},
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "schemas": dict(sorted(components.items())),
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearerAuth": []}],
    }


def _schema(model: type[BaseModel], components: dict[str, Any]) -> dict[str, Any]:
    schema = model.model_json_schema(ref_template=REF)
    components.update(schema.pop("$defs", {}))
    components[model.__name__] = schema
    return {"$ref": REF.format(model=model.__name__)}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _operation(op: Op, components: dict[str, Any]) -> dict[str, Any]:
    params: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in re.findall(r"{(\w+)}", op.path)
    ]
    if op.query is not None:
        params.extend(_query_params(op.query, components))
    params.extend(
        {
            "name": name,
            "in": "header",
            "required": False,
            "schema": {"type": "string"},
            "description": text,
        }
        for name, text in op.headers.items()
    )
    if op.stream:
        ok = {"description": "a stream", "content": {op.stream: {"schema": {"type": "string"}}}}
    elif op.ok is not None:
        ok = _json(_schema(op.ok, components), "done")
    else:
        ok = {"description": "done"}
    error_ref = _schema(Error, components)
    statuses = set(op.errors) | {400, 500}  # 400: e.g. text PostgreSQL cannot store (NUL)
    if op.body is not None:
        statuses |= {400, 413, 422}
    if op.query is not None:
        statuses |= {400, 422}
    if op.public:
        statuses -= {401, 403}
    elif 401 in statuses:
        statuses.add(429)  # every authenticated route: the per-token rate limit
    responses: dict[str, Any] = {str(op.ok_status): ok}
    for status in sorted(statuses):
        responses[str(status)] = _json(error_ref, _ERRORS[status])
    out: dict[str, Any] = {
        "summary": op.summary,
        "operationId": _operation_id(op),
        "parameters": params,
        "responses": responses,
    }
    if op.body is not None:
        out["requestBody"] = {"required": True, **_json(_schema(op.body, components), "")}
        del out["requestBody"]["description"]
    if op.public:
        out["security"] = []
    return out


def _query_params(model: type[BaseModel], components: dict[str, Any]) -> list[dict[str, Any]]:
    schema = model.model_json_schema(ref_template=REF)
    components.update(schema.pop("$defs", {}))
    required = set(schema.get("required", []))
    return [
        {
            "name": name,
            "in": "query",
            "required": name in required,
            "schema": {k: v for k, v in prop.items() if k not in ("title", "description")},
            **({"description": prop["description"]} if "description" in prop else {}),
        }
        for name, prop in schema.get("properties", {}).items()
    ]


def _operation_id(op: Op) -> str:
    words = re.sub(r"[{}]", "", op.path.removeprefix("/api/v1/")).replace("-", "_").split("/")
    return "_".join([op.method.lower(), *words])
