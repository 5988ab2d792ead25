"""The Great Expectations Data Docs render without the internet: a real headless Chromium opens
them with every request to another host blocked and counted, from ``file://`` (the path the run
summary and alerts print) and from a local HTTP server (as the Airflow plugin serves them)."""

from __future__ import annotations

import base64
import functools
import hashlib
import http.server
import re
import threading
from pathlib import Path

import pandas as pd
import pytest

from calltrail.quality import offline_assets
from calltrail.quality.outcome import OK
from calltrail.quality.validate import Frame, validate_frames
from calltrail.settings import QualitySettings
from tests.offline_browser import assert_rendered_offline, chromium, open_offline

BAD_EVENT = "evt-without-bizible-id"
RUN = "offline_check"


@pytest.fixture(scope="module")
def data_docs(tmp_path_factory) -> Path:
    """The Data Docs of two validations, written by calltrail's own audit code (real GX): the web
    events (one row lacks its BizibleId, so that check fails and names the row) and the Tasks."""
    folder = tmp_path_factory.mktemp("offline") / "gx_data_docs"
    at = pd.Timestamp("2026-11-30 10:00:00")
    web = pd.DataFrame({
        "event_id": ["evt-1", "evt-2", BAD_EVENT],
        "bizible_id": ["a" * 32, "b" * 32, None],
        "event_type": ["page_view", "form_submit", "page_view"],
        "occurred_at": pd.to_datetime([at, at, at]),
    })
    tasks = pd.DataFrame({"Id": ["00T000000000001AAA", "00T000000000002AAA"],
                          "SystemModstamp": pd.to_datetime([at, at]), "CreatedDate": pd.to_datetime([at, at])})
    frames = [Frame("raw_web_events", "raw", "event_id", ""), Frame("raw_salesforce_task", "raw", "Id", "")]
    outcomes = validate_frames(frames, {"raw_web_events": web, "raw_salesforce_task": tasks}, QualitySettings(),
                               folder, run_name=RUN)
    failed = {o.check: o.record_ids for o in outcomes if o.severity != OK}
    assert failed == {"web_bizible_id_present": [BAD_EVENT]}, outcomes
    return folder


def pages(folder: Path) -> tuple[Path, Path]:
    index = folder / "index.html"
    [web_page] = [p for p in (folder / "validations").rglob("*.html") if "raw_web_events" in p.name]
    return index, web_page


def test_no_generated_page_names_a_cdn_and_every_vendored_file_is_in_the_site(data_docs):
    offenders = {}
    for page in data_docs.rglob("*.html"):
        remote = offline_assets.REMOTE_ASSET.findall(page.read_text())
        if remote:
            offenders[str(page.relative_to(data_docs))] = remote[:3]
    assert not offenders, f"expected no page to load from another host, saw: {offenders}"
    css = (data_docs / "static" / "styles" / "data_docs_default_styles.css").read_text()
    assert "amazonaws.com" not in css, "GX's stylesheet still loads its dark logo from S3"
    for asset in offline_assets.assets():
        assert (data_docs / asset.target).read_bytes() == asset.source.read_bytes(), asset.target


def test_the_vendored_scripts_are_the_bytes_whose_hashes_gx_pins():
    """GX's own template pins some CDN scripts by subresource integrity: the vendored copies must
    have those very hashes (the rewritten pages drop the attribute, which file:// pages cannot honour)."""
    import great_expectations

    template = (Path(great_expectations.__file__).parent / "render" / "view" / "templates" /
                "js_script_imports.j2").read_text()
    pinned = dict(re.findall(r'src="([^"]+)" integrity="sha384-([^"]+)"', template))
    assert len(pinned) >= 2, template
    by_url = {a.url: a for a in offline_assets.assets()}
    for url, digest in pinned.items():
        vendored = by_url[url].source.read_bytes()
        assert base64.b64encode(hashlib.sha384(vendored).digest()).decode() == digest, url


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def http_root(data_docs):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                             functools.partial(_Quiet, directory=str(data_docs)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def offline_browser():
    with chromium() as browser:
        yield browser


def test_the_index_and_a_validation_page_render_offline_from_file_urls(data_docs, offline_browser):
    index, web_page = pages(data_docs)
    assert_rendered_offline(open_offline(offline_browser, index.as_uri()), index=RUN)
    seen = open_offline(offline_browser, web_page.as_uri())
    assert_rendered_offline(seen, index=None)
    assert "1 unexpected values found" in seen["text"], "the web events page does not show the failed check"


def test_the_index_and_a_validation_page_render_offline_over_http(data_docs, http_root, offline_browser):
    index, web_page = pages(data_docs)
    seen = open_offline(offline_browser, f"{http_root}/index.html")
    assert_rendered_offline(seen, index=RUN)
    assert any("/static/vendor/bootstrap-4.3.1/" in u for u in seen["requested"]), seen["requested"]
    seen = open_offline(offline_browser, f"{http_root}/{web_page.relative_to(data_docs).as_posix()}")
    assert_rendered_offline(seen, index=None)
    assert "1 unexpected values found" in seen["text"], "the web events page does not show the failed check"


def test_the_blocker_sees_a_page_that_asks_a_cdn(tmp_path, offline_browser):
    """The route handler does block and count: a page that loads GX's CDN URLs reaches none of them."""
    urls = [a.url for a in offline_assets.assets() if a.url.endswith((".css", ".js"))][:3]
    page = tmp_path / "cdn.html"
    page.write_text("<html><head>" + "".join(
        f'<link rel="stylesheet" href="{u}">' if u.endswith(".css") else f'<script src="{u}"></script>'
        for u in urls) + "</head><body>cdn</body></html>")
    seen = open_offline(offline_browser, page.as_uri())
    assert sorted(seen["blocked"]) == sorted(urls), seen["blocked"]
