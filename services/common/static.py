"""The built console (services/console/, `npm run build`) served at `/` of a service.

The district serves the one-screen console (`district.html`), the street service its desk
(`street.html`); both share `assets/`, whose names carry a content hash (cached for a year).
Without a build (no Node.js where it ran) `/` answers 503 with a page saying how to build it.
Pages carry a Content-Security-Policy that allows this origin only: nothing from a CDN."""

from __future__ import annotations

import re
from pathlib import Path

from aiohttp import web

from services.common.config import ROOT

DIST = ROOT / "services" / "console" / "dist"
#: a built asset's name: no directories, no dot files
_ASSET = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9._-]*$")
_TYPES = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}
SECURITY = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data: blob:; connect-src 'self'; object-src 'none'; "
        "base-uri 'none'; frame-ancestors 'none'; form-action 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
_NOT_BUILT = """<!doctype html>
<html lang="zh-CN"><meta charset="utf-8"><title>CityOps 控制台未构建</title>
<body style="font-family:sans-serif;max-width:40em;margin:4em auto;line-height:1.6">
<h1>控制台尚未构建 (console not built)</h1>
<p>此服务的 API 正常运行，但网页控制台需要先用 Node.js 构建：</p>
<pre>cd services/console &amp;&amp; npm ci &amp;&amp; npm run build</pre>
<p>或安装 Node.js 20+ 后重新运行 <code>make run</code>。API：<a href="/api/v1/openapi.json">
/api/v1/openapi.json</a></p>
<p lang="en">The API is up; the web console needs a build with Node.js (npm). Install Node.js
20+ and run <code>make run</code> again.</p>
</body></html>
"""


def install(app: web.Application, page: str, dist: Path = DIST) -> None:
    """Serve `<dist>/<page>.html` at `/` and `<dist>/assets/*` at `/assets/`."""

    async def index(request: web.Request) -> web.StreamResponse:
        html = dist / f"{page}.html"
        if not html.is_file():
            return web.Response(
                text=_NOT_BUILT,
                status=503,
                content_type="text/html",
                headers={**SECURITY, "Retry-After": "3600", "Cache-Control": "no-store"},
            )
        return web.FileResponse(html, headers={**SECURITY, "Cache-Control": "no-cache"})

    async def asset(request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        path = dist / "assets" / name
        if not _ASSET.match(name) or not path.is_file():
            raise web.HTTPNotFound(reason="no such asset")
        headers = {**SECURITY, "Cache-Control": "public, max-age=31536000, immutable"}
        if path.suffix in _TYPES:
            headers["Content-Type"] = _TYPES[path.suffix]
        return web.FileResponse(path, headers=headers)

    app.router.add_get("/", index)
    app.router.add_get("/assets/{name}", asset)
