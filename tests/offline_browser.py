"""A real headless Chromium (Debian's, never a downloaded one) that may reach this machine only:
every request to another host is aborted by a route handler and recorded, and DNS for any other
host fails as well, should something bypass the handler."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from urllib.parse import urlsplit

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
LOCAL_HOSTS = {"127.0.0.1", "localhost"}


@contextlib.contextmanager
def chromium() -> Iterator:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--no-sandbox", "--disable-background-networking", "--disable-gpu", "--disable-component-update",
            "--disable-sync", "--no-first-run", "--disable-quic",
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost"])
        try:
            yield browser
        finally:
            browser.close()


def block_remote(context) -> list[str]:
    """Abort every request of ``context`` to another host; the list fills with their URLs."""
    blocked: list[str] = []

    def route(route):
        parts = urlsplit(route.request.url)
        if parts.scheme in ("file", "data", "blob") or parts.hostname in LOCAL_HOSTS:
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort("internetdisconnected")

    context.route("**/*", route)
    return blocked


def open_offline(browser, url: str, context=None) -> dict:
    """Load ``url`` (in a new context, or ``context``) with non-local requests blocked; return
    what the page shows and what it asked for."""
    context = context or browser.new_context(viewport={"width": 1400, "height": 900})
    failed_local: list[str] = []
    blocked = block_remote(context)
    page = context.new_page()
    requested: list[str] = []
    page.on("request", lambda r: requested.append(r.url))
    page.on("requestfailed", lambda r: None if r.url in blocked else failed_local.append(r.url))
    page.on("response", lambda r: failed_local.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        # Generous timeout: the machine running the tests may be busy with a live Airflow. "load"
        # waits for every script, style sheet and image; the web fonts, which the style sheets
        # only ask for once text uses them, are awaited through document.fonts. (Not
        # "networkidle": on a busy machine Chromium did not report an idle network for a
        # file:// page within 90 s.)
        page.goto(url, wait_until="load", timeout=90_000)
        page.evaluate("document.fonts.ready.then(() => true)")
        seen = page.evaluate(SEEN)
        seen["url"] = page.url
    finally:
        context.close()
    return {"blocked": blocked, "failed_local": failed_local, "errors": errors, "requested": requested, **seen}


# What only the vendored files give: bootstrap-table's JavaScript fills the index's table (from
# data in the page) and wraps every table; Bootstrap's CSS hides a collapsed block and colours its
# buttons; Font Awesome's CSS and web font draw the status icons.
SEEN = """() => {
  const rows = [...document.querySelectorAll('table.ge-index-page-validation-results-table tbody tr')];
  const collapsed = document.querySelector('.collapse:not(.show)');
  const button = document.querySelector('.btn-secondary');
  const icon = document.querySelector('i.fas');
  const navbar = document.querySelector('nav.navbar');
  return {
    index_rows: rows.map(r => r.innerText.replace(/\\s+/g, ' ').trim()),
    bootstrap_tables: document.querySelectorAll('.bootstrap-table').length,
    collapsed_display: collapsed ? getComputedStyle(collapsed).display : null,
    button_background: button ? getComputedStyle(button).backgroundColor : null,
    navbar_display: navbar ? getComputedStyle(navbar).display : null,
    icon_font: icon ? getComputedStyle(icon, '::before').fontFamily : null,
    fonts_loaded: [...document.fonts].filter(f => f.status === 'loaded').map(f => f.family),
    jquery: typeof window.jQuery === 'function' ? window.jQuery.fn.jquery : null,
    vega: typeof window.vega === 'object' && typeof window.vegaEmbed === 'function',
    text: document.body.innerText,
  };
}"""


def assert_rendered_offline(seen: dict, *, index: str | None, rows: int = 2) -> None:
    """The page rendered with the vendored files only; ``index``: the run name every row of the
    Data Docs index must show (``rows`` validations), or None for a validation page."""
    assert seen["blocked"] == [], f"expected no request to leave the machine, saw {seen['blocked']}"
    assert seen["failed_local"] == [], f"expected every local file to load, these failed: {seen['failed_local']}"
    assert seen["errors"] == [], f"expected no JavaScript error, saw {seen['errors']}"
    assert seen["jquery"] == "3.7.1" and seen["vega"], seen
    assert seen["bootstrap_tables"] >= 1, "bootstrap-table did not run"
    assert seen["navbar_display"] == "flex", f"expected Bootstrap's .navbar layout (flex), saw {seen['navbar_display']}"
    assert "Font Awesome 6 Free" in (seen["icon_font"] or ""), seen["icon_font"]
    assert "Font Awesome 6 Free" in seen["fonts_loaded"], f"the icon font did not load: {seen['fonts_loaded']}"
    if index:
        assert seen["button_background"] == "rgb(108, 117, 125)", \
            f"expected Bootstrap's .btn-secondary colour, saw {seen['button_background']}"
        assert len(seen["index_rows"]) == rows, f"expected a row per validation ({rows}), saw {seen['index_rows']}"
        assert all(index in r for r in seen["index_rows"]), seen["index_rows"]
    else:
        assert seen["collapsed_display"] == "none", f"Bootstrap's CSS did not hide .collapse: {seen['collapsed_display']}"


