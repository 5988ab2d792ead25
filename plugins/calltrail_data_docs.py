"""Airflow UI plugin: calltrail's documentation pages, behind Airflow's login, under Browse.

- ``/calltrail/data-docs/``: the Great Expectations Data Docs of the latest audits
  (``CALLTRAIL_DATA_DOCS_DIR``), menu "calltrail Data Docs (Great Expectations)";
- ``/calltrail/dbt-docs/``: the dbt docs of the latest transformation run
  (``CALLTRAIL_DBT_DOCS_DIR``), menu "calltrail dbt docs";
- ``/calltrail/report/``: the report page of the latest publish (``CALLTRAIL_REPORT_DIR``),
  menu "calltrail report".

Airflow does not authenticate plugin apps: every route of these does (calltrail.airflow.pages).
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from calltrail.airflow.pages import (
    DATA_DOCS_PREFIX,
    DBT_DOCS_PREFIX,
    REPORT_PREFIX,
    data_docs_app,
    dbt_docs_app,
    report_app,
)


def _apps() -> list[dict]:
    from calltrail import settings

    s = settings.load()
    return [{"name": "calltrail Data Docs", "app": data_docs_app(s.data_docs_dir), "url_prefix": DATA_DOCS_PREFIX},
            {"name": "calltrail dbt docs", "app": dbt_docs_app(s.dbt_docs_dir), "url_prefix": DBT_DOCS_PREFIX},
            {"name": "calltrail report", "app": report_app(s.report_dir), "url_prefix": REPORT_PREFIX}]


class CalltrailDataDocsPlugin(AirflowPlugin):
    name = "calltrail_data_docs"
    fastapi_apps = _apps()
    external_views = [
        {"name": "calltrail Data Docs (Great Expectations)", "href": f"{DATA_DOCS_PREFIX}/index.html",
         "category": "Browse"},
        {"name": "calltrail dbt docs", "href": f"{DBT_DOCS_PREFIX}/index.html", "category": "Browse"},
        {"name": "calltrail report", "href": f"{REPORT_PREFIX}/index.html", "category": "Browse"},
    ]
