"""`GET /api/v1/hotspots`: hotspots newest first, scoped like the other routes — district
roles see all; a street operator its street's, a department operator those of the categories
routed to it."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from services.common import params
from services.common.auth import Principal, Role, principal
from services.district.hotspots.models import HotspotItem, HotspotList, HotspotQuery
from services.district.keys import DECISIONS, POOL, SETTINGS
from services.district.routing.reference import Reference

routes = web.RouteTableDef()

_LIST = (
    "SELECT hotspot_id, kind, state, category_code, street_code, lon, lat, radius_m, bbox,"
    " count, baseline, score, window_from, window_to, case_nos, opened_at, updated_at,"
    " closed_at FROM hotspots WHERE district_code = $1"
    " AND ($2::text IS NULL OR state = $2) AND ($3::text IS NULL OR kind = $3)"
    " AND ($4::text IS NULL OR category_code = $4) AND ($5::text IS NULL OR street_code = $5)"
    " AND ($6::timestamptz IS NULL OR opened_at >= $6)"
    " AND ($7::text[] IS NULL OR category_code = ANY($7))"
    " ORDER BY opened_at DESC, hotspot_id DESC LIMIT $8"
)


def _scope(who: Principal, ref: Reference) -> tuple[str | None, list[str] | None]:
    """(street, categories) a unit token is limited to; (None, None) for district roles."""
    if not who.unit_scoped:
        return None, None
    if who.role is Role.STREET_OPERATOR:
        return who.unit_code, None
    owned = [
        c.code for c in ref.categories.values() if ref.rule(c, "*", "*").owner == who.unit_code
    ]
    return None, owned


@routes.get("/api/v1/hotspots")
async def list_hotspots(request: web.Request) -> web.Response:
    who, q = principal(request), params.query(request, HotspotQuery)
    ref = request.app[DECISIONS].ctx.ref
    street, categories = _scope(who, ref)
    if street is not None and q.street not in (None, street):
        return _json(HotspotList(items=[]))  # another street's: nothing the token may see
    async with request.app[POOL].acquire() as conn:
        rows = await conn.fetch(
            _LIST,
            request.app[SETTINGS].district_code,
            None if q.state == "all" else q.state,
            q.kind.value if q.kind else None,
            q.category,
            street or q.street,
            q.since,
            categories,
            q.limit,
        )
    return _json(HotspotList(items=[_item(r, ref) for r in rows]))


def _item(r: Any, ref: Reference) -> HotspotItem:
    category = ref.categories.get(r["category_code"])
    centroid = None if r["lon"] is None else {"lon": r["lon"], "lat": r["lat"]}
    return HotspotItem.model_validate(
        {
            **dict(r),
            "centroid": centroid,
            "bbox": list(r["bbox"]) if r["bbox"] is not None else None,
            "case_nos": list(r["case_nos"]),
            "category_name": category.name if category else r["category_code"],
            "street_name": ref.unit_name(r["street_code"]) if r["street_code"] else None,
        }
    )


def _json(body: HotspotList) -> web.Response:
    return web.json_response(
        body.model_dump(mode="json"), dumps=lambda o: json.dumps(o, ensure_ascii=False)
    )
