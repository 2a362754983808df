"""The district's operator API over HTTP: one module per route group (`cases`, `commands`,
`rules`, `queues`, `kpis`, `live`), their request and answer `models`, the `openapi` document
built from them, and the thin `http` layer (domain errors -> HTTP answers, JSON)."""

from __future__ import annotations

from aiohttp import web

from services.district.api import cases, commands, rules

#: the case record, the decisions on it and the routing rules (queues, KPIs, live events and
#: the OpenAPI document are added by the app from their modules)
routes: list[web.AbstractRouteDef] = [*cases.routes, *commands.routes, *rules.routes]
