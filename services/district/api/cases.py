"""`GET /api/v1/cases/{case_no}`: one case with its tasks and full timeline (the phone masked);
unit roles see only the cases their unit holds or held."""

from __future__ import annotations

from aiohttp import web

from services.common.auth import principal, problem
from services.district.api.http import answer
from services.district.cases import queries
from services.district.keys import POOL, SETTINGS
from services.district.queues import queries as queue_queries

routes = web.RouteTableDef()


@routes.get("/api/v1/cases/{case_no}")
async def get_case(request: web.Request) -> web.Response:
    who, case_no = principal(request), request.match_info["case_no"]
    if who.unit_scoped:
        district = request.app[SETTINGS].district_code
        async with request.app[POOL].acquire() as conn:
            held = await queue_queries.unit_held(conn, district, case_no, str(who.unit_code))
        if not held:  # another unit's case: as if it did not exist
            raise problem(404, "not_found", f"no case {case_no}")
    return await case_response(request, case_no)


async def case_response(request: web.Request, case_no: str) -> web.Response:
    """The case as it is now (what every command answers with)."""
    async with request.app[POOL].acquire() as conn:
        detail = await queries.case_detail(conn, case_no)
    if detail is None:
        raise problem(404, "not_found", f"no case {case_no}")
    return answer(detail)
