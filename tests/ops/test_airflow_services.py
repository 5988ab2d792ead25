"""The environment `make airflow` gives its components: the same for all, no login only on loopback."""

from __future__ import annotations

import json
import os
import signal
import time

from calltrail import settings as settings_module
from calltrail.ops.airflow_cli import environment
from calltrail.ops.airflow_services import Endpoint, is_loopback, service_environment
from tests.airflow_env import calltrail_env


def env_for(tmp_path, host, **extra):
    s = settings_module.load(calltrail_env(tmp_path, **extra))
    return s, service_environment(s, environment(s), Endpoint(host, 18080))


def test_loopback_addresses():
    assert all(is_loopback(h) for h in ("127.0.0.1", "localhost", "::1", "127.0.0.2"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "::", "10.0.0.5", "airflow.example.com"))


def test_on_loopback_nobody_logs_in_and_every_component_shares_the_secrets(tmp_path):
    s, env = env_for(tmp_path, "127.0.0.1")
    assert env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS"] == "True"
    assert len(env["AIRFLOW__API_AUTH__JWT_SECRET"]) >= 64 and env["AIRFLOW__API__SECRET_KEY"]
    _, again = env_for(tmp_path, "127.0.0.1")  # generated once, then reused by every start
    assert (again["AIRFLOW__API_AUTH__JWT_SECRET"], again["AIRFLOW__API__SECRET_KEY"]) == (
        env["AIRFLOW__API_AUTH__JWT_SECRET"], env["AIRFLOW__API__SECRET_KEY"])
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://127.0.0.1:18080/execution/"
    assert env["AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT"] == "30"
    assert env["CALLTRAIL_DBT_DOCS_DIR"] == str(s.dbt_docs_dir)


def test_beyond_loopback_a_login_is_required_even_if_asked_otherwise(tmp_path):
    s, env = env_for(tmp_path, "0.0.0.0", AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS="True")
    assert env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS"] == "False"
    assert env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"] == "admin:admin"
    passwords = json.loads((s.airflow_home / "simple_auth_manager_passwords.json").read_text())
    assert len(passwords["admin"]) >= 12


# A stand-in for the scheduler: like Airflow's task supervisor, it runs a task in a process group
# of its own (here with setsid) and dies on TERM without stopping it. The task ignores TERM, as a
# task in the middle of a dbt build may, and has a child of its own (the dbt process).
SCHEDULER = r"""
import os, subprocess, sys, time
task = subprocess.Popen([sys.executable, "-c", sys.argv[1], sys.argv[2]], start_new_session=True)
time.sleep(3600)
"""
TASK = r"""
import signal, subprocess, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
dbt = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3600)"])
open(sys.argv[1], "w").write(str(dbt.pid))
time.sleep(3600)
"""


# A task whose supervisor died long before the stop: the stand-in scheduler starts it through a
# process that exits at once, so the task is reparented to PID 1 while the scheduler still runs.
SCHEDULER_WITH_AN_ORPHAN = r"""
import os, subprocess, sys, time
middle = subprocess.Popen([sys.executable, "-c",
    "import subprocess, sys; subprocess.Popen([sys.executable, '-c', sys.argv[1], sys.argv[2]], start_new_session=True)",
    sys.argv[1], sys.argv[2]])
middle.wait()
time.sleep(3600)
"""


def stop_with_a_running_task(tmp_path, scheduler_code: str) -> list[str]:
    """Start the stand-in scheduler and its task (which ignores TERM and has a child), stop it
    with ``stop`` and return what stop said; every process of the Airflow home must be gone."""
    import subprocess
    import sys

    from calltrail.ops import airflow_services
    from tests.airflow_live import processes_of

    s = settings_module.load(calltrail_env(tmp_path))
    s.airflow_home.mkdir(parents=True, exist_ok=True)
    ready = tmp_path / "dbt.pid"
    env = {"PATH": "/usr/bin:/bin", "AIRFLOW_HOME": str(s.airflow_home)}
    (s.airflow_home / airflow_services.STATE_FILE).write_text("{}")  # written when the components start
    scheduler = subprocess.Popen([sys.executable, "-c", scheduler_code, TASK, str(ready)], env=env,
                                 start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while not (ready.exists() and ready.read_text()) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert ready.read_text(), "the stand-in task did not start"
        assert len(processes_of(s.airflow_home)) == 3  # scheduler, task, dbt
        (s.airflow_home / airflow_services.STATE_FILE).write_text(
            json.dumps({"groups": {"scheduler": scheduler.pid}, "url": "http://127.0.0.1:1"}))
        os.utime(s.airflow_home / airflow_services.STATE_FILE, (time.time() - 3, time.time() - 3))
        said = []
        assert airflow_services.stop(s, timeout=5, say=said.append) == ["scheduler"]
        assert processes_of(s.airflow_home) == []
        assert not (s.airflow_home / airflow_services.STATE_FILE).exists()
        return said
    finally:
        for pid in processes_of(s.airflow_home):
            os.kill(pid, signal.SIGKILL)


def test_stop_ends_the_task_processes_airflow_put_in_process_groups_of_their_own(tmp_path):
    said = stop_with_a_running_task(tmp_path, SCHEDULER)
    assert any("left running" in line for line in said), said
    assert any("did not stop within 10 s" in line for line in said), said


def test_stop_ends_a_task_that_was_orphaned_before_the_stop(tmp_path):
    said = stop_with_a_running_task(tmp_path, SCHEDULER_WITH_AN_ORPHAN)
    assert any("left running" in line for line in said), said


# Stand-ins for the api-server and a scheduler whose running task, once TERMed, ends and then
# reports its state through the api-server (as Airflow 3's tasks do, over HTTP).
API_SERVER = r"""
import signal, socket, sys, time
server = socket.create_server(("127.0.0.1", 0))
def term(*_):
    time.sleep(5)  # uvicorn ends its connections
    sys.exit(0)
signal.signal(signal.SIGTERM, term)
open(sys.argv[1], "w").write(str(server.getsockname()[1]))
while True:
    client, _ = server.accept()
    client.sendall(b"ok")
    client.close()
"""
SCHEDULER_WHOSE_TASK_REPORTS = r"""
import signal, socket, sys, time
def term(*_):
    time.sleep(6)  # the task ends
    try:
        with socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5) as api:
            said = "reported: " + api.recv(2).decode()
    except OSError as e:
        said = f"the api-server is gone: {e}"
    open(sys.argv[2], "w").write(said)
    sys.exit(0)
signal.signal(signal.SIGTERM, term)
open(sys.argv[2], "w").write("running")
time.sleep(3600)
"""


def test_stop_ends_the_scheduler_and_its_tasks_before_the_api_server_they_report_to(tmp_path):
    """With the api-server stopped at the same time, a task ended by the stop could not report its
    state: it retried for half a minute and the scheduler, waiting for it, was killed."""
    import subprocess
    import sys

    from calltrail.ops import airflow_services

    s = settings_module.load(calltrail_env(tmp_path))
    s.airflow_home.mkdir(parents=True, exist_ok=True)
    port_file, report = tmp_path / "port", tmp_path / "report"
    api = subprocess.Popen([sys.executable, "-c", API_SERVER, str(port_file)], start_new_session=True)
    scheduler = None
    try:
        deadline = time.monotonic() + 30
        while not (port_file.exists() and port_file.read_text()) and time.monotonic() < deadline:
            time.sleep(0.1)
        scheduler = subprocess.Popen([sys.executable, "-c", SCHEDULER_WHOSE_TASK_REPORTS, port_file.read_text(),
                                      str(report)], start_new_session=True)
        while not (report.exists() and report.read_text()) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert report.read_text() == "running"
        (s.airflow_home / airflow_services.STATE_FILE).write_text(json.dumps(
            {"groups": {"api-server": api.pid, "scheduler": scheduler.pid}, "url": "http://127.0.0.1:1"}))
        said = []
        assert airflow_services.stop(s, timeout=10, say=said.append) == ["api-server", "scheduler"]
        assert report.read_text() == "reported: ok"
        assert [line.split()[:2] for line in said] == [["stopping", "scheduler"], ["waiting", "for"],
                                                       ["stopping", "api-server"], ["waiting", "for"]], said
        assert said[1] == ("  waiting for scheduler to end (a scheduler lets its running tasks finish); "
                           "killed after 10 s"), said
        assert said[3] == "  waiting for api-server to end; killed after 10 s", said
    finally:
        for process in (api, scheduler):
            if process and process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
