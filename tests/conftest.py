"""Shared fixtures. The package under plugins/ is importable (installed into the venv)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

# Before anything imports Airflow: the test process gets an Airflow home and a data folder of its
# own, so the suite neither reads nor writes the user's ~/airflow or the checkout's data/ (importing
# Airflow creates $AIRFLOW_HOME/logs), whatever the machine and the order of the tests.
_ISOLATED = tempfile.mkdtemp(prefix="calltrail-tests-")
os.environ["AIRFLOW_HOME"] = os.path.join(_ISOLATED, "airflow")
os.environ["CALLTRAIL_DATA_DIR"] = os.path.join(_ISOLATED, "data")

import pytest  # noqa: E402

from calltrail import settings as settings_module  # noqa: E402
from tests.airflow_env import BIN, calltrail_env, run  # noqa: E402
from tests.airflow_live import LiveAirflow, free_port, processes_of  # noqa: E402

LIVE_TESTS = "tests/test_airflow_live.py"
SPARK_TESTS = "tests/transform/test_spark.py"


def pytest_unconfigure(config):
    shutil.rmtree(_ISOLATED, ignore_errors=True)


def pytest_collection_modifyitems(session, config, items):
    """The tests of what runs in the background from the start of the session run last: the Spark
    side's, then the live Airflow's (which has done its scheduled runs by then). The rest of the
    suite runs meanwhile."""
    last = (SPARK_TESTS, LIVE_TESTS)
    items[:] = [i for i in items if not i.nodeid.startswith(last)] + \
        [i for prefix in last for i in items if i.nodeid.startswith(prefix)]


@pytest.fixture(scope="session")
def live_airflow(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("live")
    port = free_port()
    # Its own dbt target folder: it runs dbt while the other tests run dbt in the same checkout.
    env = calltrail_env(tmp, CALLTRAIL_AIRFLOW_PORT=str(port), CALLTRAIL_DEMO_VISITORS="150",
                        CALLTRAIL_DBT_TARGET_DIR=str(tmp / "dbt_target"))
    live = LiveAirflow(env=env, url=f"http://127.0.0.1:{port}", airflow_home=tmp / "data" / "airflow",
                       run_log=tmp / "make-run.log")
    live.start(str(BIN / "calltrail"))  # `calltrail run`, then `calltrail airflow start`
    yield live
    from calltrail.ops.airflow_services import group_members

    if live.process and live.process.returncode is None:
        try:
            live.process.wait(timeout=1800)
        except subprocess.TimeoutExpired:
            live.kill()
    stopped = run([str(BIN / "calltrail"), "airflow", "stop"], env, timeout=120)
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    leftovers = {name: group_members(pgid) for name, pgid in live.groups.items() if group_members(pgid)}
    assert not leftovers, f"still running after make airflow-stop: {leftovers}"
    assert processes_of(live.airflow_home) == [], "a process of this Airflow is still running"


@pytest.fixture(scope="session", autouse=True)
def _start_live_airflow_early(request):
    """Start the live Airflow at the beginning of the session when its tests were collected."""
    if any(i.nodeid.startswith(LIVE_TESTS) for i in request.session.items):
        request.getfixturevalue("live_airflow")


@pytest.fixture(scope="session")
def spark_suite(tmp_path_factory):
    """tests/transform/spark_suite.py in the background, from the start of the session: its folder
    and process. Killed (its process group) if it is still running when the session ends.

    At a lower priority (nice 10): its JVMs would otherwise take a core of two from the tests that
    run meanwhile; it has the time until test_spark.py's turn, and the CPU those tests leave."""
    import signal
    import sys

    out = tmp_path_factory.mktemp("spark")
    with (out / "suite.log").open("w") as log:
        process = subprocess.Popen(["nice", "-n", "10", sys.executable, "-m", "tests.transform.spark_suite", str(out)],
                                   cwd=Path(__file__).resolve().parents[1], stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    yield out, process
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=60)


@pytest.fixture(scope="session", autouse=True)
def _start_spark_suite_early(request):
    """Start the Spark side of tests/transform/test_spark.py at the beginning of the session when
    its tests were collected."""
    if any(i.nodeid.startswith(SPARK_TESTS) for i in request.session.items):
        request.getfixturevalue("spark_suite")


@pytest.fixture(scope="session")
def dbt_manifest(tmp_path_factory):
    """dbt_project/target/manifest.json, as `calltrail setup` writes it (the transform DAG needs it)."""
    from calltrail.transform.dbt import parse

    tmp = tmp_path_factory.mktemp("manifest")
    return parse(settings_module.load(calltrail_env(tmp)))


@pytest.fixture(scope="session")
def channels():
    """The alert channels the demo run is configured with (loopback Slack and SMTP)."""
    from tests.fakes.alerting import SlackWebhookServer, SmtpServer

    with SlackWebhookServer() as slack, SmtpServer() as smtp:
        yield slack, smtp


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory, channels):
    """One `calltrail run` on the demo, shared by the end-to-end modules (test_e2e_pipeline.py,
    test_e2e_attribution.py, test_demo_then_your_data.py): its folder, environment, output and the
    generator's truth."""
    import json

    tmp = tmp_path_factory.mktemp("e2e")
    slack, smtp = channels
    env = calltrail_env(tmp, AIRFLOW_CONN_SLACK_ALERTS=slack.connection(), AIRFLOW_CONN_SMTP_ALERTS=smtp.connection(),
                        CALLTRAIL_ALERT_EMAILS="marketing-ops@example.com")
    first = run([str(BIN / "calltrail"), "run"], env)
    assert first.returncode == 0, first.stdout[-4000:] + first.stderr[-4000:]
    truth = json.loads((tmp / "data" / "landing" / "_demo" / "truth.json").read_text())
    return tmp, env, first, truth
