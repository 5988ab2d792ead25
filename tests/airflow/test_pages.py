"""calltrail's pages in Airflow (Data Docs, dbt docs, the report page) are behind Airflow's login.

A real Airflow api-server in the configuration ``make airflow`` uses beyond loopback (simple auth
manager, no all-admins, user ``admin`` with a generated password), bound to 127.0.0.1 for the test.
Anonymous and forged requests are refused; a token from ``POST /auth/token`` or the UI's login
cookie gets the pages; a real Chromium is sent to the login page and, once logged in, sees the
Data Docs rendered with every non-local request blocked."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import duckdb
import jwt
import pandas as pd
import pytest

from calltrail import settings as settings_module
from calltrail.ops.airflow_cli import AIRFLOW, environment
from calltrail.ops.airflow_services import Endpoint, admin_password, service_environment
from calltrail.quality.validate import Frame, validate_frames
from calltrail.report import page as report_page
from calltrail.settings import QualitySettings
from tests.airflow_env import calltrail_env, run
from tests.airflow_live import api_server, free_port
from tests.offline_browser import assert_rendered_offline, chromium, open_offline

DBT_INDEX = "<html><body><h1>calltrail dbt docs</h1></body></html>"
REPORT_TITLE = "calltrail: calls, touchpoints and revenue"
COMPILED_SQL = "select 'compiled sql is not part of the docs'"
RUN = "login_check"


def write_docs(s: settings_module.Settings) -> None:
    """Data Docs of two real validations (GX, through calltrail's audit code) and a dbt docs folder
    with what ``dbt docs generate`` leaves beside the docs (compiled SQL)."""
    at = pd.Timestamp("2026-11-30 10:00:00")
    web = pd.DataFrame({"event_id": ["evt-1", "evt-2"], "bizible_id": ["a" * 32, "b" * 32],
                        "event_type": ["page_view", "form_submit"], "occurred_at": pd.to_datetime([at, at])})
    tasks = pd.DataFrame({"Id": ["00T000000000001AAA"], "SystemModstamp": pd.to_datetime([at]),
                          "CreatedDate": pd.to_datetime([at])})
    validate_frames([Frame("raw_web_events", "raw", "event_id", ""), Frame("raw_salesforce_task", "raw", "Id", "")],
                    {"raw_web_events": web, "raw_salesforce_task": tasks}, QualitySettings(), s.data_docs_dir,
                    run_name=RUN)
    s.dbt_docs_dir.mkdir(parents=True, exist_ok=True)
    (s.dbt_docs_dir / "index.html").write_text(DBT_INDEX)
    (s.dbt_docs_dir / "manifest.json").write_text(json.dumps({"nodes": {}}))
    (s.dbt_docs_dir / "catalog.json").write_text(json.dumps({"nodes": {}}))
    (s.dbt_docs_dir / "compiled").mkdir(exist_ok=True)
    (s.dbt_docs_dir / "compiled" / "fct_touchpoints.sql").write_text(COMPILED_SQL)
    # The report page as calltrail writes it, over a warehouse with nothing published yet.
    s.warehouse.parent.mkdir(parents=True, exist_ok=True)
    duckdb.connect(str(s.warehouse)).close()
    report_page.write(s)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("pages")
    port = free_port()
    s = settings_module.load(calltrail_env(tmp))
    # The environment `make airflow` gives an api-server listening beyond loopback (login enforced),
    # bound to 127.0.0.1 all the same: nothing of the test is reachable from the network.
    base = environment(s) | {"AIRFLOW__API__HOST": "127.0.0.1", "AIRFLOW__API__WORKERS": "1"}
    env = service_environment(s, base, Endpoint("0.0.0.0", port))
    assert env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS"] == "False"
    assert env["AIRFLOW__API__HOST"] == "127.0.0.1"
    write_docs(s)
    migrated = run([AIRFLOW, "db", "migrate"], env, timeout=600)
    assert migrated.returncode == 0, migrated.stdout[-3000:] + migrated.stderr[-3000:]
    url = f"http://127.0.0.1:{port}"
    with api_server(env, tmp / "api-server.log", url):
        yield {"url": url, "settings": s, "env": env}


def get(url: str, *, token: str | None = None, cookie: str | None = None, accept: str = "*/*"):
    """(status, headers, body) of a GET, without following redirects."""
    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    request = urllib.request.Request(url, headers={"Accept": accept})
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    if cookie:
        request.add_header("Cookie", f"_token={cookie}")
    try:
        with urllib.request.build_opener(NoRedirect).open(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read().decode("utf-8", "replace")


def login(url: str, password: str) -> str:
    request = urllib.request.Request(f"{url}/auth/token", method="POST",
                                     data=json.dumps({"username": "admin", "password": password}).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 201, response.status
        return json.loads(response.read())["access_token"]


def page_paths(s: settings_module.Settings) -> list[str]:
    [validation] = [p for p in (s.data_docs_dir / "validations").rglob("*.html") if "raw_web_events" in p.name]
    return ["/calltrail/data-docs/index.html", "/calltrail/data-docs/",
            "/calltrail/data-docs/" + validation.relative_to(s.data_docs_dir).as_posix(),
            "/calltrail/data-docs/static/vendor/jquery-3.7.1/dist/jquery.min.js",
            "/calltrail/dbt-docs/index.html", "/calltrail/dbt-docs/manifest.json", "/calltrail/dbt-docs/catalog.json",
            "/calltrail/report/index.html", "/calltrail/report/", "/calltrail/report/assets/report.js",
            "/calltrail/report/assets/vega-lite.min.js"]


def test_the_configuration_enforces_a_login_for_the_rest_api_itself(server):
    status, _, body = get(f"{server['url']}/api/v2/dags")
    assert status == 401, f"expected the REST API to refuse an anonymous request, got {status}: {body[:300]}"


def test_anonymous_requests_for_the_pages_are_refused(server):
    for path in page_paths(server["settings"]):
        status, headers, body = get(server["url"] + path)
        assert status == 401, f"{path}: expected 401 for an anonymous request, got {status}: {body[:300]}"
        assert headers.get("www-authenticate") == "Bearer", headers
        assert RUN not in body and "calltrail dbt docs" not in body and REPORT_TITLE not in body, body[:300]


def test_a_token_airflow_did_not_sign_is_refused(server):
    """A real token's claims (admin), signed with another key."""
    genuine = login(server["url"], admin_password(server["settings"]))
    claims = jwt.decode(genuine, options={"verify_signature": False})
    assert claims["sub"] == "admin", claims
    forged = jwt.encode(claims, "not-the-secret-of-this-airflow-" * 3, algorithm=jwt.get_unverified_header(genuine)["alg"])
    for path in page_paths(server["settings"])[:2]:
        assert get(server["url"] + path, token=forged)[0] == 401, path
        assert get(server["url"] + path, cookie=forged)[0] == 401, path
        assert get(server["url"] + path, token=genuine)[0] == 200, path


def test_a_browser_without_a_login_is_sent_to_the_login_page_and_back(server):
    for page in ("data-docs", "report"):
        status, headers, _ = get(f"{server['url']}/calltrail/{page}/index.html", accept="text/html,*/*;q=0.8")
        assert status == 307, (page, status)
        location = headers.get("location", "")
        assert location.startswith("/auth/login?next="), location
        assert f"calltrail%2F{page}%2Findex.html" in location, location


def test_a_logged_in_admin_gets_every_page_by_token_and_by_the_ui_cookie(server):
    token = login(server["url"], admin_password(server["settings"]))
    for path in page_paths(server["settings"]):
        for credentials in ({"token": token}, {"cookie": token}):
            status, headers, body = get(server["url"] + path, **credentials)
            assert status == 200, f"{path} with {list(credentials)}: expected 200, got {status}: {body[:300]}"
            assert headers.get("cache-control") == "private, no-cache", headers
    assert RUN in get(f"{server['url']}/calltrail/data-docs/index.html", token=token)[2]
    assert get(f"{server['url']}/calltrail/dbt-docs/index.html", token=token)[2] == DBT_INDEX
    assert REPORT_TITLE in get(f"{server['url']}/calltrail/report/index.html", token=token)[2]


def test_a_wrong_password_gets_no_token(server):
    request = urllib.request.Request(f"{server['url']}/auth/token", method="POST",
                                     data=json.dumps({"username": "admin", "password": "wrong"}).encode(),
                                     headers={"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=30)
    assert refused.value.code == 401


def test_only_the_dbt_docs_files_are_served_and_nothing_outside_the_folders(server):
    token = login(server["url"], admin_password(server["settings"]))
    for path in ("/calltrail/dbt-docs/compiled/fct_touchpoints.sql", "/calltrail/dbt-docs/graph.gpickle",
                 "/calltrail/data-docs/..%2F..%2Fairflow%2Fsimple_auth_manager_passwords.json",
                 "/calltrail/data-docs/%2E%2E/%2E%2E/airflow/simple_auth_manager_passwords.json"):
        status, _, body = get(server["url"] + path, token=token)
        assert status == 404, f"{path}: expected 404, got {status}: {body[:200]}"
        assert COMPILED_SQL not in body and "admin" not in body, body[:200]


def test_chromium_logs_in_through_the_login_page_and_sees_the_data_docs_offline(server):
    url = server["url"]
    with chromium() as browser:
        context = browser.new_context(viewport={"width": 1400, "height": 900})
        page = context.new_page()
        page.goto(f"{url}/calltrail/data-docs/index.html")
        page.wait_for_url("**/auth/login**", timeout=60_000)
        page.get_by_label("Username").fill("admin")
        page.get_by_label("Password").fill(admin_password(server["settings"]))
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url("**/calltrail/data-docs/index.html", timeout=60_000)
        assert "_token" in {c["name"] for c in context.cookies()}, context.cookies()
        # The logged-in session, now with every request to another host blocked and counted.
        seen = open_offline(browser, f"{url}/calltrail/data-docs/index.html", context=context)
    assert seen["url"] == f"{url}/calltrail/data-docs/index.html", seen["url"]
    assert_rendered_offline(seen, index=RUN)
