"""Helpers for tests that start the real Airflow components (``calltrail airflow start``) and
talk to them over the REST API v2, and that check nothing is left running afterwards."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def api_server(env: dict[str, str], log: Path, url: str, *args: str) -> Iterator[None]:
    """``airflow api-server ARGS`` in ``env``, in a process group of its own, answering at ``url``
    (its health) for the block; then stopped (SIGTERM, SIGKILL after 30 s). Its output goes to ``log``."""
    from calltrail.ops.airflow_cli import AIRFLOW
    from calltrail.ops.airflow_services import health

    with log.open("w") as out:
        proc = subprocess.Popen([AIRFLOW, "api-server", *args], env=env, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        while health(url) is None:
            assert proc.poll() is None, f"api-server exited: {log.read_text()[-4000:]}"
            assert time.monotonic() < deadline, f"api-server not up within 300 s: {log.read_text()[-4000:]}"
            time.sleep(1)
        yield
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)


def api(url: str, path: str, token: str | None = None, method: str = "GET", body: Any = None) -> Any:
    request = urllib.request.Request(f"{url}/api/v2{path}", method=method,
                                     data=None if body is None else json.dumps(body).encode())
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def wait_for_run(url: str, dag_id: str, *, timeout: float, token: str | None = None,
                 run_type: str | None = None) -> dict:
    """The DAG's first run (of ``run_type``, e.g. ``scheduled``), once it has finished (success or
    failed)."""
    deadline = time.monotonic() + timeout
    runs: list[dict] = []
    while time.monotonic() < deadline:
        runs = api(url, f"/dags/{dag_id}/dagRuns?order_by=start_date", token)["dag_runs"]
        done = [r for r in runs if r["state"] in ("success", "failed") and run_type in (None, r["run_type"])]
        if done:
            return done[0]
        time.sleep(5)
    paused = api(url, f"/dags/{dag_id}", token)["is_paused"]
    raise AssertionError(f"{dag_id}: no finished {run_type or ''} run within {timeout:.0f} s (DAG paused: {paused}); "
                         f"runs: {[(r['run_id'], r['run_type'], r['state']) for r in runs]}")


def task_states(url: str, dag_id: str, run_id: str, token: str | None = None) -> dict[str, str]:
    quoted = urllib.request.quote(run_id, safe="")
    tis = api(url, f"/dags/{dag_id}/dagRuns/{quoted}/taskInstances?limit=500", token)["task_instances"]
    return {t["task_id"]: t["state"] for t in tis}


def processes_of(airflow_home: Path) -> list[int]:
    """Every live process whose environment has this AIRFLOW_HOME (whatever started it)."""
    marker = f"AIRFLOW_HOME={airflow_home}".encode()
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            environ = (proc / "environ").read_bytes()
        except OSError:
            continue
        if marker in environ.split(b"\0"):
            found.append(int(proc.name))
    return found


@dataclass
class LiveAirflow:
    """What a newcomer does, in the background from the start of the test session: ``calltrail
    run`` (``make run``), then ``calltrail airflow start`` (``make airflow``) on the same data
    folder and Airflow home, so the scheduler works on the demo data while the other tests run (the
    machine has two cores and most tests keep one busy). Both run in one process group of their
    own (``setsid``), which :meth:`kill` TERMs if they hang."""

    env: dict[str, str]
    url: str
    airflow_home: Path
    run_log: Path  # the output of `calltrail run`, then a line "make run exit <code>"
    process: subprocess.Popen | None = None
    output: str = ""
    groups: dict[str, int] = field(default_factory=dict)

    def start(self, calltrail: str) -> None:
        run, log = shlex.quote(calltrail), shlex.quote(str(self.run_log))
        script = f'{run} run > {log} 2>&1; echo "make run exit $?" >> {log}; exec {run} airflow start'
        self.process = subprocess.Popen(["bash", "-c", script], env=self.env, text=True, start_new_session=True,
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)

    def make_run(self) -> tuple[int | None, str]:
        """The exit code and output of ``calltrail run`` (None: it did not finish)."""
        text = self.run_log.read_text() if self.run_log.exists() else ""
        found = re.search(r"^make run exit (\d+)$", text, re.MULTILINE)
        return (int(found.group(1)) if found else None), text

    def wait_started(self, timeout: float = 1800) -> subprocess.CompletedProcess[str]:
        assert self.process is not None
        if self.process.returncode is None:
            try:
                self.output, _ = self.process.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                rc, text = self.make_run()
                raise AssertionError(f"`calltrail run` then `calltrail airflow start` did not finish within "
                                     f"{timeout:.0f} s (make run exit: {rc}); make run's output ends: {text[-3000:]}"
                                     ) from None
        state = self.airflow_home / "calltrail-airflow.json"
        self.groups = json.loads(state.read_text())["groups"] if state.exists() else {}
        return subprocess.CompletedProcess(self.process.args, self.process.returncode, self.output, "")

    def kill(self) -> None:
        """TERM the process group of ``calltrail run`` / ``airflow start`` (``kill -TERM -- -PGID``)."""
        if self.process and self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.process.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.communicate(timeout=30)
