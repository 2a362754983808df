"""The district API's thin HTTP layer: one mapping from domain errors to HTTP answers and one
JSON answer; request bodies and queries are read by `services.common.params` (400 / 422)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from aiohttp import web

from services.common.auth import problem
from services.district.cases.lifecycle import IllegalTransition
from services.district.cases.store import NotFound
from services.district.decisions.context import Forbidden, Refused, Withheld

#: a domain error -> the HTTP status and the `error` of the JSON body (`detail`: its message)
ANSWERS: tuple[tuple[type[Exception], int, str], ...] = (
    (NotFound, 404, "not_found"),
    (Forbidden, 403, "not_holding"),
    (Withheld, 403, "withheld"),
    (Refused, 409, "refused"),
    (IllegalTransition, 409, "refused"),
)
_DOMAIN_ERRORS = tuple(kind for kind, _, _ in ANSWERS)


@contextmanager
def answering() -> Iterator[None]:
    """Run a decision; a domain error leaves as its HTTP answer (JSON {error, detail})."""
    try:
        yield
    except _DOMAIN_ERRORS as exc:
        status, reason = next((s, r) for kind, s, r in ANSWERS if isinstance(exc, kind))
        raise problem(status, reason, str(exc)) from None


def dumps(obj: Any) -> str:
    """JSON as the API writes it: UTF-8 text as is, instants in ISO 8601."""
    return json.dumps(obj, ensure_ascii=False, default=lambda o: o.isoformat())


def answer(body: Any, **headers: str) -> web.Response:
    """A 200 with `body` as JSON."""
    return web.json_response(body, dumps=dumps, headers=headers or None)
