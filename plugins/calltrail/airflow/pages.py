"""The pages calltrail serves inside Airflow's api-server, behind Airflow's login.

Three static sites, each a FastAPI app that the plugin ``plugins/calltrail_data_docs.py`` mounts:

- the Great Expectations Data Docs of the latest audits (``CALLTRAIL_DATA_DOCS_DIR``);
- the dbt docs of the latest ``dbt docs generate`` (``CALLTRAIL_DBT_DOCS_DIR``): only its
  ``index.html``, ``manifest.json`` and ``catalog.json``, not the compiled SQL beside them;
- the report page of the latest publish (``CALLTRAIL_REPORT_DIR``).

Airflow does not authenticate the apps that plugins mount (a Starlette mount inherits none of the
core API's dependencies), and these pages show record ids. So every route depends on Airflow's own
:func:`airflow.api_fastapi.core_api.security.get_user` (the ``Authorization: Bearer`` token of the
REST API, or the ``_token`` cookie the UI's login sets) and asks the configured auth manager whether
that user may read the page (``is_authorized_custom_view``; with the simple auth manager, any role
from viewer up). A request without a valid token is refused with 401, or, from a browser asking for
a page, redirected to the login page, which brings it back.

With the simple auth manager's ``all_admins`` (``make airflow`` on a loopback address), Airflow
itself gives every request an admin token, for the UI and the REST API alike: the pages are then
as open as the rest of that Airflow, and no more.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, HTTPException, Request, status
from fastapi.responses import PlainTextResponse, RedirectResponse, Response
from fastapi.security import HTTPAuthorizationCredentials
from starlette.staticfiles import StaticFiles

DATA_DOCS_PREFIX = "/calltrail/data-docs"
DBT_DOCS_PREFIX = "/calltrail/dbt-docs"
REPORT_PREFIX = "/calltrail/report"
DBT_DOCS_FILES = ("index.html", "manifest.json", "catalog.json")
RESOURCE = "calltrail docs"  # the custom view an auth manager is asked about


class LoginRequired(Exception):
    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


async def _reader(request: Request) -> Any:
    """The logged-in user, if the auth manager lets them read calltrail's pages."""
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.core_api.security import bearer_scheme, get_user

    credentials: HTTPAuthorizationCredentials | None = await bearer_scheme(request)
    try:
        user = await get_user(request, None, credentials)
    except HTTPException as e:  # no token, an expired one, or one Airflow did not sign
        raise LoginRequired(str(e.detail)) from e
    if not get_auth_manager().is_authorized_custom_view(method="GET", resource_name=RESOURCE, user=user):
        raise HTTPException(status.HTTP_403_FORBIDDEN,
                            f"user {user.get_name()} may not read {RESOURCE}: ask an Airflow admin for access")
    return user


def _wants_page(request: Request) -> bool:
    return request.method in ("GET", "HEAD") and "text/html" in request.headers.get("accept", "")


async def _login_required(request: Request, exc: Exception) -> Response:
    if _wants_page(request):
        from airflow.api_fastapi.app import get_auth_manager

        return RedirectResponse(get_auth_manager().get_url_login(next_url=str(request.url)),
                                status_code=status.HTTP_307_TEMPORARY_REDIRECT)
    detail = exc.detail if isinstance(exc, LoginRequired) else str(exc)
    return PlainTextResponse(f"Not authenticated ({detail}): log in to Airflow, or send "
                             "'Authorization: Bearer <token>' from POST /auth/token",
                             status_code=status.HTTP_401_UNAUTHORIZED, headers={"WWW-Authenticate": "Bearer"})


def static_site(folder: Path, title: str, *, only: tuple[str, ...] | None = None, missing: str) -> FastAPI:
    """A FastAPI app serving ``folder`` (every file, or those named in ``only``) to logged-in readers.

    The folder may not exist yet (it is written by the first audit or docs run, possibly on
    another host); until then every page is a 404 that says so.
    """
    app = FastAPI(title=title, docs_url=None, redoc_url=None, openapi_url=None,
                  dependencies=[Depends(_reader)])
    app.add_exception_handler(LoginRequired, _login_required)
    files = StaticFiles(directory=folder, html=True, check_dir=False)

    @app.api_route("/{path:path}", methods=["GET", "HEAD"])
    async def page(path: str, request: Request) -> Response:
        if not folder.is_dir():
            return PlainTextResponse(missing, status_code=status.HTTP_404_NOT_FOUND)
        relative = os.path.normpath(os.path.join(*path.split("/"))) if path else "."
        if only is not None and (relative if relative != "." else "index.html") not in only:
            return PlainTextResponse(f"not part of the {title}", status_code=status.HTTP_404_NOT_FOUND)
        response = await files.get_response(relative, request.scope)
        response.headers["Cache-Control"] = "private, no-cache"  # behind a login: no shared caches
        return response

    return app


def data_docs_app(folder: Path) -> FastAPI:
    return static_site(folder, "calltrail Data Docs",
                       missing=f"No Data Docs yet: the first audit of calltrail_transform writes them to {folder}")


def dbt_docs_app(folder: Path) -> FastAPI:
    return static_site(folder, "calltrail dbt docs", only=DBT_DOCS_FILES,
                       missing=f"No dbt docs yet: the first run of calltrail_transform writes them to {folder}")


def report_app(folder: Path) -> FastAPI:
    return static_site(folder, "calltrail report",
                       missing=f"No report page yet: the first run of calltrail_transform that publishes writes it "
                               f"to {folder}")
