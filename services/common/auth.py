"""Bearer tokens and roles for the operator API (`/api/v1/`), and JSON errors for every route.

A token is `cityops_<id>_<secret>`; only the SHA-256 of the whole token is stored
(`api_tokens`, deploy/migrations/020_api_tokens.sql). Resolved tokens are cached briefly, so a
revocation takes effect within `CACHE_SECONDS`."""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import asyncpg
from aiohttp import web
from aiohttp.typedefs import Handler

from services.common import faults

log = logging.getLogger(__name__)

CACHE_SECONDS = 10.0
#: open without a token: the OpenAPI document (everything outside /api/v1/ is open too)
PUBLIC_PATHS = frozenset({"/api/v1/openapi.json"})


class Role(StrEnum):
    DISTRICT_OPERATOR = "district_operator"
    DISTRICT_SUPERVISOR = "district_supervisor"
    STREET_OPERATOR = "street_operator"
    DEPARTMENT_OPERATOR = "department_operator"
    AUDITOR = "auditor"


#: roles bound to one unit: they see and act on that unit's tasks and cases only
UNIT_ROLES = frozenset({Role.STREET_OPERATOR, Role.DEPARTMENT_OPERATOR})
DISTRICT_ROLES = frozenset({Role.DISTRICT_OPERATOR, Role.DISTRICT_SUPERVISOR, Role.AUDITOR})


@dataclass(frozen=True)
class Principal:
    token_id: str
    role: Role
    unit_code: str | None
    district_code: str
    name: str

    @property
    def unit_scoped(self) -> bool:
        return self.role in UNIT_ROLES


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


class TokenStore:
    """Mints, resolves (with a short cache) and revokes tokens in `api_tokens`."""

    def __init__(
        self,
        pool: asyncpg.Pool | asyncpg.Connection,
        district_code: str,
        ttl: float = CACHE_SECONDS,
    ) -> None:
        self.pool, self.district_code, self.ttl = pool, district_code, ttl
        self._cache: dict[bytes, tuple[float, Principal | None]] = {}

    async def mint(self, role: Role, unit_code: str | None = None, name: str = "") -> str:
        if (role in UNIT_ROLES) != (unit_code is not None):
            raise ValueError(f"role {role} {'needs' if role in UNIT_ROLES else 'takes no'} unit")
        token_id = uuid.uuid4().hex[:12]
        token = f"cityops_{token_id}_{secrets.token_urlsafe(32)}"
        await self.pool.execute(
            "INSERT INTO api_tokens (id, token_sha256, role, unit_code, district_code, name)"
            " VALUES ($1, $2, $3, $4, $5, $6)",
            token_id,
            _digest(token),
            role.value,
            unit_code,
            self.district_code,
            name,
        )
        return token

    async def revoke(self, token_id: str) -> bool:
        done = await self.pool.execute(
            "UPDATE api_tokens SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL",
            token_id,
        )
        self._cache.clear()
        return bool(done.endswith(" 1"))

    async def resolve(self, token: str) -> Principal | None:
        key, now = _digest(token), time.monotonic()
        hit = self._cache.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]
        row = await self.pool.fetchrow(
            "SELECT id, role, unit_code, district_code, name FROM api_tokens"
            " WHERE token_sha256 = $1 AND district_code = $2 AND revoked_at IS NULL",
            key,
            self.district_code,
        )
        found = (
            None
            if row is None
            else Principal(
                row["id"], Role(row["role"]), row["unit_code"], row["district_code"], row["name"]
            )
        )
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[key] = (now + self.ttl, found)
        return found


TOKENS = web.AppKey("tokens", TokenStore)
_PRINCIPAL = web.RequestKey("principal", Principal)


def problem(status: int, reason: str, detail: Any, **headers: str) -> web.HTTPException:
    """An HTTP error with the JSON body every 4xx/5xx carries: {"error", "detail"}."""
    text = json.dumps({"error": reason, "detail": detail}, ensure_ascii=False, default=str)
    return _ERROR_CLASSES[status](
        text=text, content_type="application/json", headers=headers or None
    )


_ERROR_CLASSES: dict[int, type[web.HTTPException]] = {
    400: web.HTTPBadRequest,
    401: web.HTTPUnauthorized,
    403: web.HTTPForbidden,
    404: web.HTTPNotFound,
    409: web.HTTPConflict,
    422: web.HTTPUnprocessableEntity,
}


def principal(request: web.Request) -> Principal:
    """The caller (the middleware has authenticated every /api/v1/ request)."""
    who: Principal = request[_PRINCIPAL]
    return who


def require(request: web.Request, *roles: Role) -> Principal:
    """The caller, or 403 when their role may not take this action."""
    who = principal(request)
    if who.role not in roles:
        raise problem(
            403, "forbidden", f"role {who.role} may not do this ({', '.join(sorted(roles))} may)"
        )
    return who


@web.middleware
async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
    if not request.path.startswith("/api/v1/") or request.path in PUBLIC_PATHS:
        return await handler(request)
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    challenge = {"WWW-Authenticate": 'Bearer realm="cityops"'}
    if scheme.lower() != "bearer" or not token.strip():
        raise problem(401, "unauthenticated", "a bearer token is required", **challenge)
    who = await request.app[TOKENS].resolve(token.strip())
    if who is None:
        raise problem(401, "unauthenticated", "unknown or revoked token", **challenge)
    request[_PRINCIPAL] = who
    return await handler(request)


_REASONS = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
    415: "unsupported_media_type",
    503: "unavailable",
}


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every error answers JSON {error, detail}; an unexpected exception becomes a 500 with an
    id the server logs with the stack trace (the client never sees it)."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400 or exc.content_type == "application/json":
            raise
        reason = _REASONS.get(exc.status, "error")
        detail = exc.reason if exc.status != 413 else "the request body is larger than 1 MiB"
        return web.json_response(
            {"error": reason, "detail": detail}, status=exc.status, headers=_kept_headers(exc)
        )
    except (asyncpg.CharacterNotInRepertoireError, asyncpg.UntranslatableCharacterError):
        detail = "the request holds text the database cannot store (e.g. a NUL character)"
        return web.json_response({"error": "bad_text", "detail": detail}, status=400)
    except Exception as exc:
        if faults.transient(exc):  # the database or broker is away: the client may retry
            kind = faults.kind(exc)
            log.warning("request failed on a dependency", extra={"kind": kind})
            detail = f"a dependency is unavailable ({kind}); retry"
            body = {"error": "unavailable", "detail": detail}
            return web.json_response(body, status=503, headers={"Retry-After": "1"})
        error_id = uuid.uuid4().hex
        log.exception(
            "unhandled error in a request",
            extra={"error_id": error_id, "method": request.method, "path": request.path},
        )
        body = {"error": "internal", "detail": "unexpected server error", "id": error_id}
        return web.json_response(body, status=500)


def _kept_headers(exc: web.HTTPException) -> dict[str, str]:
    return {k: v for k, v in exc.headers.items() if k in ("Allow", "WWW-Authenticate")}


def install(app: web.Application, pool: web.AppKey[asyncpg.Pool], district_code: str) -> None:
    """JSON errors and token authentication on the app; its tokens are read through the pool
    its earlier cleanup context opens."""
    app.middlewares.extend([json_errors, authenticate])

    async def tokens(app: web.Application) -> AsyncIterator[None]:
        app[TOKENS] = TokenStore(app[pool], district_code)
        yield

    app.cleanup_ctx.append(tokens)
