"""A change of the rules makes the next build a full one (docs/incremental.md, "Full rebuilds").

The incremental models' rows were built with the rules of their run. When a var they read, a seed,
their SQL or a macro that SQL calls changes, `int_increment` must say `full`, so that no table mixes
rows of old and new rules, and the full run recreates their tables, so that a new column arrives;
a change elsewhere (a publish macro) must leave the next run incremental.
Each step changes one thing in a copy of the dbt project and builds the same small warehouse again.
"""

from __future__ import annotations

import json
import re
import shutil

import duckdb
import pytest

from calltrail import settings as settings_module
from calltrail.transform.dbt import _invoke_here, dbt_env, project_args
from tests.airflow_env import calltrail_env
from tests.transform.late_data import load_step
from tests.transform.test_incremental import one

RULES = "the rules changed since the last run (a var, a seed, an incremental model or a macro it calls)"
INCREMENTAL = ("incremental", "what new lake rows and CRM changes reach since the last run")


def edit(path, old: str, new: str) -> None:
    text = path.read_text()
    assert text.count(old) == 1, f"{old!r} is not once in {path}"
    path.write_text(text.replace(old, new))


def edit_macro(path, name: str) -> None:
    """Add a comment to the body of macro ``name``: its SQL changes, not what it renders."""
    text = path.read_text()
    match = re.search(r"{%-? macro " + name + r"\(.*?%}", text, flags=re.S)
    assert match, f"no macro {name} in {path}"
    path.write_text(text[:match.end()] + "{#- changed -#}" + text[match.end():])


@pytest.fixture(scope="module")
def modes(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("increment_rules")
    s = settings_module.load(calltrail_env(tmp, CALLTRAIL_DBT_TARGET_DIR=str(tmp / "dbt_target")))
    project = tmp / "dbt_project"
    shutil.copytree(s.dbt_project_dir, project, ignore=shutil.ignore_patterns("target", "logs"))
    load_step(s, 0)
    s.warehouse.parent.mkdir(parents=True, exist_ok=True)
    args = project_args(s)
    args[args.index("--project-dir") + 1] = str(project)
    env = {**s.environ, **dbt_env(s), "DBT_PROFILES_DIR": str(project)}
    macros, models = project / "macros", project / "models"

    def build(vars_: dict | None = None) -> tuple[str, str]:
        command = [*args, *(["--vars", json.dumps({**json.loads(args[-1]), **vars_})] if vars_ else [])]
        # in this process, as the DAG's tasks run dbt (a dbt process of its own took 5 s longer)
        returncode, output, _ = _invoke_here(["build", "--resource-type", "seed", "--resource-type", "model"],
                                             command, env, project)
        assert returncode == 0, output[-6000:]
        return one(s.warehouse, "select mode, reason from int_increment")[0]

    seen = {"first": build(), "again": build()}
    # a macro an incremental model calls only in its incremental branch (stg_salesforce__tasks),
    # which dbt's depends_on does not list
    edit_macro(macros / "incremental.sql", "rebuilt")
    seen["rebuilt"] = build()
    # an engine's variant of one of dbt's own macros, reached as dbt.split_part
    edit_macro(macros / "spark.sql", "spark__split_part")
    seen["override"] = build()
    # a macro reached only through adapter.dispatch, of another engine
    edit_macro(macros / "cross_db.sql", "postgres__regexp_matches")
    seen["dispatched"] = build()
    # a macro no incremental model reaches
    edit_macro(macros / "publish.sql", "publish_table_sql")
    seen["publish"] = build()
    # a model that steers the incremental ones
    edit(models / "intermediate" / "int_person_ids.sql", "with leads as (", "-- x\nwith leads as (")
    seen["model"] = build()
    seen["var"] = build({"calltrail__session_inactivity_minutes": 31})
    seen["var_kept"] = build({"calltrail__session_inactivity_minutes": 31})
    with (project / "seeds" / "referrer_hosts.csv").open("a") as fh:
        fh.write("search,Example,search.example.org\n")
    seen["seed"] = build({"calltrail__session_inactivity_minutes": 31})
    # a new column of an incremental model, as a new release may bring: the full run recreates the
    # table (with only an append, dbt would stop: on_schema_change fail)
    edit(models / "intermediate" / "int_conversions.sql", "        all_conversions.match_status\n",
         "        all_conversions.match_status,\n        1 as added_column\n")
    seen["column"] = build({"calltrail__session_inactivity_minutes": 31})
    seen["column_after"] = build({"calltrail__session_inactivity_minutes": 31})
    seen["columns"] = {r[0] for r in one(s.warehouse, "describe int_conversions")}
    con = duckdb.connect(str(s.warehouse))
    con.execute("drop table fct_touchpoints")
    con.close()
    seen["table"] = build({"calltrail__session_inactivity_minutes": 31})
    return seen


def test_the_first_run_is_full_and_the_same_rules_build_incrementally(modes):
    assert modes["first"] == ("full", "first run: no int_increment_state yet")
    assert modes["again"] == INCREMENTAL
    assert modes["var_kept"] == INCREMENTAL
    assert modes["column_after"] == INCREMENTAL


def test_a_new_column_of_an_incremental_model_is_in_its_table_after_the_full_run(modes):
    assert "added_column" in modes["columns"]


@pytest.mark.parametrize("change", ["rebuilt", "override", "dispatched", "model", "var", "seed", "column"])
def test_a_change_of_the_rules_makes_the_next_run_full(modes, change):
    assert modes[change] == ("full", RULES)


def test_a_macro_no_incremental_model_calls_leaves_the_run_incremental(modes):
    assert modes["publish"] == INCREMENTAL


def test_a_missing_incremental_table_makes_the_run_full(modes):
    assert modes["table"] == ("full", "no table fct_touchpoints")
