"""The web page (``/`` and ``/static``) and ``/docs`` served from local assets."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse, HTMLResponse, Response
from fastapi.staticfiles import StaticFiles

STATIC = Path(__file__).parent / "static"
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'")


def mount_page(app: FastAPI) -> None:
    """``/``: the page (strict CSP: every script and style from this origin), ``/static``: its files."""

    @app.get("/", include_in_schema=False)
    def index() -> Response:
        return FileResponse(STATIC / "index.html", headers={"Content-Security-Policy": CSP,
                                                            "X-Content-Type-Options": "nosniff",
                                                            "Cache-Control": "no-cache"})

    app.mount("/static", StaticFiles(directory=STATIC), name="static")


def mount_docs(app: FastAPI) -> None:
    """``/docs`` (Swagger UI 5) served from the assets the fastapi-offline package ships, so the page
    works without internet; FastAPI's default loads them from a CDN (our fallback when the package
    is missing). Only the package's static files are used, not its FastAPI subclass."""
    from fastapi.openapi.docs import get_swagger_ui_html

    try:
        import fastapi_offline
    except ImportError:
        js, css, icon = ("https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui-bundle.js",
                         "https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui.css",
                         "https://fastapi.tiangolo.com/img/favicon.png")
    else:
        app.mount("/docs-assets", StaticFiles(directory=Path(fastapi_offline.__file__).parent / "static"),
                  name="docs-assets")
        js, css, icon = "/docs-assets/swagger-ui-bundle.js", "/docs-assets/swagger-ui.css", "/docs-assets/favicon.png"

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url=app.openapi_url or "/openapi.json", title="genrec API", swagger_js_url=js,
                                   swagger_css_url=css, swagger_favicon_url=icon)
