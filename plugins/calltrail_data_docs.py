"""Airflow UI plugin: the Great Expectations Data Docs of the latest checks, under Browse.

The folder ``CALLTRAIL_DATA_DOCS_DIR`` (static HTML written by every audit) is served at
``/calltrail/data-docs/`` by the api-server, behind the same authentication as the UI, and the
menu entry "calltrail Data Docs (Great Expectations)" opens its index.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

URL_PREFIX = "/calltrail/data-docs"


def _app():
    from fastapi import FastAPI
    from fastapi.staticfiles import StaticFiles

    from calltrail import settings

    folder = settings.load().data_docs_dir
    folder.mkdir(parents=True, exist_ok=True)  # empty until the first audit writes the Data Docs
    app = FastAPI(title="calltrail Data Docs")
    app.mount("/", StaticFiles(directory=folder, html=True), name="data-docs")
    return app


class CalltrailDataDocsPlugin(AirflowPlugin):
    name = "calltrail_data_docs"
    fastapi_apps = [{"name": "calltrail Data Docs", "app": _app(), "url_prefix": URL_PREFIX}]
    external_views = [{"name": "calltrail Data Docs (Great Expectations)", "href": f"{URL_PREFIX}/index.html",
                       "category": "Browse"}]
