"""End to end: the people and the attribution of the demo run (the same `calltrail run` as
test_e2e_pipeline.py, through the shared ``demo_run`` fixture) against the generator's truth,
which the attribution rules read independently of the dbt models (calltrail.demo.attribution)."""

from __future__ import annotations

from decimal import Decimal
from itertools import takewhile
from pathlib import Path

import duckdb

from calltrail.demo.generate import iter_truth_credits, iter_truth_touchpoints
from tests.airflow_env import BIN, run

TEN_PLACES = Decimal("1E-10")


def positions(value: str | None) -> tuple[str, ...]:
    """'FT, LC' and 'FT,LC' alike; '' and null alike (a middle touchpoint)."""
    return tuple(p.strip() for p in (value or "").split(",") if p.strip())


def decimal(value) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def expected_credits(landing: Path) -> set[tuple]:
    return {(c["opportunity_id"], c["touchpoint_id"], c["person_id"], positions(c["opportunity_positions"]), c["model"],
             Decimal(c["credit"]), decimal(c["attributed_amount"]), c["currency_iso_code"])
            for c in iter_truth_credits(landing)}


def expected_touchpoints(landing: Path) -> dict[str, tuple[str | None, str]]:
    return {t["touchpoint_id"]: (t["person_id"], t["touchpoint_position"]) for t in iter_truth_touchpoints(landing)}


def query(warehouse: Path, sql: str) -> tuple[list[str], list[tuple]]:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        cur = con.execute(sql)
        return [d[0] for d in cur.description], cur.fetchall()
    finally:
        con.close()


def differences(expected: set, seen: set, n: int = 5) -> str:
    return f"expected and not seen {len(expected - seen)}, e.g. {sorted(expected - seen, key=str)[:n]}; " \
           f"seen and not expected {len(seen - expected)}, e.g. {sorted(seen - expected, key=str)[:n]}"


def test_every_touchpoint_belongs_to_the_truths_person_with_its_positions_over_the_persons_journey(demo_run):
    tmp, _, _, _ = demo_run
    expected = expected_touchpoints(tmp / "data" / "landing")
    _, rows = query(tmp / "data" / "warehouse" / "calltrail.duckdb",
                    "select touchpoint_id, person_id, touchpoint_position from published.fct_touchpoints")
    seen = {r[0]: (r[1], r[2]) for r in rows}
    assert seen == expected, differences(set(expected.items()), set(seen.items()))
    assert any(person for person, _ in expected.values()) and any(not person for person, _ in expected.values())


def test_fct_attribution_holds_the_truths_credits_and_amounts_for_every_opportunity_touchpoint_and_model(demo_run):
    tmp, _, _, _ = demo_run
    expected = expected_credits(tmp / "data" / "landing")
    _, rows = query(tmp / "data" / "warehouse" / "calltrail.duckdb",
                    "select opportunity_id, touchpoint_id, person_id, opportunity_positions, model, credit, "
                    "attributed_amount, currency_iso_code from published.fct_attribution")
    seen = {(r[0], r[1], r[2], positions(r[3]), r[4], decimal(r[5]).quantize(TEN_PLACES), decimal(r[6]), r[7])
            for r in rows}
    assert len(rows) == len(seen), "fct_attribution has duplicate rows"
    assert seen == expected, differences(expected, seen)


def test_dq_opportunities_unattributed_lists_the_truths_opportunities_with_their_reasons(demo_run):
    tmp, _, _, truth = demo_run
    columns, rows = query(tmp / "data" / "warehouse" / "calltrail.duckdb",
                          "select * from published.dq_opportunities_unattributed")
    reason = next((c for c in columns if "reason" in c), None)
    assert "opportunity_id" in columns and reason, f"columns: {columns}"
    seen = {r[columns.index("opportunity_id")]: r[columns.index(reason)] for r in rows}
    assert seen == truth["people"]["unattributed"]
    assert set(seen.values()) == {"no_people", "no_touchpoints", "no_touchpoints_before_cutoff"}


def test_the_summary_counts_the_truths_attributed_and_unattributed_opportunities_and_shows_won_revenue(demo_run):
    tmp, _, first, truth = demo_run
    credits = list(iter_truth_credits(tmp / "data" / "landing"))
    attributed = len({c["opportunity_id"] for c in credits})
    unattributed = truth["people"]["unattributed"]
    reasons = {r: sum(1 for v in unattributed.values() if v == r) for r in set(unattributed.values())}
    out = first.stdout
    assert f"opportunities attributed     {attributed:>8,}" in out, out[-3000:]
    line = next((ln for ln in out.splitlines() if "opportunities unattributed" in ln), "")
    assert f"{len(unattributed):>8,}" in line and all(f"{n:,} {r}" in line for r, n in reasons.items()), line
    _assert_revenue_lines(out, "full_path", credits)


def _assert_revenue_lines(out: str, model: str, credits: list[dict]) -> list[list[str]]:
    """The summary's revenue lines under ``model``: per currency, the pipeline of the channels adds
    up to the truth's attributed amounts under that model (each line rounded to cents)."""
    start = out.index(f"revenue by channel, {model} model")
    lines = [ln.split() for ln in takewhile(lambda ln: ln.startswith("    "), out[start:].splitlines()[2:])]
    assert lines, out[start:start + 2000]
    pipeline: dict[str, Decimal] = {}
    for *_, currency, amount, _won in lines:
        pipeline[currency] = pipeline.get(currency, Decimal(0)) + Decimal(amount.replace(",", ""))
    expected: dict[str, Decimal] = {}
    for c in credits:
        if c["model"] == model and c["attributed_amount"] is not None:
            expected[c["currency_iso_code"]] = expected.get(c["currency_iso_code"], Decimal(0)) + Decimal(c["attributed_amount"])
    assert set(pipeline) == set(expected) and len(expected) == 2, (pipeline, expected)
    assert all(abs(pipeline[k] - expected[k]) <= Decimal("0.01") * len(lines) for k in expected), (pipeline, expected)
    return lines


def test_the_summary_shows_another_models_revenue_one_command_away(demo_run):
    tmp, env, first, _ = demo_run
    credits = list(iter_truth_credits(tmp / "data" / "landing"))
    full_path = _assert_revenue_lines(first.stdout, "full_path", credits)
    out = run([str(BIN / "calltrail"), "summary", "--model", "first_touch"], env)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    first_touch = _assert_revenue_lines(out.stdout, "first_touch", credits)
    assert first_touch != full_path  # the demo's journeys have more than one touchpoint
    # the setting does the same for make run and make summary
    out = run([str(BIN / "calltrail"), "summary"], {**env, "CALLTRAIL_SUMMARY_MODEL": "u_shaped"})
    _assert_revenue_lines(out.stdout, "u_shaped", credits)
    wrong = run([str(BIN / "calltrail"), "summary", "--model", "linear"], env)
    assert wrong.returncode == 2 and "invalid choice: 'linear'" in wrong.stderr, wrong.stderr
    wrong = run([str(BIN / "calltrail"), "summary"], {**env, "CALLTRAIL_SUMMARY_MODEL": "linear"})
    assert wrong.returncode == 2 and ("CALLTRAIL_SUMMARY_MODEL='linear': use one of first_touch, lead_creation, "
                                      "u_shaped, w_shaped, full_path, custom") in wrong.stderr, wrong.stderr
