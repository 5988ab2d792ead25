"""The seed referrer_hosts: generated from the pinned public lists by scripts/build_referrer_hosts.py."""

from __future__ import annotations

import csv
import importlib.util
import io
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VENDOR = ROOT / "vendor" / "matomo-searchengine-and-social-list"
GA4_VENDOR = ROOT / "vendor" / "ga4-source-categories"
SEED = ROOT / "dbt_project" / "seeds" / "referrer_hosts.csv"


def load_script():
    spec = importlib.util.spec_from_file_location("build_referrer_hosts", ROOT / "scripts" / "build_referrer_hosts.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def seed_rows() -> list[dict]:
    with SEED.open(encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_the_committed_seed_is_what_the_script_makes_of_the_pinned_lists():
    script = load_script()
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(script.FIELDS)
    writer.writerows(script.build_rows(*script.load_lists()))
    assert SEED.read_text(encoding="utf-8") == out.getvalue()
    categories = {r["category"] for r in seed_rows()}
    assert categories == {"search", "ai", "social", "email"}


def test_the_pinned_lists_name_their_origin_commit_and_licence():
    origin = (VENDOR / "ORIGIN.md").read_text(encoding="utf-8")
    assert "github.com/matomo-org/searchengine-and-social-list" in origin
    assert "3b3a82dc83cd146abe17aafe31254de1c25f7844" in origin
    assert (VENDOR / "LICENSE").read_text(encoding="utf-8").startswith("CC0 1.0 Universal")
    assert all((VENDOR / f).is_file() and f in origin for f in ("SearchEngines.yml", "Socials.yml", "AIAssistants.yml"))
    ga4 = GA4_VENDOR / "ORIGIN.md"
    assert "github.com/Velir/dbt-ga4" in ga4.read_text(encoding="utf-8")
    assert "2d7b1f1c5224b6e2f3c6284f416dd5fd3ce94360" in ga4.read_text(encoding="utf-8")
    assert (GA4_VENDOR / "LICENSE").read_text(encoding="utf-8").startswith("MIT License")


def ga4(*rows: tuple[str, str]) -> list[dict]:
    return [{"source": source, "source_category": f"SOURCE_CATEGORY_{category}"} for source, category in rows]


def test_ga4_hosts_are_added_after_matomo_with_the_name_of_the_same_site():
    script = load_script()
    engines = {"Yahoo!": [{"urls": ["search.yahoo.com", "{}.search.yahoo.com"]}],
               "Bing": [{"urls": ["bing.com", "msnbc.msn.com"]}]}
    networks = {"Facebook": ["facebook.com"]}
    rows = script.build_rows(engines, networks, {"ChatGPT": ["chatgpt.com"]}, ga4(
        ("yahoo.com", "SEARCH"), ("www.yahoo.com", "SEARCH"), ("uk.search.yahoo.com", "SEARCH"),
        ("ntp.msn.com", "SEARCH"), ("biglobe.co.jp", "SEARCH"), ("play.google.com", "SEARCH"),
        ("quora.com", "SOCIAL"), ("m.facebook.com", "SOCIAL"), ("facebook", "SOCIAL"),
        ("amazon.com", "SHOPPING"), ("chatgpt.com", "SEARCH")))
    added = rows[rows.index(("search", "Bing", "msnbc.msn.com")) + 1:]
    assert added == [
        ("search", "Yahoo!", "yahoo.com"),            # once, without www.; uk.search.yahoo.com is Matomo's
        ("search", "Bing", "ntp.msn.com"),            # a sibling of msnbc.msn.com
        ("search", "biglobe.co.jp", "biglobe.co.jp"),  # co.jp is no site: named by its host
        ("social", "quora.com", "quora.com"),          # play.google.com is not search; m.facebook.com is covered
        ("social", "quora.com", "*.quora.com"),
    ]
    assert ("ai", "ChatGPT", "*.chatgpt.com") in rows


def test_a_ga4_social_host_does_not_take_the_subdomains_of_a_search_host():
    script = load_script()
    rows = script.build_rows({"Naver": [{"urls": ["search.naver.com"]}]}, {}, {}, ga4(("naver.com", "SOCIAL")))
    assert ("social", "naver.com", "naver.com") in rows
    assert ("social", "naver.com", "*.naver.com") not in rows


def test_list_entries_become_host_patterns():
    script = load_script()
    engines = {"Google": [{"urls": ["google.com", "google.{}", "www.google.com", "google.com/cse", "{}.g.example"]}]}
    networks = {"Facebook": ["facebook.com", "fb.me"]}
    assert script.build_rows(engines, networks)[-3:] == [
        ("search", "Google", "google.com"), ("search", "Google", "google.*"), ("search", "Google", "*.g.example")]
    assert ("social", "Facebook", "*.facebook.com") in script.build_rows(engines, networks)
    assert ("search", "Google", "*.google.com") not in script.build_rows(engines, networks)


def test_no_search_pattern_catches_every_subdomain_of_a_company_in_every_country():
    rows = seed_rows()
    assert [r["host_pattern"] for r in rows if r["host_pattern"].startswith("*.") and r["host_pattern"].endswith(".*")] == []
    search = [r["host_pattern"] for r in rows if r["category"] == "search"]
    assert "*.google.com" not in search and "*.yahoo.com" not in search
    assert {r["name"] for r in rows if r["host_pattern"] in ("mail.google.com", "mail.yahoo.com")} == {"Gmail", "Yahoo Mail"}


def channel_rules() -> list[dict]:
    with (ROOT / "dbt_project" / "seeds" / "channel_rules.csv").open(encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_every_list_a_shipped_rule_names_is_in_the_seed():
    """A list update that renames or drops a name ('Yahoo!') would silently empty a rule."""
    known = {f"list:{r['category']}".lower() for r in seed_rows()} | {
        f"list:{r['category']}:{r['name']}".lower() for r in seed_rows()}
    named = {v.strip().lower() for r in channel_rules() for v in (r["referring_website"] or "").split(";")
             if v.strip().lower().startswith("list:")}
    assert named and named - known == set()


def test_a_channel_with_subchannels_names_one_on_every_row():
    """Marketo Measure rejects a channel sheet that mixes rows with and without a subchannel."""
    by_channel: dict[str, set[bool]] = {}
    for rule in channel_rules():
        by_channel.setdefault(rule["channel"], set()).add(bool(rule["subchannel"]))
    assert {channel for channel, has in by_channel.items() if len(has) > 1} == set()
    assert {channel for channel, has in by_channel.items() if has == {True}} == {
        "Paid Search", "Paid Social", "Social", "Organic Search"}
