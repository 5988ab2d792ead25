"""The shipped channel rules, through the whole pipeline: web events in, touchpoint channels out.

One small lake, one `dbt build`: one visitor per case, whose only session becomes its first-touch
Web Visit touchpoint with the session's channel (a call days later is its conversion). The cases are every row family of the shipped
rules (dbt_project/seeds/channel_rules.csv, docs/rules.md "Marketing channels"), every host of
an independent public list of referrer domains with their channel (Umami's,
tests/fixtures/umami_referrer_domains: MIT, see ORIGIN.md there), and every host of the shipped
Google Analytics 4 list (vendor/ga4-source-categories), which must get the category that list gives
except where docs/rules.md says why not.
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import duckdb
import pytest

from calltrail import settings as settings_module
from calltrail.salesforce.files import ingest_task_files
from calltrail.transform.dbt import run_dbt
from calltrail.web.ingest import ingest_web_events
from tests.airflow_env import calltrail_env
from tests.transform.test_dbt_build import SITE, event, task, write_lake_objects

ROOT = Path(__file__).resolve().parents[2]
UMAMI = ROOT / "tests" / "fixtures" / "umami_referrer_domains" / "umami_referrer_domains.csv"
GA4 = ROOT / "vendor" / "ga4-source-categories" / "ga4_source_categories.csv"
DISAGREEMENTS_DOC = ROOT / "docs" / "channel-fixture-disagreements.md"

# (query string of the landing page, referrer URL) -> (channel, subchannel, touchpoint source)
ROW_FAMILIES: list[tuple[str, str | None, str, str | None, str]] = [
    # Paid Search: click ids, then medium cpc / ppc / paid search with the engine from utm_source.
    ("utm_source=google&utm_medium=cpc&gclid=a1", "https://www.google.com/", "Paid Search", "Google", "google"),
    ("gclid=a2", "https://www.google.de/", "Paid Search", "Google", "Google"),
    ("msclkid=b1", "https://www.bing.com/", "Paid Search", "Bing", "Bing"),
    ("utm_source=bing&utm_medium=paid+search", None, "Paid Search", "Bing", "bing"),
    ("utm_source=yahoo&utm_medium=cpc", None, "Paid Search", "Yahoo", "yahoo"),
    ("utm_source=adroll&utm_medium=ppc", None, "Paid Search", "Other", "adroll"),
    # Paid Social: a paid medium from a social network, or a paid-social medium.
    ("utm_source=facebook&utm_medium=cpc", "https://m.facebook.com/", "Paid Social", "Facebook", "facebook"),
    ("utm_source=linkedin&utm_medium=paid_social", None, "Paid Social", "LinkedIn", "linkedin"),
    ("utm_source=tiktok&utm_medium=paid_social", None, "Paid Social", "Other", "tiktok"),
    # Display by utm_medium or utm_source.
    ("utm_source=criteo&utm_medium=banner", None, "Display", None, "criteo"),
    ("utm_source=dv360", None, "Display", None, "dv360"),
    # Email by utm_medium, by utm_source, by a webmail referrer.
    ("utm_source=hubspot&utm_medium=email", None, "Email", None, "hubspot"),
    ("utm_source=newsletter", None, "Email", None, "newsletter"),
    ("", "https://mail.google.com/mail/u/0/", "Email", None, "mail.google.com"),
    ("", "https://outlook.live.com/mail/0/inbox", "Email", None, "outlook.live.com"),
    # Social by utm_source (Marketo Measure: utm_source=facebook with no medium is Social), by
    # utm_medium, by referrer.
    ("utm_source=facebook", None, "Social", "Facebook", "facebook"),
    ("utm_source=twitter&utm_medium=social", None, "Social", "Twitter", "twitter"),
    ("utm_source=mastodon&utm_medium=social", None, "Social", "Other", "mastodon"),
    ("", "https://l.facebook.com/l.php", "Social", "Facebook", "l.facebook.com"),
    ("", "https://lnkd.in/abc", "Social", "LinkedIn", "lnkd.in"),
    ("", "https://t.co/x1", "Social", "Twitter", "t.co"),
    ("", "https://www.instagram.com/", "Social", "Instagram", "instagram.com"),
    ("", "https://www.youtube.com/watch", "Social", "YouTube", "youtube.com"),
    ("", "https://old.reddit.com/r/marketing/", "Social", "Reddit", "old.reddit.com"),
    ("", "https://bsky.app/profile/x", "Social", "Other", "bsky.app"),
    # ... from GA4's list (forums, blogs, Q&A sites), with their subdomains.
    ("", "https://www.quora.com/What-is", "Social", "Other", "quora.com"),
    ("", "https://someone.blogspot.com/2026/03/post.html", "Social", "Other", "someone.blogspot.com"),
    # Organic Search by referrer (the engine's name is the source) or by utm_medium organic.
    ("", "https://www.google.co.uk/", "Organic Search", "Google", "Google"),
    ("", "https://www.bing.com/search?q=x", "Organic Search", "Bing", "Bing"),
    ("", "https://uk.search.yahoo.com/", "Organic Search", "Yahoo", "Yahoo!"),
    ("", "https://duckduckgo.com/", "Organic Search", "Other", "DuckDuckGo"),
    ("", "https://yandex.ru/search/", "Organic Search", "Other", "Yandex"),
    ("", "https://www.ecosia.org/search", "Organic Search", "Other", "Ecosia"),
    ("", "https://www.yahoo.com/", "Organic Search", "Yahoo", "Yahoo!"),
    ("", "https://search.naver.com/search.naver?query=x", "Organic Search", "Other", "Naver"),
    # AI assistants (Matomo's list) are organic search with a subchannel of their own.
    ("", "https://chatgpt.com/", "Organic Search", "AI Assistant", "ChatGPT"),
    ("", "https://www.perplexity.ai/search/x", "Organic Search", "AI Assistant", "Perplexity"),
    ("utm_source=google&utm_medium=organic", None, "Organic Search", "Google", "google"),
    # A search company's other sites are not search.
    ("", "https://accounts.google.com/", "Referral", None, "accounts.google.com"),
    ("", "https://news.yahoo.com/", "Referral", None, "news.yahoo.com"),
    ("", "https://play.google.com/store/apps", "Referral", None, "play.google.com"),
    # Referral, Direct, Other.
    ("", "https://partner-agency.example/tools", "Referral", None, "partner-agency.example"),
    ("", None, "Direct", None, "Web Direct"),
    ("utm_source=partner&utm_medium=affiliate", None, "Other", None, "partner"),
]

EXPECTED = {"search": "Organic Search", "social": "Social", "email": "Email"}
# Measured on the shipped defaults: (fixture hosts of a category with a channel, disagreements).
# Issue 15 asks for 90 %; the disagreements and their reasons are in
# docs/channel-fixture-disagreements.md. A change of the defaults or the lists that moves these
# numbers must update that page.
MEASURED = (31, 3)
AGREEMENT_FLOOR = 0.9

# GA4's own categories, as the shipped seed must give them: search hosts are Organic Search except
# those scripts/build_referrer_hosts.py names as not search (GA4_NOT_SEARCH, docs/rules.md), social
# hosts are Social.
GA4_CHANNEL = {"SOURCE_CATEGORY_SEARCH": "Organic Search", "SOURCE_CATEGORY_SOCIAL": "Social"}
GA4_NOT_SEARCH = {
    "email.seznam.cz": "Email", "mail.rambler.ru": "Email", "mail.yandex.ru": "Email",
    "secureurl.ukr.net": "Referral", "play.google.com": "Referral", "search.google.com": "Referral",
    "webmaster.yandex.ru": "Referral", "zen.yandex.ru": "Referral", "firmy.cz": "Referral",
}


def umami_hosts() -> dict[str, str]:
    """Umami's domains as referrer hosts (an entry ending with a dot, 'google.', as its .com host),
    with their category."""
    hosts = {}
    with UMAMI.open(encoding="utf-8") as f:
        for row in csv.DictReader(f):
            domain = row["domain"].strip().lower()
            hosts.setdefault(domain + "com" if domain.endswith(".") else domain, row["category"])
    return hosts


def ga4_hosts() -> dict[str, str]:
    """GA4's sources that are hosts (a source without a dot is a name, not a referrer host), by host
    without 'www.', with their category."""
    hosts = {}
    with GA4.open(encoding="utf-8") as f:
        for row in csv.DictReader(f):
            source = row["source"].strip().lower()
            if "." in source:
                hosts.setdefault(source.removeprefix("www."), row["source_category"])
    return hosts


def bizible_id(n: int) -> str:
    return f"{n:032x}"


@pytest.fixture(scope="module")
def channels(tmp_path_factory) -> tuple[dict[int, tuple], dict[str, tuple]]:
    """Touchpoint (channel, subchannel, source) for every row family (by index) and fixture host."""
    tmp = tmp_path_factory.mktemp("channels")
    settings = settings_module.load(calltrail_env(tmp))
    hosts = sorted(set(umami_hosts()) | set(ga4_hosts()))
    web = []
    for i, (query, referrer, *_) in enumerate(ROW_FAMILIES):
        web.append(event(i, bizible_id(i + 1), "2026-03-01T10:00:00Z", f"{SITE}/?{query}" if query else f"{SITE}/",
                         referrer))
    offset = len(ROW_FAMILIES) + 1
    for i, host in enumerate(hosts):
        web.append(event(offset + i, bizible_id(offset + i), "2026-03-01T10:00:00Z", f"{SITE}/", f"https://{host}/"))
    settings.web_landing_dir.mkdir(parents=True)
    (settings.web_landing_dir / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in web))
    # A call days later (task-only): the visitor's one session before it is its first touch.
    tasks = [task(f"00T{int(e['bizible_id'], 16):012d}AAA", e["bizible_id"], "2026-03-05T10:00:00.000+0000")
             for e in web]
    settings.task_landing_dir.mkdir(parents=True)
    (settings.task_landing_dir / "tasks.jsonl").write_text("".join(json.dumps(t) + "\n" for t in tasks))
    ingest_web_events(settings.web_landing_dir, settings.lake_dir)
    ingest_task_files(settings.task_landing_dir, settings.lake_dir, settings.salesforce)
    write_lake_objects(settings.lake_dir)
    run_dbt(settings, ["build", "--select", "+fct_touchpoints", "--resource-type", "seed", "--resource-type", "model"],
            in_process=True)
    con = duckdb.connect(str(settings.warehouse), read_only=True)
    rows = con.execute("""
        select t.bizible_id, t.marketing_channel, t.marketing_subchannel, t.touchpoint_source, s.referrer_host
        from fct_touchpoints as t inner join int_sessions as s on t.session_id = s.session_id
        where t.touchpoint_origin = 'web_visit'""").fetchall()
    con.close()
    by_id = {r[0]: r[1:] for r in rows}
    families = {i: by_id.get(bizible_id(i + 1)) for i in range(len(ROW_FAMILIES))}
    fixture = {host: by_id.get(bizible_id(offset + i)) for i, host in enumerate(hosts)}
    return families, fixture


@pytest.mark.parametrize("index", range(len(ROW_FAMILIES)),
                         ids=[f"{c}/{s or '-'}:{q or r}" for q, r, c, s, _ in ROW_FAMILIES])
def test_every_row_family_gives_its_channel_subchannel_and_source(channels, index):
    families, _ = channels
    _, _, channel, subchannel, source = ROW_FAMILIES[index]
    assert families[index] is not None, "no Web Visit touchpoint for the case"
    assert families[index][:3] == (channel, subchannel, source)


def disagreements(fixture: dict[str, tuple]) -> dict[str, tuple[str, str]]:
    """Umami's hosts of an expected channel that get another: host -> (expected, got)."""
    out = {}
    for host, category in umami_hosts().items():
        expected, seen = EXPECTED.get(category), fixture[host]
        if expected is not None and (seen is None or seen[0] != expected):
            out[host] = (expected, seen[0] if seen else "no touchpoint")
    return out


def test_no_fixture_host_outside_search_is_organic_search(channels):
    _, fixture = channels
    umami, ga4 = umami_hosts(), ga4_hosts()
    wrong = sorted(h for h, seen in fixture.items() if seen and seen[0] == "Organic Search"
                   and umami.get(h, "search") != "search" and ga4.get(h, "SOURCE_CATEGORY_SEARCH") != "SOURCE_CATEGORY_SEARCH")
    assert wrong == []
    assert [h for h in GA4_NOT_SEARCH if fixture[h][0] != GA4_NOT_SEARCH[h]] == []


def test_every_fixture_host_has_a_touchpoint_with_its_referrer_host(channels):
    _, fixture = channels
    assert {h for h, seen in fixture.items() if seen is None or seen[3] != h} == set()


def test_agreement_with_the_independent_fixture_and_every_disagreement_is_documented(channels):
    _, fixture = channels
    scored = [h for h, category in umami_hosts().items() if category in EXPECTED]
    wrong = disagreements(fixture)
    agreement = 1 - len(wrong) / len(scored)
    documented = set(re.findall(r"^\| `([^`]+)` \|", DISAGREEMENTS_DOC.read_text(encoding="utf-8"), flags=re.M))
    assert documented == set(wrong), "docs/channel-fixture-disagreements.md lists other hosts"
    assert (len(scored), len(wrong)) == MEASURED
    assert agreement >= AGREEMENT_FLOOR


def test_the_shipped_ga4_hosts_get_ga4s_channel(channels):
    """The seed takes GA4's social and search hosts: through the pipeline each gets GA4's channel,
    except the hosts that are not search (GA4_NOT_SEARCH)."""
    _, fixture = channels
    wrong = {}
    for host, category in ga4_hosts().items():
        expected = GA4_NOT_SEARCH.get(host) or GA4_CHANNEL.get(category)
        if expected is not None and fixture[host][0] != expected:
            wrong[host] = (category, fixture[host][0])
    assert wrong == {}
