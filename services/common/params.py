"""Validating a request's query and JSON body against pydantic models: 400 / 422 with JSON."""

from __future__ import annotations

import json
from typing import TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from services.common.auth import problem

M = TypeVar("M", bound=BaseModel)


def query(request: web.Request, model: type[M]) -> M:
    """The query string as `model` (each parameter given once), or 422 with the errors."""
    raw: dict[str, str] = {}
    for key, value in request.query.items():
        if key in raw:
            raise problem(422, "invalid_query", f"{key} is given more than once")
        raw[key] = value
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise problem(422, "invalid_query", exc.errors(include_url=False)) from None


async def body(request: web.Request, model: type[M]) -> M:
    """The JSON body as `model`: 400 when it is not JSON, 422 when it does not fit."""
    try:
        raw = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise problem(400, "not_json", "the body must be JSON") from None
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise problem(422, "invalid", exc.errors(include_url=False)) from None
