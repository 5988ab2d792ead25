"""``calltrail dbt ARGS``: dbt run by hand as calltrail runs it (its target, schemas, vars, and the
warehouse's wait), with dbt's output and exit code; the arguments that would make dbt disagree with
calltrail's other steps are refused in one line."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from calltrail import settings as settings_module
from calltrail.transform.dbt import READ_FROM_THE_PROJECT_FILE, DbtArgumentRefused, by_hand_args, dbt_vars
from calltrail.warehouse.local_postgres import throwaway
from tests.airflow_env import BIN, calltrail_env, run
from tests.faults.helpers import hold_warehouse
from tests.warehouse.test_postgres_writers import HOLDER

ROOT = Path(__file__).resolve().parents[1]
# the vars as the compiled SQL shows them: two that come from settings, one of the project's own
SHOW_VARS = ("select '{{ var(\"calltrail__publish_schema\") }}' as publish_schema, "
             "'{{ var(\"calltrail__bizible_id_field\") }}' as bizible_id_field, "
             "'{{ var(\"calltrail__session_inactivity_minutes\") }}' as inactivity")


def given_vars(args: list[str]) -> dict:
    return json.loads(args[args.index("--vars") + 1])


def test_the_settings_vars_project_and_target_are_added_and_vars_given_join_them(tmp_path):
    s = settings_module.load(calltrail_env(tmp_path, CALLTRAIL_PUBLISH_SCHEMA="acme_published"))
    args = by_hand_args(s, ["build", "--select", "fct_touchpoints+", "--vars", "{calltrail__session_inactivity_minutes: 45}"])
    assert args[:3] == ["build", "--select", "fct_touchpoints+"]
    assert args[args.index("--project-dir") + 1] == str(s.dbt_project_dir)
    assert (args[args.index("--profile") + 1], args[args.index("--target") + 1]) == ("calltrail", "duckdb")
    assert args.count("--vars") == 1
    assert given_vars(args) == {**dbt_vars(s), "calltrail__session_inactivity_minutes": 45}
    assert given_vars(args)["calltrail__publish_schema"] == "acme_published"
    # the same value as the setting's is no change; --vars=... is read as --vars ...
    same = by_hand_args(s, ["run", "--vars=calltrail__publish_schema: acme_published"])
    assert given_vars(same) == dbt_vars(s)
    assert by_hand_args(s, ["--version"]) == ["--version"]  # no dbt command: dbt takes no project options


@pytest.mark.parametrize(("args", "message"), [
    (["build", "--target", "prod"], "--target: calltrail gives it to every dbt command: set CALLTRAIL_DBT_TARGET"),
    (["build", "-t", "prod"], "-t: calltrail gives it to every dbt command: set CALLTRAIL_DBT_TARGET"),
    (["build", "--project-dir=/elsewhere"], "--project-dir: calltrail gives it to every dbt command"),
    (["build", "--profiles-dir", "/elsewhere"], "--profiles-dir: calltrail gives it to every dbt command"),
    (["build", "--target-path", "t"], "--target-path: calltrail gives it to every dbt command: set CALLTRAIL_DBT_TARGET_DIR"),
    (["build", "--vars", "{calltrail__publish_schema: other}"],
     "--vars calltrail__publish_schema: comes from calltrail's settings ('published' now)"),
    (["build", "--vars", "{calltrail__bizible_id_field: Other__c}"],
     "--vars calltrail__bizible_id_field: comes from calltrail's settings"),
    (["build", "--vars", "{calltrail__web_event_types: [page_view]}"],
     "--vars calltrail__web_event_types: calltrail's other steps read it from dbt_project.yml too: change it there"),
    (["build", "--vars", "{unclosed"], "--vars '{unclosed' is not YAML"),
    (["build", "--vars", "just text"], "--vars 'just text': a YAML dictionary is needed"),
    (["build", "--vars"], "--vars needs a value"),
])
def test_an_argument_that_would_make_dbt_disagree_with_calltrail_is_refused_naming_what_to_set(tmp_path, args, message):
    s = settings_module.load(calltrail_env(tmp_path))
    with pytest.raises(DbtArgumentRefused) as refused:
        by_hand_args(s, args)
    assert str(refused.value).startswith(message), str(refused.value)


def test_every_var_calltrail_reads_from_the_project_file_is_refused_or_left_to_vars_on_purpose():
    """A var newly read by calltrail's Python (``project_var``) must be placed: set from a setting,
    refused in --vars, or one of the rules' timings the report page only describes."""
    read = set()
    for path in (ROOT / "plugins").rglob("*.py"):
        read |= set(re.findall(r'project_var\("(calltrail__\w+)"', path.read_text()))
    placed = set(dbt_vars(settings_module.load({}))) | set(READ_FROM_THE_PROJECT_FILE) | {
        "calltrail__session_inactivity_minutes", "calltrail__call_window_minutes"}
    assert read, "project_var is no longer how calltrail reads dbt_project.yml: this test reads nothing"
    assert read - placed == set(), "read by calltrail from dbt_project.yml, not placed in transform/dbt.py"


def test_calltrail_dbt_runs_dbt_with_the_settings_and_passes_on_its_output_and_exit_code(tmp_path):
    env = calltrail_env(tmp_path, CALLTRAIL_PUBLISH_SCHEMA="acme_published", CALLTRAIL_SF_BIZIBLE_ID_FIELD="Visitor_Id__c")
    calltrail = str(BIN / "calltrail")
    shown = run([calltrail, "dbt", "compile", "--inline", SHOW_VARS, "--vars", "{calltrail__session_inactivity_minutes: 45}"],
                env)
    assert shown.returncode == 0, shown.stdout[-3000:] + shown.stderr[-3000:]
    assert "select 'acme_published' as publish_schema, 'Visitor_Id__c' as bizible_id_field, '45' as inactivity" \
        in shown.stdout, shown.stdout[-3000:]
    assert "\x1b[" not in shown.stdout, "dbt's colours on output that is not a terminal"

    failed = run([calltrail, "dbt", "compile", "--inline", "select {{ no_such_macro() }}"], env)
    assert failed.returncode == 2, failed.stdout[-3000:] + failed.stderr[-3000:]  # dbt's code for an error
    assert "'no_such_macro' is undefined" in failed.stdout, failed.stdout[-3000:]

    refused = run([calltrail, "dbt", "build", "--target", "prod"], env)
    assert (refused.returncode, refused.stdout) == (2, ""), refused.stdout[-3000:]
    assert refused.stderr.strip().splitlines() == [
        "calltrail dbt: --target: calltrail gives it to every dbt command: set CALLTRAIL_DBT_TARGET "
        "(and CALLTRAIL_SPARK_METHOD) instead"]

    version = run([calltrail, "dbt", "--version"], env)
    assert version.returncode == 0 and "installed:" in version.stdout, version.stdout + version.stderr


def test_calltrail_dbt_waits_for_a_warehouse_another_program_holds_then_names_it_and_dbt_ls_does_not_wait(tmp_path):
    env = calltrail_env(tmp_path, CALLTRAIL_WAREHOUSE_LOCK_WAIT_SECONDS="2")
    warehouse = settings_module.load(env).warehouse
    warehouse.parent.mkdir(parents=True)
    duckdb.connect(str(warehouse)).close()
    holder = hold_warehouse(warehouse, read_only=True)
    try:
        held = run([str(BIN / "calltrail"), "dbt", "build", "--select", "stg_web__events"], env)
        listed = run([str(BIN / "calltrail"), "dbt", "ls", "--select", "stg_web__events", "--resource-type", "model"], env)
    finally:
        holder.kill()
        holder.wait()
    assert held.returncode == 1, held.stdout[-3000:] + held.stderr[-3000:]
    said = held.stdout.strip().splitlines()[-1]
    assert said.startswith("calltrail dbt: ") and f"PID {holder.pid}" in said and str(warehouse) in said, said
    # dbt ls opens no warehouse: it waits for no one
    assert listed.returncode == 0, listed.stdout[-3000:] + listed.stderr[-3000:]
    assert listed.stdout.strip().splitlines()[-1] == "calltrail.staging.stg_web__events", listed.stdout[-3000:]
    assert "waiting" not in listed.stderr, listed.stderr


def test_on_postgresql_calltrail_dbt_is_one_of_the_warehouses_writers_and_dbt_ls_waits_for_none(tmp_path):
    """On PostgreSQL a dbt command by hand writes as each of calltrail's steps does: it waits for the
    writers' lock another step holds, then names that step; with the lock free it holds the lock
    while dbt runs (the query dbt runs sees it). ``dbt ls`` waits for no one."""
    calltrail = str(BIN / "calltrail")
    holders = ("select application_name from pg_stat_activity join pg_locks using (pid) "
               "where locktype = 'advisory' and granted")
    with throwaway("calltrail") as server:
        env = calltrail_env(tmp_path, **server, CALLTRAIL_DBT_TARGET="postgres", CALLTRAIL_WAREHOUSE_LOCK_WAIT_SECONDS="2",
                            CALLTRAIL_PUBLISH_SCHEMA="acme_published")
        holder = subprocess.Popen([sys.executable, "-c", HOLDER, "300"], env=env, stdout=subprocess.PIPE, text=True)
        try:
            assert holder.stdout.readline().strip() == "held"
            held = run([calltrail, "dbt", "show", "--inline", holders], env)
            listed = run([calltrail, "dbt", "ls", "--select", "stg_web__events", "--resource-type", "model"], env)
        finally:
            holder.kill()
            holder.wait()
        shown = run([calltrail, "dbt", "show", "--inline", holders, "--output", "json"], env)
        compiled = run([calltrail, "dbt", "compile", "--inline", SHOW_VARS], env)
    assert held.returncode == 1, held.stdout[-3000:] + held.stderr[-3000:]
    said = held.stdout.strip().splitlines()[-1]
    assert said.startswith("calltrail dbt: the warehouse (PostgreSQL database calltrail at ") and \
        f"calltrail pid {holder.pid} " in said and "the holder's step" in said and "dbt show needs to write it" in said, said
    assert listed.returncode == 0, listed.stdout[-3000:] + listed.stderr[-3000:]
    assert listed.stdout.strip().splitlines()[-1] == "calltrail.staging.stg_web__events", listed.stdout[-3000:]

    assert shown.returncode == 0, shown.stdout[-3000:] + shown.stderr[-3000:]
    at = shown.stdout.rindex("{", 0, shown.stdout.index('"show"'))  # dbt show's JSON, after dbt's log lines
    rows = json.JSONDecoder().raw_decode(shown.stdout, at)[0]["show"]
    assert [r["application_name"].split(": ", 1)[1] for r in rows] == ["dbt show"], rows
    assert rows[0]["application_name"].startswith("calltrail pid "), rows
    assert compiled.returncode == 0, compiled.stdout[-3000:] + compiled.stderr[-3000:]
    assert "select 'acme_published' as publish_schema" in compiled.stdout, compiled.stdout[-3000:]


def test_ctrl_c_stops_dbt_and_calltrail_dbt_ends_with_130_without_a_traceback_of_its_own(tmp_path):
    """Ctrl-C in a terminal reaches the whole process group: dbt stops on its own (what it says is
    passed on; at some points it says nothing), and calltrail waits for it, then exits as a command
    ended by SIGINT."""
    # As a terminal's shell starts it: SIGINT at its default. A test run in the background (as CI
    # runs) inherits SIGINT ignored, and Python then leaves it ignored.
    proc = subprocess.Popen([str(BIN / "calltrail"), "dbt", "build"], env=calltrail_env(tmp_path), text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        seen = []
        for line in proc.stdout:
            seen.append(line)
            if "Running with dbt=" in line:
                os.killpg(proc.pid, signal.SIGINT)
                break
        rest, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, "".join(seen) + rest + err
    assert err == "", err
