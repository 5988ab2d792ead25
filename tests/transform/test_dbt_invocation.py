"""What lets an in-process dbt command skip work: the docs reuse a build's compiled manifest only,
and a kept manifest is reused only while no file of the project changed. And what calltrail says
when a dbt command fails."""

import json
import os
import subprocess

import pytest

from calltrail.settings import load
from calltrail.transform.dbt import (
    DBT,
    DbtCommandFailed,
    _compiled,
    _project_files,
    dbt_env,
    project_args,
    reason,
    run_dbt,
)
from tests.airflow_env import BIN, calltrail_env


def _manifest(path, **models):
    path.write_text(json.dumps({"nodes": {
        f"model.p.{name}": {"resource_type": "model", "compiled_code": code} for name, code in models.items()}
        | {"seed.p.s": {"resource_type": "seed"}}}))
    return path


def test_the_docs_reuse_a_manifest_only_when_every_model_in_it_was_compiled(tmp_path):
    assert _compiled(_manifest(tmp_path / "built.json", a="select 1", b="select 2"))
    assert not _compiled(_manifest(tmp_path / "parsed.json", a=None, b=None))  # a parse: no compiled code
    assert not _compiled(_manifest(tmp_path / "partly.json", a="select 1", b=None))
    assert not _compiled(_manifest(tmp_path / "none.json"))
    assert not _compiled(tmp_path / "missing.json")
    (tmp_path / "torn.json").write_text('{"nodes": {')
    assert not _compiled(tmp_path / "torn.json")


def test_the_project_fingerprint_changes_with_a_model_but_not_with_dbts_own_output(tmp_path):
    (tmp_path / "models").mkdir()
    model = tmp_path / "models" / "m.sql"
    model.write_text("select 1")
    for own in ("target", "logs"):
        (tmp_path / own).mkdir()
    before = _project_files(tmp_path)
    (tmp_path / "target" / "manifest.json").write_text("{}")
    (tmp_path / "logs" / "dbt.log").write_text("a line")
    assert _project_files(tmp_path) == before
    model.write_text("select 2")
    os.utime(model, ns=(0, 0))  # the same size; a different modification time
    assert _project_files(tmp_path) != before


def test_dbts_reason_for_a_failure_is_read_from_its_own_output(tmp_path):
    """What `calltrail run` and `calltrail setup` print when dbt fails: dbt's words, in one line,
    read from the output of a real dbt command (here a target the profile does not have)."""
    settings = load(calltrail_env(tmp_path, CALLTRAIL_DBT_TARGET_DIR=str(tmp_path / "dbt_target")))
    args = [arg if arg != settings.dbt_output else "no_such_target" for arg in project_args(settings)]
    out = subprocess.run([DBT, "parse", *args], env={**settings.environ, **dbt_env(settings)},
                         cwd=settings.dbt_project_dir, capture_output=True, text=True, timeout=300, check=False)
    assert out.returncode == 2, out.stdout + out.stderr
    assert reason(out.stdout + out.stderr) == (
        "Runtime Error: The profile 'calltrail' does not have a target named 'no_such_target'. The valid target "
        "names for this profile are: - duckdb - postgres - spark - spark_thrift")
    assert reason("12:00:00  Running with dbt=1.11.16\n12:00:01  Done.") == ""


def test_dbts_reason_for_a_failed_operation_is_read_without_its_headings_twice(tmp_path):
    """`dbt run-operation` says "Encountered an error while running operation:", its heading twice,
    and the macros that called the one that failed: a real one, publish given a build that no
    command recorded (an empty warehouse)."""
    settings = load(calltrail_env(tmp_path, CALLTRAIL_DBT_TARGET_DIR=str(tmp_path / "dbt_target")))
    settings.warehouse.parent.mkdir(parents=True)
    out = subprocess.run([DBT, "run-operation", "calltrail__publish", "--args", '{"audited_build": "b1"}',
                          *project_args(settings)], env={**settings.environ, **dbt_env(settings)},
                         cwd=settings.dbt_project_dir, capture_output=True, text=True, timeout=300, check=False)
    assert out.returncode == 1, out.stdout + out.stderr
    assert "Encountered an error while running operation: Compilation Error" in out.stdout + out.stderr
    assert reason(out.stdout + out.stderr) == (
        "Compilation Error in macro calltrail__publish (macros/publish.sql): calltrail: the build schema holds "
        "build (none recorded), not the build b1 this run's "
        "audit checked: a dbt command wrote models after the audit. Nothing was published: consumers keep the "
        "previous marts.")


def test_a_dbt_command_run_in_this_process_fails_with_dbts_reason_on_its_first_line(tmp_path):
    """As the DAG's tasks run dbt: the exception's first line (a task's cause in `calltrail run`
    and in the alert) gives dbt's reason, here a target folder that is a file."""
    not_a_folder = tmp_path / "dbt_target"
    not_a_folder.write_text("a file where dbt's target folder should be\n")
    settings = load(calltrail_env(tmp_path, CALLTRAIL_DBT_TARGET_DIR=str(not_a_folder)))
    with pytest.raises(DbtCommandFailed) as failed:
        run_dbt(settings, ["parse"], in_process=True)
    assert str(failed.value).splitlines()[0] == (
        f"dbt parse failed (exit 2): [Errno 20] Not a directory: '{not_a_folder}/partial_parse.msgpack'")


# As Airflow stops a task at its execution_timeout: AirflowTaskTimeout raised by a signal handler.
# In a process of its own: the interrupt may land in an import, which leaves the module half made.
DBT_STOPPED_AT_TIMEOUT = """
import sys
from airflow.sdk.execution_time.timeout import timeout
from calltrail import settings
from calltrail.transform.dbt import run_dbt
import dbt.cli.main  # as in a task that ran dbt before: the limit ends inside dbt, not in its import
s = settings.load()
command = ["ls", "--resource-type", "model"]
if sys.argv[1] == "query":
    run_dbt(s, ["parse"], in_process=True)
    command = ["show", "--inline", "select sum(range) from range(3000000000)"]  # about 3 s here
try:
    with timeout(1):
        run_dbt(s, command, in_process=True)
except BaseException as exc:
    print("stopped by", type(exc).__name__, flush=True)
else:
    print("went on", flush=True)
"""


@pytest.mark.parametrize("where", ["parse", "query"])
def test_a_dbt_command_stopped_at_its_tasks_execution_timeout_stops_the_task(tmp_path, where):
    """The limit ends (1 s) during dbt's parse (no partial parse yet), or during a query of a few
    seconds. dbt caught the interrupt and returned a failed command: a parse so stopped was run
    again, and the command (the freshness task of `calltrail run`) succeeded after its timeout; a
    query so stopped went on in dbt's thread, and dbt's clean-up failed on its connection
    ("connection is busy"), which dbt returned instead. The interrupt now reaches the task, whose
    process then ends (the query runs on until then: dbt-duckdb keeps no handle to its cursor by
    which to interrupt it)."""
    env = calltrail_env(tmp_path, CALLTRAIL_DBT_TARGET_DIR=str(tmp_path / "dbt_target"))
    done = subprocess.run([str(BIN / "python"), "-c", DBT_STOPPED_AT_TIMEOUT, where], env=env,
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.stdout.strip().splitlines()[-1:] == ["stopped by AirflowTaskTimeout"], done.stdout[-2000:] + done.stderr[-3000:]


# As an Airflow task runs dbt: in its own process, which ends with os._exit (no finalizers, no atexit)
DBT_THEN_OS_EXIT = """
import os, sys
from calltrail import settings
from calltrail.transform.dbt import run_dbt
for _ in range(2):  # as make run's one process does: a second command after the first
    run_dbt(settings.load(), ["ls", "--select", "stg_web__events", "--resource-type", "model"], in_process=True,
            log_file=__import__("pathlib").Path(sys.argv[1]))
sys.stdout.flush(); sys.stderr.flush()
os._exit(0)
"""


def test_a_process_that_ran_dbt_and_ends_as_an_airflow_task_does_leaks_no_semaphore(tmp_path):
    """Before: every dbt task's log ended with two error lines of Python's resource tracker,
    "There appear to be 2 leaked semaphore objects to clean up at shutdown" (dbt's locks)."""
    env = calltrail_env(tmp_path, CALLTRAIL_DBT_TARGET_DIR=str(tmp_path / "dbt_target"))
    log_file = tmp_path / "dbt.log"
    done = subprocess.run([str(BIN / "python"), "-c", DBT_THEN_OS_EXIT, str(log_file)], env=env,
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert log_file.read_text().count("calltrail.staging.stg_web__events") == 2, "dbt ran twice"
    assert "leaked semaphore" not in done.stderr, done.stderr[-3000:]
