"""Write the report page from the published marts: aggregates and bounded lists only.

Every number a chart shows is also in a table beside it (the page's tables are written here, in
HTML; the charts are drawn in the browser by the vendored Vega-Lite from the same figures, which
the page carries as JSON). Nothing is read row by row: each query groups in DuckDB, and the lists
(the newest examples of each reason, the journeys one may pick) have a fixed length.
"""

from __future__ import annotations

import html
import json
import logging
import os
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from calltrail.dbt_project import project_var
from calltrail.settings import Settings

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
VENDORED = HERE.parent / "quality" / "data_docs_assets"  # Vega, Vega-Lite, vega-embed (npm, with licences)
VENDOR_FILES = (
    "vega-5.33.1/build/vega.min.js", "vega-5.33.1/LICENSE.vega-util-1.17.3",
    "vega-lite-5.23.0/build/vega-lite.min.js", "vega-lite-5.23.0/LICENSE",
    "vega-embed-6.29.0/build/vega-embed.min.js", "vega-embed-6.29.0/LICENSE",
)
OWN_FILES = ("report.js", "report.css")  # beside this module, in page_assets/
ASSETS = "assets"  # the page's folder for scripts and styles: relative paths only

EXAMPLES = 10  # newest examples per reason a call did not merge
CAMPAIGNS = 20  # campaigns shown; the rest are counted together
PEOPLE_JOURNEYS = 30  # newest journeys of people, of anonymous visitors and of opportunities
VISITOR_JOURNEYS = 20
OPPORTUNITY_JOURNEYS = 30
JOURNEY_TOUCHPOINTS = 60  # at most this many touchpoints of one journey, the earliest
TREND_RUNS = 100  # newest runs on the trend lines

# The run history's recorded figures (calltrail.quality.trends).
TREND_METRICS = ("match_rate_all", "missing_bizible_id_share_all", "quarantined_rows_new")

OTHER_CHANNEL = "Other"  # the channel when no rule of channel_rules matches
NO_CAMPAIGN = "(no campaign)"
NO_SUBCHANNEL = "(none)"

REASONS = (  # why a call did not merge into a web session: key, label
    ("outside_window", "outside the window: the call came too long after its session's start"),
    ("no_session", "no session: the BizibleId has no web session before the call"),
    ("session_converted", "session already converted: an earlier conversion owns the session"),
    ("missing", "BizibleId missing on the Task"),
    ("invalid_format", "BizibleId malformed"),
)


@dataclass(frozen=True)
class Written:
    index: Path
    bytes: int
    seconds: float


def index_file(settings: Settings) -> Path:
    return settings.report_dir / "index.html"


def _has(con: Any, schema: str, table: str) -> bool:
    return con.has_table(schema, table)


def _json(value: Any) -> Any:
    """For the page's JSON: a DECIMAL as a number (the tables show the exact value)."""
    if isinstance(value, Decimal):
        return float(value)
    return str(value)


def _time(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%dT%H:%M:%S")
    return str(value)


def _rows(con: Any, sql: str, params: list | None = None) -> list[dict[str, Any]]:
    cur = con.execute(sql, params or [])
    names = [d[0] for d in cur.description]
    return [{n: (_time(v) if isinstance(v, datetime) else v) for n, v in zip(names, row, strict=True)}
            for row in cur.fetchall()]


def _minute_buckets(window: int) -> list[tuple[str, int | None, int | None]]:
    """(label, above minutes, up to minutes) for the calls outside the window."""
    edges = [window] + [m for m in (60, 120, 240, 480, 1440, 2880, 10080) if m > window] + [None]

    def name(m: int) -> str:
        return f"{m} min" if m < 120 else f"{m // 60} h" if m < 2880 else f"{m // 1440} days"

    out = []
    for low, high in zip(edges, edges[1:], strict=False):
        out.append((f"{name(low)} to {name(high)}" if high else f"over {name(low)}", low, high))
    return out


def collect(con: Any, settings: Settings, schema: str | None = None) -> dict[str, Any]:
    """Everything the page shows, from the publish schema (or ``schema``) and the run history."""
    schema = schema or settings.publish_schema
    if not _has(con, schema, "rpt_call_match_rates"):
        return {"published": False}
    d: dict[str, Any] = {"published": True, "schema": schema}
    [d["rates"]] = _rows(con, f"select * from {schema}.rpt_call_match_rates")
    d["touchpoints"] = con.execute(f"select count(*) from {schema}.fct_touchpoints").fetchone()[0]
    d["channels"] = _rows(con, f"""
        select marketing_channel as channel, cast(sum(touchpoints) as bigint) as touchpoints,
               cast(sum(calls) as bigint) as calls
        from {schema}.rpt_touchpoints_by_channel group by 1 order by 2 desc, 1""")
    task_only = dict(con.execute(f"select marketing_channel, count(*) from {schema}.fct_touchpoints "
                                 "where touchpoint_origin = 'task_only' group by 1").fetchall())
    for c in d["channels"]:
        c["task_only"] = task_only.get(c["channel"], 0)
    d["subchannels"] = _rows(con, f"""
        select marketing_channel as channel, coalesce(marketing_subchannel, '{NO_SUBCHANNEL}') as subchannel,
               count(*) as touchpoints, count(task_id) as task_touchpoints
        from {schema}.fct_touchpoints group by 1, 2 order by 3 desc, 1, 2""")
    d["types"] = _rows(con, f"""
        select touchpoint_type as type, cast(sum(touchpoints) as bigint) as touchpoints,
               cast(sum(calls) as bigint) as calls
        from {schema}.rpt_touchpoints_by_channel group by 1 order by 2 desc, 1""")
    campaigns = _rows(con, f"""
        select coalesce(campaign, '{NO_CAMPAIGN}') as campaign, count(*) as touchpoints,
               count(task_id) as task_touchpoints
        from {schema}.fct_touchpoints group by 1 order by 2 desc, 1""")
    d["campaigns"] = campaigns[:CAMPAIGNS]
    rest = campaigns[CAMPAIGNS:]
    d["campaigns_rest"] = {"campaigns": len(rest), "touchpoints": sum(r["touchpoints"] for r in rest),
                           "task_touchpoints": sum(r["task_touchpoints"] for r in rest)}
    d["not_merged"] = _not_merged(con, schema, d["rates"])
    d["revenue"] = _revenue(con, schema, settings)
    d["trend"] = _trend(con, settings)
    d["journeys"] = _journeys(con, schema, settings, d["revenue"]["built"])
    return d


def _not_merged(con: Any, schema: str, r: dict[str, Any]) -> dict[str, Any]:
    counts = {"outside_window": r["calls_outside_window"], "no_session": r["calls_without_session"],
              "session_converted": r["calls_within_window"] - r["calls_matched_to_session"],
              "missing": r["calls_missing_bizible_id"], "invalid_format": r["calls_invalid_bizible_id"]}
    window = int(project_var("calltrail__call_window_minutes"))
    buckets = _minute_buckets(window)
    cases = " ".join(f"when minutes <= {high} then {i}" for i, (_, _, high) in enumerate(buckets) if high)
    seen = dict(con.execute(f"""
        select case {cases} else {len(buckets) - 1} end as bucket, count(*)
        from (select seconds_after_session_start / 60.0 as minutes from {schema}.fct_touchpoints
              where touchpoint_origin = 'task_only' and match_status = 'outside_window'
                and seconds_after_session_start is not null) as outside
        group by 1""").fetchall())
    minutes = [{"bucket": label, "tasks": int(seen.get(i, 0))} for i, (label, _, _) in enumerate(buckets)]
    examples: dict[str, list[dict[str, Any]]] = {k: [] for k, _ in REASONS}
    # The newest examples of each reason (row_number in a subquery: PostgreSQL has no QUALIFY).
    for row in _rows(con, f"""
            select reason, task_id, bizible_id, type, subject, call_at, seconds_after_session_start from (
                select case when match_status = 'matched' then 'session_converted' else match_status end as reason,
                       task_id, bizible_id, touchpoint_type as type, ad_content as subject, touchpoint_at as call_at,
                       seconds_after_session_start,
                       row_number() over (partition by match_status order by touchpoint_at desc, task_id) as pick
                from {schema}.fct_touchpoints where touchpoint_origin = 'task_only'
            ) as ranked
            where pick <= {EXAMPLES}
            order by reason, call_at desc, task_id"""):
        examples.setdefault(row["reason"], []).append(row)
    for row in _rows(con, f"""
            select reason, task_id, bizible_id, type, subject, call_at, seconds_after_session_start from (
                select reason, task_id, bizible_id_raw as bizible_id, task_type as type, subject, call_at,
                       cast(null as bigint) as seconds_after_session_start,
                       row_number() over (partition by reason order by call_at desc nulls last, task_id) as pick
                from {schema}.dq_calls_missing_bizible_id
            ) as ranked
            where pick <= {EXAMPLES}
            order by reason, call_at desc nulls last, task_id"""):
        examples.setdefault(row["reason"], []).append(row)
    return {"counts": counts, "window_minutes": window, "minutes": minutes, "examples": examples}


def _revenue(con: Any, schema: str, settings: Settings) -> dict[str, Any]:
    if not (_has(con, schema, "rpt_revenue_by_channel") and _has(con, schema, "fct_attribution")):
        return {"built": False}
    models = [m for m in project_var("calltrail__attribution_models")]
    rows = _rows(con, f"""
        select model, marketing_channel as channel, currency_iso_code as currency,
               coalesce(sum(attributed_pipeline), 0) as pipeline, coalesce(sum(attributed_won_revenue), 0) as won
        from {schema}.rpt_revenue_by_channel where grouped_by = 'channel'
        group by 1, 2, 3 order by 1, 3, 4 desc, 5 desc, 2""")
    by_model = {m: [r for r in rows if r["model"] == m] for m in models}
    default = settings.summary_model if settings.summary_model in models else models[0]
    unattributed = _rows(con, f"""select reason, count(*) as opportunities from {schema}.dq_opportunities_unattributed
                                  group by 1 order by 2 desc, 1""")
    attributed = con.execute(f"select count(distinct opportunity_id) from {schema}.fct_attribution").fetchone()[0]
    return {"built": True, "models": models, "default": default, "by_model": by_model,
            "opportunities_attributed": attributed, "unattributed": unattributed}


def _trend(con: Any, settings: Settings) -> dict[str, Any]:
    if not _has(con, *settings.run_metrics.split(".")):
        return {"runs": []}
    picks = ", ".join(f"max(case when metric = '{m}' then value end) as {m}" for m in TREND_METRICS)
    listed = ", ".join(f"'{m}'" for m in TREND_METRICS)
    runs = _rows(con, f"""
        select run_id, max(measured_at) as measured_at, bool_and(passed) as passed, {picks}
        from {settings.run_metrics} group by run_id
        having count(case when metric in ({listed}) then 1 end) > 0
        order by measured_at desc, run_id desc limit {TREND_RUNS}""")
    return {"runs": list(reversed(runs))}


# The names _journey_columns gives its columns, to select them again from a subquery.
JOURNEY_NAMES = ("touchpoint_id, touchpoint_at, type, origin, channel, source, campaign, position, bizible_id, "
                 "person_id, session_id, seconds_after_session_start, match_status")


def _journey_columns(t: str) -> str:
    """The touchpoint columns a journey shows, of the table aliased ``t``."""
    return (f"{t}.touchpoint_id, {t}.touchpoint_at, {t}.touchpoint_type as type, {t}.touchpoint_origin as origin, "
            f"{t}.marketing_channel as channel, {t}.touchpoint_source as source, {t}.campaign, "
            f"{t}.touchpoint_position as position, {t}.bizible_id, {t}.person_id, {t}.session_id, "
            f"{t}.seconds_after_session_start, {t}.match_status")


def _journeys(con: Any, schema: str, settings: Settings, revenue_built: bool) -> dict[str, Any]:
    """A bounded set of journeys: the newest people's and anonymous visitors' (by their latest
    touchpoint) and the newest opportunities', each with its earliest touchpoints."""
    rows = _rows(con, f"""
        with keyed as (
            select *, coalesce(person_id, bizible_id) as journey, person_id is null as anonymous
            from {schema}.fct_touchpoints
        ),
        newest as (
            select journey, anonymous, max(touchpoint_at) as last_at from keyed group by 1, 2
        ),
        ranked as (
            select journey, anonymous,
                   row_number() over (partition by anonymous order by last_at desc, journey) as pick
            from newest
        ),
        chosen as (
            select journey, anonymous from ranked
            where pick <= case when anonymous then {VISITOR_JOURNEYS} else {PEOPLE_JOURNEYS} end
        ),
        earliest as (
            select keyed.journey, keyed.anonymous, {_journey_columns("keyed")},
                   row_number() over (partition by keyed.journey order by keyed.touchpoint_at, keyed.touchpoint_id)
                       as pick
            from keyed join chosen on keyed.journey = chosen.journey and keyed.anonymous = chosen.anonymous
        )
        select journey, anonymous, {JOURNEY_NAMES}
        from earliest where pick <= {JOURNEY_TOUCHPOINTS}
        order by anonymous, journey, touchpoint_at, touchpoint_id""")
    journeys: dict[str, dict[str, Any]] = {}
    for r in rows:
        kind = "visitor" if r.pop("anonymous") else "person"
        key = f"{kind}:{r.pop('journey')}"
        j = journeys.setdefault(key, {"id": key, "kind": kind, "name": key.split(":", 1)[1],
                                      "keys": [], "touchpoints": []})
        j["touchpoints"].append(r)
    if revenue_built:
        model = settings.summary_model
        opp_rows = _rows(con, f"""
            with opportunity as (
                select a.opportunity_id, max(t.touchpoint_at) as last_at
                from {schema}.fct_attribution as a join {schema}.fct_touchpoints as t on a.touchpoint_id = t.touchpoint_id
                where a.model = ? group by 1
                order by last_at desc, a.opportunity_id limit {OPPORTUNITY_JOURNEYS}
            )
            ,
            earliest as (
                select a.opportunity_id, a.opportunity_positions as opportunity_position, a.credit,
                       a.attributed_amount, a.currency_iso_code as currency, {_journey_columns("t")},
                       row_number() over (partition by a.opportunity_id order by t.touchpoint_at, t.touchpoint_id)
                           as pick
                from {schema}.fct_attribution as a
                join opportunity as o on a.opportunity_id = o.opportunity_id
                join {schema}.fct_touchpoints as t on a.touchpoint_id = t.touchpoint_id
                where a.model = ?
            )
            select opportunity_id, opportunity_position, credit, attributed_amount, currency,
                   {JOURNEY_NAMES}
            from earliest where pick <= {JOURNEY_TOUCHPOINTS}
            order by opportunity_id, touchpoint_at, touchpoint_id""", [model, model])
        for r in opp_rows:
            key = f"opportunity:{r.pop('opportunity_id')}"
            j = journeys.setdefault(key, {"id": key, "kind": "opportunity", "name": key.split(":", 1)[1],
                                          "model": model, "keys": [], "touchpoints": []})
            j["touchpoints"].append(r)
    for j in journeys.values():
        # A person is found by its id and the BizibleIds of its web touchpoints (those linked to it; a
        # task-only touchpoint may carry another visitor's BizibleId); an opportunity by its id.
        keys = {j["name"]}
        if j["kind"] == "person":
            keys |= {t["bizible_id"] for t in j["touchpoints"] if t["bizible_id"] and t["origin"] != "task_only"}
        j["keys"] = sorted(keys)
    ordered = sorted(journeys.values(), key=lambda j: ({"person": 0, "opportunity": 1, "visitor": 2}[j["kind"]],
                                                        -len(j["touchpoints"]), j["name"]))
    default = ordered[0]["id"] if ordered else None
    return {"list": ordered, "default": default,
            "bounds": {"people": PEOPLE_JOURNEYS, "visitors": VISITOR_JOURNEYS,
                       "opportunities": OPPORTUNITY_JOURNEYS, "touchpoints": JOURNEY_TOUCHPOINTS}}


# ---------------------------------------------------------------------------------------------- HTML

def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _int(n: Any) -> str:
    return f"{int(n or 0):,}"


def _pct(part: Any, whole: Any) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "-"


def _share(value: Any) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _money(value: Any) -> str:
    return f"{Decimal(str(value or 0)):,.2f}"  # str: a float (DOUBLE column) as it prints


def _table(name: str, head: list[str], rows: list[list[str]], keys: list[str] | None = None,
           extra: str = "") -> str:
    cells = "".join(f"<th>{_e(h)}</th>" for h in head)
    body = []
    for i, row in enumerate(rows):
        key = f' data-key="{_e(keys[i])}"' if keys else ""
        body.append(f"<tr{key}>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>")
    return (f'<table class="numbers" data-table="{_e(name)}"{extra}><thead><tr>{cells}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table>")


def _chart(name: str) -> str:
    return f'<div class="chart" data-chart="{_e(name)}"></div>'


def _section(anchor: str, title: str, intro: str, body: str) -> str:
    return f'<section id="{anchor}"><h2>{_e(title)}</h2><p class="intro">{intro}</p>{body}</section>'


def render(d: dict[str, Any], *, data_label: str, generated_at: datetime) -> str:
    if not d.get("published"):
        body = ('<section id="nothing"><h2>Nothing published yet</h2><p>No run has passed its checks, so there '
                "are no published marts to show. Run <code>make run</code>.</p></section>")
        return _page(body, {}, data_label, generated_at)
    r = d["rates"]
    headline = (
        '<div class="tiles">'
        + "".join(f'<div class="tile" data-tile="{k}"><div class="value">{v}</div><div class="label">{_e(label)}</div></div>'
                  for k, v, label in (
                      ("calls", _int(r["calls"]), "call Tasks"),
                      ("matched", _int(r["calls_matched_to_session"]), "calls matched to a web session"),
                      ("match_rate", _share(r["match_rate"]), "match rate (of calls with a valid BizibleId)"),
                      ("missing", _share(r["missing_bizible_id_rate"]), "calls missing a valid BizibleId"),
                      ("touchpoints", _int(d["touchpoints"]), "touchpoints")))
        + "</div>")
    sections = [headline, _channels(d), _types_and_campaigns(d), _revenue_html(d["revenue"]), _trend_html(d["trend"]),
                _not_merged_html(d["not_merged"]), _journey_html(d["journeys"])]
    return _page("".join(sections), _chart_data(d), data_label, generated_at)


def _channels(d: dict[str, Any]) -> str:
    channels = _table("channels", ["channel", "touchpoints", "calls", "task-only"],
                      [[_e(c["channel"]), _int(c["touchpoints"]), _int(c["calls"]), _int(c["task_only"])]
                       for c in d["channels"]],
                      [c["channel"] for c in d["channels"]])
    other = next((c for c in d["channels"] if c["channel"] == OTHER_CHANNEL), None)
    other_note = (f" <b>{OTHER_CHANNEL}</b> holds {other['task_only']:,} task-only touchpoint(s) of its "
                  f"{other['touchpoints']:,}: Tasks without a web session to take a channel from."
                  if other and other["task_only"] else "")
    subs = _table("subchannels", ["channel", "subchannel", "touchpoints", "from Tasks"],
                  [[_e(s["channel"]), _e(s["subchannel"]), _int(s["touchpoints"]), _int(s["task_touchpoints"])]
                   for s in d["subchannels"]],
                  [f"{s['channel']} / {s['subchannel']}" for s in d["subchannels"]])
    return _section(
        "channels", "Calls and touchpoints by channel",
        "A touchpoint is a call joined to its web session, a call without one (task-only), a form fill or a "
        "first web visit. A task-only touchpoint takes its channel from the Task, not from web data."
        + other_note + " <i>from Tasks</i> counts the touchpoints made from Salesforce Tasks (calls, and other "
        "Tasks that carry a BizibleId).",
        f'<div class="pair">{_chart("channels")}{channels}</div>'
        f'<h3>by channel and subchannel</h3><div class="pair">{_chart("subchannels")}{subs}</div>')


def _types_and_campaigns(d: dict[str, Any]) -> str:
    types = _table("types", ["touchpoint type", "touchpoints", "calls"],
                   [[_e(t["type"]), _int(t["touchpoints"]), _int(t["calls"])] for t in d["types"]],
                   [t["type"] for t in d["types"]])
    rest = d["campaigns_rest"]
    campaigns = _table("campaigns", ["campaign", "touchpoints", "from Tasks"],
                       [[_e(c["campaign"]), _int(c["touchpoints"]), _int(c["task_touchpoints"])] for c in d["campaigns"]],
                       [c["campaign"] for c in d["campaigns"]])
    more = (f'<p class="note" data-note="campaigns-rest">{rest["campaigns"]:,} more campaign(s) with '
            f'{rest["touchpoints"]:,} touchpoint(s) are not listed.</p>' if rest["campaigns"] else "")
    return _section(
        "types", "By touchpoint type and by campaign",
        "A call's type is its Task's Type as the org wrote it, so <i>Call</i>, <i>Inbound Call</i> and "
        "<i>Phone Call</i> are separate rows. A call whose Task has no Type is typed <i>Web Visit</i>, as "
        "Marketo Measure does: it is counted in the <i>calls</i> column of that row.",
        f'<div class="pair">{_chart("types")}{types}</div>'
        f'<h3>by campaign (utm_campaign of the session; the {CAMPAIGNS} largest)</h3>'
        f'<div class="pair">{_chart("campaigns")}{campaigns}</div>{more}')


def _revenue_html(rev: dict[str, Any]) -> str:
    if not rev["built"]:
        return _section("revenue", "Revenue by channel",
                        '<span data-note="revenue-not-built">The revenue marts (fct_attribution, '
                        "rpt_revenue_by_channel) are not built yet: they appear once Opportunities reach the "
                        "warehouse and a run publishes them.</span>", "")
    options = "".join(f'<option value="{_e(m)}"{" selected" if m == rev["default"] else ""}>{_e(m)}</option>'
                      for m in rev["models"])
    tables = "".join(
        _table("revenue", ["channel", "currency", "attributed pipeline", "attributed won revenue"],
               [[_e(x["channel"]), _e(x["currency"]), _money(x["pipeline"]), _money(x["won"])] for x in rows],
               [f"{x['channel']} / {x['currency']}" for x in rows],
               extra=f' data-model="{_e(m)}"' + ("" if m == rev["default"] else " hidden"))
        for m, rows in rev["by_model"].items())
    unattributed = sum(u["opportunities"] for u in rev["unattributed"])
    reasons = ", ".join(f"{u['opportunities']:,} {_e(u['reason'])}" for u in rev["unattributed"])
    return _section(
        "revenue", "Revenue by channel",
        f"Each opportunity's amount is credited to its people's touchpoints by the attribution model. "
        f"{rev['opportunities_attributed']:,} opportunities are attributed"
        + (f"; {unattributed:,} are not ({reasons}: see dq_opportunities_unattributed)" if unattributed else "")
        + ". Amounts are never added across currencies.",
        f'<label class="switch">attribution model <select id="model">{options}</select></label>'
        f'<div class="pair">{_chart("revenue")}<div>{tables}</div></div>')


def _trend_html(trend: dict[str, Any]) -> str:
    runs = trend["runs"]
    if not runs:
        return _section("trend", "Data quality over time", "No run has recorded its figures yet.", "")
    table = _table("trend", ["run", "measured at (UTC)", "published", "match rate", "missing BizibleId",
                             "quarantined rows"],
                   [[_e(x["run_id"]), _e((x["measured_at"] or "").replace("T", " ")), "yes" if x["passed"] else "no",
                     _share(x["match_rate_all"]), _share(x["missing_bizible_id_share_all"]),
                     "-" if x["quarantined_rows_new"] is None else _int(x["quarantined_rows_new"])] for x in runs],
                   [x["run_id"] for x in runs])
    return _section(
        "trend", "Data quality over time",
        "One point per run of calltrail_transform (the newest "
        f"{TREND_RUNS}), as its audit measured the build: the match rate and the share of calls missing a valid "
        "BizibleId over every call, and the rows quarantined at ingestion since the previous run. A run that "
        "failed its checks published nothing; its figures are shown all the same.",
        f'<div class="trio">{_chart("trend_match_rate")}{_chart("trend_missing")}{_chart("trend_quarantine")}</div>'
        f"{table}")


def _not_merged_html(nm: dict[str, Any]) -> str:
    labels = dict(REASONS)
    counts = _table("not_merged", ["reason", "calls"],
                    [[_e(labels[k]), _int(nm["counts"][k])] for k, _ in REASONS], [k for k, _ in REASONS])
    minutes = _table("outside_minutes", ["minutes after the session's start", "Tasks"],
                     [[_e(m["bucket"]), _int(m["tasks"])] for m in nm["minutes"]], [m["bucket"] for m in nm["minutes"]])
    examples = []
    for key, label in REASONS:
        rows = nm["examples"].get(key, [])
        if not rows:
            continue
        examples.append(f"<h4>{_e(label)}: the newest {len(rows)}</h4>" + _table(
            f"examples_{key}", ["call time (UTC)", "Task", "BizibleId", "Type", "Subject", "minutes after session start"],
            [[_e((x["call_at"] or "").replace("T", " ")), _e(x["task_id"]), _e(x["bizible_id"]), _e(x["type"]),
              _e(x["subject"]),
              "" if x["seconds_after_session_start"] is None else f"{x['seconds_after_session_start'] / 60:,.0f}"]
             for x in rows], [x["task_id"] for x in rows]))
    return _section(
        "not-merged", "Why calls did not merge into a web session",
        f"A call merges when it came at most {nm['window_minutes']} minutes after the start of the caller's "
        "latest web session and no earlier conversion owns that session. The others become task-only "
        "touchpoints (channel from the Task, no web data), or no touchpoint at all when the BizibleId is "
        "missing or malformed (the list for the call-tracking vendor: dq_calls_missing_bizible_id).",
        f'<div class="pair">{_chart("not_merged")}{counts}</div>'
        f"<h3>outside the window: how long after the session's start (task-only Tasks)</h3>"
        f'<div class="pair">{_chart("outside_minutes")}{minutes}</div>'
        f'<h3>the newest examples</h3>{"".join(examples)}')


def _journey_html(j: dict[str, Any]) -> str:
    b = j["bounds"]
    keys = sorted({k for x in j["list"] for k in x["keys"]})
    options = "".join(f'<option value="{_e(k)}"></option>' for k in keys)
    choices = "".join(f'<option value="{_e(x["id"])}">{_e(x["kind"])} {_e(x["name"])} '
                      f'({len(x["touchpoints"])} touchpoints)</option>' for x in j["list"])
    return _section(
        "journey", "One journey",
        f"A person's touchpoints over all their BizibleIds, an anonymous visitor's, or an opportunity's "
        f"(its people's touchpoints up to its close, with the opportunity's positions and credit). The page "
        f"carries the newest {b['people']} people, {b['visitors']} anonymous visitors and {b['opportunities']} "
        f"opportunities (each with its first {b['touchpoints']} touchpoints): search by BizibleId, person or "
        "opportunity id, or pick one. A bar runs from the start of a call's web session (for a task-only call, "
        "the session it came too late for or that an earlier conversion owns) to the call.",
        f'<div class="search"><input id="journey-search" list="journey-keys" placeholder="BizibleId, person or '
        f'opportunity id" size="40"><datalist id="journey-keys">{options}</datalist>'
        f'<select id="journey-pick">{choices}</select> <span id="journey-status"></span></div>'
        f'<h3 id="journey-title"></h3>{_chart("journey")}'
        '<table class="numbers" data-table="journey"><thead></thead><tbody></tbody></table>')


def _chart_data(d: dict[str, Any]) -> dict[str, Any]:
    return {k: d[k] for k in ("channels", "subchannels", "types", "campaigns", "revenue", "trend", "not_merged",
                              "journeys")}


def _page(body: str, data: dict[str, Any], data_label: str, generated_at: datetime) -> str:
    scripts = "".join(f'<script src="{ASSETS}/{Path(f).name}"></script>' for f in VENDOR_FILES if f.endswith(".js"))
    payload = json.dumps(data, separators=(",", ":"), default=_json).replace("</", "<\\/")
    nav = "".join(f'<a href="#{a}">{_e(t)}</a>' for a, t in (
        ("channels", "channels"), ("types", "types and campaigns"), ("revenue", "revenue"),
        ("trend", "over time"), ("not-merged", "why not merged"), ("journey", "one journey")))
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>calltrail report</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="{ASSETS}/report.css">{scripts}</head>
<body><header><h1>calltrail: calls, touchpoints and revenue</h1>
<p class="meta">from the published marts; {_e(data_label)}; written {generated_at:%Y-%m-%d %H:%M:%S} UTC</p>
<nav>{nav}</nav></header><main>{body}</main>
<script type="application/json" id="report-data">{payload}</script>
<script src="{ASSETS}/report.js"></script></body></html>
"""


# ---------------------------------------------------------------------------------------------- write

def _copy_assets(target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    sources = [(VENDORED / f, target / (Path(f).name if f.endswith(".js") else f"{f.split('/')[0]}.{Path(f).name}"))
               for f in VENDOR_FILES]
    sources += [(HERE / "page_assets" / f, target / f) for f in OWN_FILES]
    for source, dest in sources:
        if not dest.exists() or dest.stat().st_size != source.stat().st_size or \
                dest.read_bytes() != source.read_bytes():
            shutil.copyfile(source, dest)


def write(settings: Settings, *, con: Any = None, schema: str | None = None, read_only: bool = True) -> Written:
    """Write ``index.html`` and its assets into ``CALLTRAIL_REPORT_DIR`` (the page replaced in one rename),
    from the publish schema (or ``schema``)."""
    import time

    from calltrail.demo.apart import describe
    from calltrail.warehouse.target import open_warehouse

    started = time.monotonic()
    own = con is None
    if own:
        # DuckDB: waits (bounded) while another process holds the file, then fails naming it;
        # PostgreSQL, a Spark Thrift Server: the same for another calltrail process's writers' lock (unless read-only)
        con = open_warehouse(settings, read_only=read_only, doing="the report page")
    try:
        data = collect(con, settings, schema)
    finally:
        if own:
            con.close()
    page = render(data, data_label=describe(settings), generated_at=datetime.now(UTC))
    folder = settings.report_dir
    _copy_assets(folder / ASSETS)
    index = folder / "index.html"
    tmp = index.with_name(f".index.html.{os.getpid()}.tmp")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(index)
    written = Written(index, len(page.encode()), time.monotonic() - started)
    # said once, by the caller (the publish task's result, `calltrail report`'s line)
    log.debug("report page written: %s (%d bytes in %.1f s)", index, written.bytes, written.seconds)
    return written
