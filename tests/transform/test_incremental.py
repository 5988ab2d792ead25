"""Incremental builds give exactly the rows of a full rebuild (docs/incremental.md), on DuckDB.

The late-arriving data of tests/transform/late_data.py goes into one lake step by step. After each
step, the warehouse that `dbt build` keeps building incrementally is compared with a second one
rebuilt from scratch with `--full-refresh` on the same lake: every intermediate model and mart,
row by row. Each incremental step must also have rebuilt exactly the visitors it changed.
"""

from __future__ import annotations

import concurrent.futures
import decimal

import duckdb
import pytest

from calltrail import settings as settings_module
from calltrail.transform.dbt import BUILD_ARGS, run_dbt
from tests.airflow_env import calltrail_env
from tests.transform.engine_compare import assert_same_rows, rows_duckdb
from tests.transform.late_data import (
    ANON,
    COMPARED,
    DELETED,
    EARLY,
    GAINS,
    LATE,
    MOVED_FROM,
    MOVED_TO,
    REBUILT,
    REBUILT_JOURNEYS,
    REBUILT_OPPORTUNITIES,
    REBUILT_TASKS,
    STEPS,
    STILL,
    T_DELETED,
    T_EARLY,
    T_GAINS,
    T_LATE,
    T_MOVED,
    T_STILL,
    build_in_one_go,
    load_step,
)

BUILD = [*BUILD_ARGS]


def one(warehouse, sql: str):
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def remove_partition_of(lake_dir, event_id: str) -> None:
    """Remove the web events partition that holds ``event_id`` (as `make run` removes the demo's)."""
    import shutil
    from pathlib import Path

    con = duckdb.connect()
    found = con.execute(f"select distinct filename from read_parquet('{lake_dir}/web_events/*/*.parquet', "
                        "filename = true) where event_id = ?", [event_id]).fetchall()
    con.close()
    assert len(found) == 1, found
    shutil.rmtree(Path(found[0][0]).parent)


@pytest.fixture(scope="module")
def steps(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("incremental")
    env = calltrail_env(tmp)
    incremental = settings_module.load(env)
    full = settings_module.load({**env, "CALLTRAIL_WAREHOUSE": str(tmp / "full" / "calltrail.duckdb"),
                                 "CALLTRAIL_DBT_TARGET_DIR": str(tmp / "full" / "dbt_target")})
    seen = []
    # Each step's build from scratch runs in a dbt process beside the incremental build (its own
    # warehouse and target folder; both only read the lake): dbt's work holds one core.
    with concurrent.futures.ThreadPoolExecutor(1) as beside:
        for number in range(len(STEPS) + 1):
            if number < len(STEPS):
                load_step(incremental, number)
            else:  # then rows leave the lake: the partition of step 2's web events is removed
                remove_partition_of(incremental.lake_dir, "e9")
            from_scratch = beside.submit(build_in_one_go, full, in_process=False)
            run_dbt(incremental, BUILD, in_process=True)
            from_scratch.result()
            seen.append({
                "increment": one(incremental.warehouse, "select mode, reason from int_increment")[0],
                "rebuilt": {r[0] for r in one(incremental.warehouse, "select bizible_id from int_changed_visitors")},
                "journeys": {r[0] for r in one(incremental.warehouse, "select journey_key from int_changed_journeys")},
                "opportunities": {r[0] for r in one(incremental.warehouse,
                                                    "select opportunity_id from int_changed_opportunities")},
                "tasks": {r[0] for r in one(incremental.warehouse, "select task_id from int_changed_tasks")},
                "rebuilt_events": sorted(one(incremental.warehouse, "select event_id, bizible_id from int_rebuilt_web_events")),
                "events": sorted(one(incremental.warehouse, "select event_id, bizible_id from stg_web__events")),
                "full_increment": one(full.warehouse, "select mode, reason from int_increment")[0],
                "models": {m: (rows_duckdb(incremental.warehouse, m), rows_duckdb(full.warehouse, m)) for m in COMPARED},
            })
    return seen


@pytest.mark.parametrize("step", range(len(STEPS) + 1),
                         ids=[*(f"step{n + 1}" for n in range(len(STEPS))), "rows_removed"])
@pytest.mark.parametrize("model", COMPARED)
def test_each_step_built_incrementally_equals_a_full_refresh(steps, step, model):
    incremental, full = steps[step]["models"][model]
    (columns, rows), (full_columns, full_rows) = incremental, full
    assert columns == full_columns
    only_incremental, only_full = rows - full_rows, full_rows - rows
    assert (sum(only_incremental.values()), sum(only_full.values())) == (0, 0), (
        f"step {step + 1}: only incremental {list(only_incremental)[:3]}; only full {list(only_full)[:3]}")


def test_the_fixtures_reach_every_model_that_is_compared(steps):
    """A comparison of empty tables proves nothing: by the last step every compared model has rows
    (the data-quality lists may be empty)."""
    last = steps[-1]["models"]
    for model in COMPARED:
        assert_same_rows(model, last[model][1], last[model][0], "incremental")


def test_the_first_run_is_full_and_each_later_step_rebuilds_only_what_it_changed(steps):
    """The visitors, the journeys, the opportunities and the Tasks that late_data.py says each step
    reaches."""
    assert steps[0]["increment"] == ("full", "first run: no int_increment_state yet")
    for number, step in enumerate(steps[1:len(STEPS)], start=1):
        assert step["increment"] == ("incremental", "what new lake rows and CRM changes reach since the last run"), number
        assert step["rebuilt"] == REBUILT[number], f"step {number + 1}"
        assert step["journeys"] == REBUILT_JOURNEYS[number], f"step {number + 1}"
        assert step["opportunities"] == REBUILT_OPPORTUNITIES[number], f"step {number + 1}"
        assert step["tasks"] == REBUILT_TASKS[number], f"step {number + 1}"
        assert STILL not in step["rebuilt"] | step["journeys"]


def test_an_incremental_step_reads_the_rebuilt_visitors_events_and_a_full_one_none(steps):
    """int_rebuilt_web_events: every web event of the visitors a step rebuilds, and nothing else;
    empty on a full run, whose sessions read every event of stg_web__events."""
    for number, step in enumerate(steps[1:len(STEPS)], start=1):
        expected = [(event_id, visitor) for event_id, visitor in step["events"] if visitor in REBUILT[number]]
        assert step["rebuilt_events"] == expected, f"step {number + 1}"
    assert any(step["rebuilt_events"] for step in steps[1:len(STEPS)]), "no step rebuilds a visitor with web events"
    assert steps[0]["rebuilt_events"] == steps[-1]["rebuilt_events"] == [], "full runs"


def test_when_rows_leave_the_lake_every_visitor_is_rebuilt_and_the_run_says_why(steps):
    """The demo removed when your data arrives, a partition replaced: the visitors of rows that
    are gone cannot be found, so the run is a full one (and equals a full refresh, above)."""
    assert steps[-1]["increment"] == (
        "full", "rows left the lake since the last run (removed demo data or a replaced partition)")


def test_full_refresh_rebuilds_everything_and_says_why(steps):
    assert {s["full_increment"] for s in steps[1:]} == {("full", "dbt ran with --full-refresh")}


def calls(step) -> dict[str, tuple[str, str]]:
    """int_calls_matched_to_sessions after a step, incremental: Task -> (BizibleId, match status)."""
    columns, rows = step["models"]["int_calls_matched_to_sessions"][0]
    found = [dict(zip(columns, row, strict=True)) for row in rows]
    return {r["task_id"]: (r["bizible_id"], r["match_status"]) for r in found}


def test_the_cases_change_the_call_matches_as_late_data_py_says(steps):
    """The fixtures do what they are meant to, so the equality above covers each case."""
    first, late, gained, last = (calls(s) for s in steps[:4])
    assert first[T_LATE] == (LATE, "matched") and late[T_LATE] == (LATE, "outside_window")
    assert first[T_EARLY] == (EARLY, "no_session") and late[T_EARLY] == (EARLY, "matched")
    assert T_GAINS not in late and gained[T_GAINS] == (GAINS, "matched")
    assert gained[T_DELETED] == (DELETED, "matched") and T_DELETED not in last
    assert gained[T_MOVED] == (MOVED_FROM, "outside_window") and last[T_MOVED] == (MOVED_TO, "matched")
    assert first[T_STILL] == last[T_STILL] == (STILL, "matched")


def test_the_crm_step_moves_a_journey_and_changes_an_amount(steps):
    """Step 5 changes only the CRM: ANON's touchpoints become Lead L2's, and O1's attributed amounts
    follow its new amount (per model they sum to it)."""
    def table(step, model):
        columns, rows = steps[step]["models"][model][0]
        return [dict(zip(columns, row, strict=True)) for row in rows.elements()]

    before, after = 3, 4
    assert {t["person_id"] for t in table(before, "fct_touchpoints") if t["bizible_id"] == ANON} == {None}
    assert {t["person_id"] for t in table(after, "fct_touchpoints") if t["bizible_id"] == ANON} == {"L2"}
    for step, amount in ((before, "1000"), (after, "1200")):
        totals = {}
        for row in table(step, "fct_attribution"):
            if row["opportunity_id"] == "O1":
                totals[row["model"]] = totals.get(row["model"], 0) + decimal.Decimal(row["attributed_amount"][1])
        assert totals and set(totals.values()) == {decimal.Decimal(amount)}, (step, totals)
