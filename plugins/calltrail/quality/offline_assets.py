"""Data Docs that render without the internet: the CDN assets GX's pages load, served from the site.

Great Expectations writes pages that load Bootstrap, jQuery, bootstrap-table, Font Awesome, Vega
and more from CDNs (and its logo from S3), so without the internet the index's table is empty and
the pages unstyled. The same files, vendored from npm (``data_docs_assets/``, see its README), are
copied into the site's ``static/vendor/`` and :func:`localize` rewrites every page that GX wrote
since its previous call to load them by relative path: the pages then work from ``file://``, from
the Airflow plugin and offline alike.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
from dataclasses import dataclass
from functools import cache
from pathlib import Path

log = logging.getLogger(__name__)

ASSETS = Path(__file__).with_name("data_docs_assets")
VENDOR = Path("static") / "vendor"  # inside the Data Docs folder
STAMP = ".localized"  # in VENDOR: its mtime is the start of the last pass

# GX's logo comes from S3 with a timestamp and the context's id (a tracking pixel); GX ships the
# same picture in the site's static/images/.
GX_LOGO = re.compile(r"https://great-expectations-web-assets\.s3\.us-east-2\.amazonaws\.com/"
                     r"(?:logo-long|full_logo_dark)\.png[^\"')\s]*")
LOCAL_LOGO = Path("static") / "images" / "logo-long.png"
# A reference to the site's static/ folder from a page: GX gets the depth of some wrong (the
# favicon of a validation page is one folder short), so every one is recomputed.
STATIC_REF = re.compile(r"(?<=[\"'(])(?:\./|(?:\.\./)+)static/")
# A tag that would still load something from another host after the rewrite.
REMOTE_ASSET = re.compile(r"<(?:script|link|img)\b[^>]*\b(?:src|href)=[\"']?(?:https?:)?//[^>]*>", re.I)
# Subresource integrity needs a CORS response, which a file:// page (no origin) never gets: the
# browser then refuses the script. The vendored bytes are checked against these hashes instead
# (tests/quality/test_data_docs_offline.py), and against npm's integrity when fetched.
SRI = re.compile(r"\s+(?:integrity=\"sha\d+-[A-Za-z0-9+/=]+\"|crossorigin=\"anonymous\")")


class DataDocsAssetsError(RuntimeError):
    pass


@dataclass(frozen=True)
class Asset:
    url: str  # as GX's templates write it
    source: Path  # the vendored copy
    target: Path  # relative to the Data Docs folder


@cache
def assets() -> tuple[Asset, ...]:
    """The CDN URLs of the manifest with their vendored files (and the files those load, e.g. fonts)."""
    manifest = json.loads((ASSETS / "manifest.json").read_text())
    found = []
    for package in manifest["packages"]:
        folder = f"{package['name'].rsplit('/', 1)[-1]}-{package['version']}"
        for url, inner in package["cdn"].items():
            found.append(Asset(url, ASSETS / folder / inner, VENDOR / folder / inner))
        for inner in package.get("also", []):  # loaded by the files above, by relative path
            found.append(Asset("", ASSETS / folder / inner, VENDOR / folder / inner))
    missing = [str(a.source) for a in found if not a.source.is_file()]
    if missing:
        raise DataDocsAssetsError(f"vendored Data Docs assets missing: {missing}; restore them from git or run "
                                  "scripts/fetch_data_docs_assets.py")
    # Longest URL first: none is then replaced inside a longer one that starts with it.
    return tuple(sorted(found, key=lambda a: len(a.url), reverse=True))


def install(folder: Path) -> None:
    """Copy the vendored files into ``folder/static/vendor`` where missing or different."""
    for asset in assets():
        target = folder / asset.target
        if not target.exists() or target.stat().st_size != asset.source.stat().st_size:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(asset.source, target)


def rewrite(text: str, page: Path, folder: Path) -> str:
    """``text`` of ``page`` (in ``folder``) with every known CDN URL replaced by a relative path."""
    def relative(target: Path) -> str:
        return Path(os.path.relpath(folder / target, page.parent)).as_posix()

    for asset in assets():
        if asset.url and asset.url in text:
            text = text.replace(asset.url, relative(asset.target))
    text = GX_LOGO.sub(relative(LOCAL_LOGO), text)
    if page.suffix == ".html":
        text = STATIC_REF.sub(relative(Path("static")) + "/", text)
    return SRI.sub("", text)


def localize(folder: Path) -> list[Path]:
    """Make the Data Docs in ``folder`` load nothing from the internet; return the pages rewritten.

    Only pages and stylesheets modified since the previous call are read (an audit adds a few
    pages to thousands). A page that still loads something remote afterwards (a CDN URL that a
    new GX version introduced) is logged as a warning. Without the vendored files (a broken
    install) the pages are left as GX wrote them and the error is logged: the audit's verdict
    does not depend on how its pages look.
    """
    try:
        install(folder)
    except DataDocsAssetsError as e:
        log.error("Data Docs left loading their CSS and JavaScript from CDNs: %s", e)
        return []
    stamp = folder / VENDOR / STAMP
    since = stamp.stat().st_mtime if stamp.exists() else 0.0
    stamp.touch()  # before reading: a page GX writes during this pass is taken again next time
    changed = []
    for page in [*folder.rglob("*.html"), *(folder / "static" / "styles").glob("*.css")]:
        if page.stat().st_mtime < since:
            continue
        text = page.read_text(encoding="utf-8")
        new = rewrite(text, page, folder)
        if new != text:
            tmp = page.with_name(page.name + ".tmp")
            tmp.write_text(new, encoding="utf-8")
            tmp.replace(page)
            changed.append(page)
        remote = REMOTE_ASSET.findall(new)
        if remote:
            log.warning("Data Docs page %s still loads from the internet: %s", page, remote[:3])
    return changed
