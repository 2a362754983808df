"""Bearer tokens and roles for the operator API (`/api/v1/`), and JSON errors for every route.

A token is `cityops_<id>_<secret>`; only the SHA-256 of the whole token is stored
(`api_tokens`, deploy/migrations/020_api_tokens.sql). Resolved tokens are cached briefly, so a
revocation takes effect within `CACHE_SECONDS`. A token may expire (`expires_at`: 401
`token_expired` from then on); its last use is written at most once a minute
(`last_used_at`); and each process lets one token make `rate` requests a second with bursts
of `burst` (a token bucket in memory; beyond it 429 `rate_limited` with `Retry-After`)."""

from __future__ import annotations

import hashlib
import json
import logging
import math
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

import asyncpg
from aiohttp import web
from aiohttp.typedefs import Handler

from services.common import faults

log = logging.getLogger(__name__)

CACHE_SECONDS = 10.0
#: a token's `last_used_at` is written at most this often
TOUCH_SECONDS = 60.0
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
    expires_at: datetime | None = None

    def expired(self, now: datetime) -> bool:
        return self.expires_at is not None and self.expires_at <= now

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
        self._touched: dict[str, float] = {}

    async def mint(
        self,
        role: Role,
        unit_code: str | None = None,
        name: str = "",
        expires_in: timedelta | None = None,
    ) -> str:
        """A new token (None `expires_in`: it never expires)."""
        if (role in UNIT_ROLES) != (unit_code is not None):
            raise ValueError(f"role {role} {'needs' if role in UNIT_ROLES else 'takes no'} unit")
        token_id = uuid.uuid4().hex[:12]
        token = f"cityops_{token_id}_{secrets.token_urlsafe(32)}"
        await self.pool.execute(
            "INSERT INTO api_tokens"
            " (id, token_sha256, role, unit_code, district_code, name, expires_at)"
            " VALUES ($1, $2, $3, $4, $5, $6, now() + $7::interval)",
            token_id,
            _digest(token),
            role.value,
            unit_code,
            self.district_code,
            name,
            expires_in,
        )
        return token

    async def touch(self, token_id: str) -> None:
        """Record the token's use: at most once every TOUCH_SECONDS from this process, and
        only when the stored time is older than that (other processes write it too)."""
        now = time.monotonic()
        if now - self._touched.get(token_id, -math.inf) < TOUCH_SECONDS:
            return
        if len(self._touched) > 10_000:
            self._touched.clear()
        self._touched[token_id] = now
        try:
            await self.pool.execute(
                "UPDATE api_tokens SET last_used_at = now() WHERE id = $1"
                " AND (last_used_at IS NULL OR last_used_at < now() - make_interval(secs => $2))",
                token_id,
                TOUCH_SECONDS,
            )
        except Exception as exc:
            del self._touched[token_id]  # written with a later request
            if not faults.transient(exc):
                raise
            log.warning("token use not recorded", extra={"kind": faults.kind(exc)})

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
            "SELECT id, role, unit_code, district_code, name, expires_at FROM api_tokens"
            " WHERE token_sha256 = $1 AND district_code = $2 AND revoked_at IS NULL",
            key,
            self.district_code,
        )
        found = (
            None
            if row is None
            else Principal(
                row["id"],
                Role(row["role"]),
                row["unit_code"],
                row["district_code"],
                row["name"],
                row["expires_at"],
            )
        )
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[key] = (now + self.ttl, found)
        return found


class RateLimiter:
    """A token bucket per API token, in this process's memory: `rate` requests a second,
    `burst` at once (a rate of 0: unlimited)."""

    def __init__(
        self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate, self.burst, self.clock = rate, max(burst, 1), clock
        self._buckets: dict[str, tuple[float, float]] = {}  # token id: (level, when)

    def take(self, key: str) -> float:
        """0 when the request may go; else the seconds until it may."""
        if self.rate <= 0:
            return 0.0
        now = self.clock()
        level, when = self._buckets.get(key, (float(self.burst), now))
        level = min(float(self.burst), level + (now - when) * self.rate)
        if level < 1.0:
            self._buckets[key] = (level, now)
            return (1.0 - level) / self.rate
        if len(self._buckets) > 100_000:
            self._buckets.clear()
        self._buckets[key] = (level - 1.0, now)
        return 0.0


TOKENS = web.AppKey("tokens", TokenStore)
LIMITER = web.AppKey("token_rate_limiter", RateLimiter)
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
    429: web.HTTPTooManyRequests,
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
    store = request.app[TOKENS]
    who = await store.resolve(token.strip())
    if who is None:
        raise problem(401, "unauthenticated", "unknown or revoked token", **challenge)
    if who.expired(datetime.now(UTC)):
        assert who.expires_at is not None
        expired = {"WWW-Authenticate": 'Bearer realm="cityops", error="invalid_token"'}
        detail = f"the token expired at {who.expires_at.isoformat(timespec='seconds')}"
        raise problem(401, "token_expired", detail, **expired)
    wait = request.app[LIMITER].take(who.token_id)
    if wait > 0:
        retry = str(max(1, math.ceil(wait)))
        detail = f"too many requests with this token; retry in {retry} s"
        raise problem(429, "rate_limited", detail, **{"Retry-After": retry})
    await store.touch(who.token_id)
    request[_PRINCIPAL] = who
    return await handler(request)


_REASONS = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    429: "rate_limited",
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
    return {
        k: v for k, v in exc.headers.items() if k in ("Allow", "WWW-Authenticate", "Retry-After")
    }


def install(
    app: web.Application,
    pool: web.AppKey[asyncpg.Pool],
    district_code: str,
    rate: float = 0.0,
    burst: int = 1,
) -> None:
    """JSON errors and token authentication on the app; its tokens are read through the pool
    its earlier cleanup context opens; each token makes `rate` requests a second (0: no
    limit), `burst` at once."""
    app.middlewares.extend([json_errors, authenticate])
    app[LIMITER] = RateLimiter(rate, burst)

    async def tokens(app: web.Application) -> AsyncIterator[None]:
        app[TOKENS] = TokenStore(app[pool], district_code)
        yield

    app.cleanup_ctx.append(tokens)
