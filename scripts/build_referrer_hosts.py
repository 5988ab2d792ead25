"""Build the dbt seed dbt_project/seeds/referrer_hosts.csv from the pinned public lists.

Sources, in this order (a host the earlier ones already cover is not added again):
- WEBMAIL_HOSTS below: the web interfaces of the large mail providers (no maintained public list
  with a compatible licence has them).
- vendor/matomo-searchengine-and-social-list/ (CC0, see ORIGIN.md there): SearchEngines.yml and
  Socials.yml, the search engines and social networks with their names, and AIAssistants.yml, the
  AI assistants (category 'ai').
- vendor/ga4-source-categories/ (MIT, see ORIGIN.md there): Google Analytics 4's source
  categories. Its social hosts are social (with their subdomains, unless that would also catch a
  listed search host); its search hosts are search, each host only as listed, except the ones in
  GA4_NOT_SEARCH. A GA4 host takes the name of the Matomo engine or network of the same site
  (yahoo.com: 'Yahoo!', from search.yahoo.com), else its own host as the name (_site_name).

Every row is one host pattern with its category (search, social, email) and name. A pattern is
a host without 'www.' (the referrer host calltrail matches has none), with '*' where Matomo's
list has '{}' (a country code or subdomain: 'google.{}' becomes 'google.*'). Social and webmail
hosts match their subdomains too ('*.facebook.com'); search hosts match only as listed, because a
company's other subdomains (mail.google.com, accounts.google.com, news.yahoo.com) are not search.
List entries with a path ('google.com/cse') are search only on that path and are left out, as
are the hosts in EXCLUDED (general sites that Matomo counts as search only with a query
parameter). A host claimed by two names keeps the first (in file order).

Re-runnable: `python scripts/build_referrer_hosts.py` (or `make referrer-hosts`) rewrites the seed.
"""

from __future__ import annotations

import csv
import fnmatch
import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
VENDOR = ROOT / "vendor" / "matomo-searchengine-and-social-list"
GA4 = ROOT / "vendor" / "ga4-source-categories" / "ga4_source_categories.csv"
SEED = ROOT / "dbt_project" / "seeds" / "referrer_hosts.csv"

# Web mail: clicks from a message read in the browser. Subdomains match too.
WEBMAIL_HOSTS: dict[str, list[str]] = {
    "Gmail": ["mail.google.com", "inbox.google.com", "gmail.com"],
    "Outlook": [
        "outlook.com",
        "hotmail.com",
        "outlook.live.com",
        "outlook.office.com",
        "outlook.office365.com",
        "mail.live.com",
        "mail.outlook.com",
    ],
    "Yahoo Mail": ["mail.yahoo.com", "mail.yahoo.co.jp", "mail.yahoo.net"],
    "AOL Mail": ["mail.aol.com"],
    "Proton Mail": ["mail.proton.me", "protonmail.com"],
    "iCloud Mail": ["mail.icloud.com"],
    "Zoho Mail": ["mail.zoho.com", "mail.zoho.eu"],
    "Yandex Mail": ["mail.yandex.ru", "mail.yandex.com"],
    "Mail.ru": ["e.mail.ru", "touch.mail.ru"],
    "Rambler Mail": ["mail.rambler.ru"],
    "Seznam Email": ["email.seznam.cz"],
    "GMX": ["navigator.gmx.net", "navigator.gmx.com", "mail.gmx.com"],
    "WEB.DE": ["navigator.web.de"],
    "Fastmail": ["app.fastmail.com", "fastmail.com"],
    "Tuta": ["app.tuta.com", "mail.tutanota.com"],
    "QQ Mail": ["mail.qq.com"],
    "NetEase Mail": ["mail.163.com", "mail.126.com"],
    "Naver Mail": ["mail.naver.com"],
}

# Hosts Matomo lists as search only together with a query parameter, on sites that are not
# search engines; matched by host alone they would make any link from them Organic Search.
EXCLUDED: dict[str, str] = {
    "cnn.com": "a news site (Matomo: Google-powered site search with ?q=)",
    "fastweb.it": "an internet provider's portal",
    "wow.com": "a portal",
    "*.wow.com": "a portal",
    "digg.com": "a social news site",
    "friendfeed.com": "a social network (closed)",
}

# Hosts of GA4's search category that are not a search engine's results (GA4 counts their visits as
# search): webmail is Email (WEBMAIL_HOSTS), the others Referral.
GA4_NOT_SEARCH: dict[str, str] = {
    "email.seznam.cz": "webmail (Seznam)",
    "mail.rambler.ru": "webmail (Rambler)",
    "mail.yandex.ru": "webmail (Yandex)",
    "secureurl.ukr.net": "the link redirector of ukr.net's webmail",
    "play.google.com": "Google's app store",
    "search.google.com": "Google Search Console",
    "webmaster.yandex.ru": "Yandex's webmaster tools",
    "zen.yandex.ru": "Yandex's news feed",
    "firmy.cz": "a business directory",
}

FIELDS = ["category", "name", "host_pattern"]


def _pattern(url: str) -> str | None:
    """The host pattern of a Matomo list entry, or None for an entry with a path."""
    url = url.strip().lower()
    if "/" in url:
        return None
    if url.startswith("www."):
        url = url[len("www.") :]
    return url.replace("{}", "*")


def _search_rows(engines: dict) -> list[tuple[str, str, str]]:
    rows = []
    for name, configs in engines.items():
        for config in configs:
            for url in config.get("urls", []):
                pattern = _pattern(url)
                if pattern is not None:
                    rows.append(("search", str(name), pattern))
    return rows


def _with_subdomains(category: str, name: str, host: str) -> list[tuple[str, str, str]]:
    rows = [(category, name, host)]
    if not host.startswith("*."):
        rows.append((category, name, "*." + host))
    return rows


def _listed_rows(category: str, lists: dict) -> list[tuple[str, str, str]]:
    """Rows of a Matomo list of names and their hosts (social networks, AI assistants), each host
    with its subdomains."""
    rows = []
    for name, urls in lists.items():
        for url in urls:
            pattern = _pattern(url)
            if pattern is not None:
                rows.extend(_with_subdomains(category, str(name), pattern))
    return rows


def _email_rows() -> list[tuple[str, str, str]]:
    rows = []
    for name, hosts in WEBMAIL_HOSTS.items():
        for host in hosts:
            rows.extend(_with_subdomains("email", name, host))
    return rows


def _covers(pattern: str, host: str) -> bool:
    """Whether the host pattern matches the host (as the rules' LIKE does: '*' is any text)."""
    return fnmatch.fnmatchcase(host, pattern)


def _overlaps(pattern: str, other: str) -> bool:
    """Whether a host both patterns match exists (tried on the other with each '*' as one label)."""
    return _covers(pattern, other.replace("*", "x")) or _covers(other, pattern.replace("*", "x"))


def _site_name(host: str, rows: list[tuple[str, str, str]], category: str, *, parent: bool) -> str:
    """The name of a listed pattern of the same site, else the host itself. The same site is the
    host, its search subdomain (search.yahoo.com for yahoo.com) or another of its subdomains, and
    with `parent`, the same for the host's parent domain (msnbc.msn.com for ntp.msn.com), unless
    that parent is a country's second level ('co.jp')."""
    sites = [host]
    up = host.split(".", 1)[1] if host.count(".") >= 2 else ""
    if parent and up and not re.fullmatch(r"(co|com|ne|or|ac|go|net|org|edu|gov)\.[a-z]{2}", up):
        sites.append(up)
    named = [(name, pattern) for c, name, pattern in rows if c == category]
    for site in sites:
        for name, pattern in named:
            if pattern == site:
                return name
        for name, pattern in named:
            if pattern == "search." + site:
                return name
        for name, pattern in named:
            if pattern.endswith("." + site):
                return name
    return host


def _ga4_rows(ga4: list[dict], listed: list[tuple[str, str, str]]) -> list[tuple[str, str, str]]:
    """GA4's social and search hosts that no listed pattern covers yet."""
    search_patterns = [p for c, _, p in listed if c == "search"]
    search_patterns += [
        r["source"].strip().lower().removeprefix("www.") for r in ga4 if r["source_category"] == "SOURCE_CATEGORY_SEARCH"]
    rows = []
    for row in ga4:
        host = row["source"].strip().lower().removeprefix("www.")
        if "." not in host or "/" in host or any(_covers(p, host) for _, _, p in listed + rows):
            continue  # a name, not a host; or covered already
        if row["source_category"] == "SOURCE_CATEGORY_SOCIAL":
            name = _site_name(host, listed, "social", parent=False)
            rows.append(("social", name, host))
            if not any(_overlaps("*." + host, p) for p in search_patterns):
                rows.append(("social", name, "*." + host))
        elif row["source_category"] == "SOURCE_CATEGORY_SEARCH" and host not in GA4_NOT_SEARCH:
            rows.append(("search", _site_name(host, listed, "search", parent=True), host))
    return rows


def build_rows(
    engines: dict, networks: dict, assistants: dict | None = None, ga4: list[dict] | None = None
) -> list[tuple[str, str, str]]:
    """The seed's rows: webmail, then AI assistants, social networks and search engines from
    Matomo, then GA4's social and search hosts; each host pattern once."""
    seen: set[str] = set()
    rows = []
    matomo = _email_rows() + _listed_rows("ai", assistants or {}) + _listed_rows("social", networks) + _search_rows(engines)
    for row in matomo:
        if row[2] in seen or row[2] in EXCLUDED:
            continue
        seen.add(row[2])
        rows.append(row)
    rows += _ga4_rows(ga4 or [], rows)
    for _, name, pattern in rows:
        if not pattern.replace("*", "x").replace("-", "x").replace(".", "x").isalnum():
            raise ValueError(f"unexpected host pattern {pattern!r} for {name!r}")
    return rows


def load_lists() -> tuple[dict, dict, dict, list[dict]]:
    """The pinned lists in vendor/, as build_rows takes them."""
    engines = yaml.safe_load((VENDOR / "SearchEngines.yml").read_text(encoding="utf-8"))
    networks = yaml.safe_load((VENDOR / "Socials.yml").read_text(encoding="utf-8"))
    assistants = yaml.safe_load((VENDOR / "AIAssistants.yml").read_text(encoding="utf-8"))
    with GA4.open(encoding="utf-8") as f:
        ga4 = list(csv.DictReader(f))
    return engines, networks, assistants, ga4


def main() -> int:
    rows = build_rows(*load_lists())
    with SEED.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(FIELDS)
        writer.writerows(rows)
    print(f"{SEED.relative_to(ROOT)}: {len(rows)} host patterns", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
