"""Build the dbt seed dbt_project/seeds/referrer_hosts.csv from the pinned public lists.

Sources:
- vendor/matomo-searchengine-and-social-list/SearchEngines.yml and Socials.yml (CC0, see
  ORIGIN.md there): the search engines and social networks, with their names.
- WEBMAIL_HOSTS below: the web interfaces of the large mail providers (no maintained public list
  with a compatible licence has them).

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
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
VENDOR = ROOT / "vendor" / "matomo-searchengine-and-social-list"
SEED = ROOT / "dbt_project" / "seeds" / "referrer_hosts.csv"

# Web mail: clicks from a message read in the browser. Subdomains match too.
WEBMAIL_HOSTS: dict[str, list[str]] = {
    "Gmail": ["mail.google.com", "inbox.google.com"],
    "Outlook": [
        "outlook.live.com",
        "outlook.office.com",
        "outlook.office365.com",
        "mail.live.com",
        "mail.outlook.com",
    ],
    "Yahoo Mail": ["mail.yahoo.com", "mail.yahoo.co.jp", "mail.yahoo.net"],
    "AOL Mail": ["mail.aol.com"],
    "Proton Mail": ["mail.proton.me", "mail.protonmail.com"],
    "iCloud Mail": ["mail.icloud.com"],
    "Zoho Mail": ["mail.zoho.com", "mail.zoho.eu"],
    "Yandex Mail": ["mail.yandex.ru", "mail.yandex.com"],
    "Mail.ru": ["e.mail.ru", "touch.mail.ru"],
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


def _social_rows(networks: dict) -> list[tuple[str, str, str]]:
    rows = []
    for name, urls in networks.items():
        for url in urls:
            pattern = _pattern(url)
            if pattern is not None:
                rows.extend(_with_subdomains("social", str(name), pattern))
    return rows


def _email_rows() -> list[tuple[str, str, str]]:
    rows = []
    for name, hosts in WEBMAIL_HOSTS.items():
        for host in hosts:
            rows.extend(_with_subdomains("email", name, host))
    return rows


def build_rows(engines: dict, networks: dict) -> list[tuple[str, str, str]]:
    """The seed's rows: webmail, then social networks, then search engines, each host once."""
    seen: set[str] = set()
    rows = []
    for row in _email_rows() + _social_rows(networks) + _search_rows(engines):
        pattern = row[2]
        if pattern in seen or pattern in EXCLUDED:
            continue
        if not pattern.replace("*", "x").replace("-", "x").replace(".", "x").isalnum():
            raise ValueError(f"unexpected host pattern {pattern!r} for {row[1]!r}")
        seen.add(pattern)
        rows.append(row)
    return rows


def main() -> int:
    engines = yaml.safe_load((VENDOR / "SearchEngines.yml").read_text(encoding="utf-8"))
    networks = yaml.safe_load((VENDOR / "Socials.yml").read_text(encoding="utf-8"))
    rows = build_rows(engines, networks)
    with SEED.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(FIELDS)
        writer.writerows(rows)
    print(f"{SEED.relative_to(ROOT)}: {len(rows)} host patterns", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
