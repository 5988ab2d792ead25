"""Helpers for tests that start the real Airflow components (``calltrail airflow start``) and
talk to them over the REST API v2, and that check nothing is left running afterwards."""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def api(url: str, path: str, token: str | None = None, method: str = "GET", body: Any = None) -> Any:
    request = urllib.request.Request(f"{url}/api/v2{path}", method=method,
                                     data=None if body is None else json.dumps(body).encode())
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def wait_for_run(url: str, dag_id: str, *, timeout: float, token: str | None = None) -> dict:
    """The DAG's first run, once it has finished (success or failed)."""
    deadline = time.monotonic() + timeout
    runs: list[dict] = []
    while time.monotonic() < deadline:
        runs = api(url, f"/dags/{dag_id}/dagRuns?order_by=start_date", token)["dag_runs"]
        done = [r for r in runs if r["state"] in ("success", "failed")]
        if done:
            return done[0]
        time.sleep(5)
    raise AssertionError(f"{dag_id}: no finished run within {timeout:.0f} s; runs: {runs}")


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
    """``calltrail airflow start`` running in the background from the start of the test session,
    so the scheduler works on the demo data while the other tests run (the machine has two cores
    and most tests keep one busy)."""

    env: dict[str, str]
    url: str
    airflow_home: Path
    process: subprocess.Popen | None = None
    output: str = ""
    groups: dict[str, int] = field(default_factory=dict)

    def start(self, calltrail: str) -> None:
        self.process = subprocess.Popen([calltrail, "airflow", "start"], env=self.env, text=True,
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)

    def wait_started(self, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        assert self.process is not None
        if self.process.returncode is None:
            self.output, _ = self.process.communicate(timeout=timeout)
        state = self.airflow_home / "calltrail-airflow.json"
        self.groups = json.loads(state.read_text())["groups"] if state.exists() else {}
        return subprocess.CompletedProcess(self.process.args, self.process.returncode, self.output, "")
