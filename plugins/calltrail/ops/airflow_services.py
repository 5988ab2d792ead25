"""``make airflow``: a real local Airflow (api-server, scheduler, dag-processor, triggerer).

LocalExecutor on the SQLite metadata database of ``make run`` (or any database given in
``AIRFLOW__DATABASE__SQL_ALCHEMY_CONN``). Every component gets the same environment
(:func:`calltrail.ops.airflow_cli.environment`) and runs in its own process group (``setsid``), so
``make airflow-stop`` stops each group with ``kill -TERM -- -PGID``, and then whatever they started
(Airflow puts each task in a process group of its own).

Listening on a loopback address, the UI and API need no login (every user is an admin). On any
other address a login is required: user ``admin`` with a password generated once into the
Airflow home.
"""

from __future__ import annotations

import ipaddress
import json
import os
import secrets
import signal
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from calltrail.ops.airflow_cli import AIRFLOW
from calltrail.settings import Settings

COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
STATE_FILE = "calltrail-airflow.json"


class AirflowServiceError(RuntimeError):
    pass


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host
        return f"http://{host}:{self.port}"


def service_environment(settings: Settings, env: dict[str, str], endpoint: Endpoint) -> dict[str, str]:
    """What every component gets on top of :func:`calltrail.ops.airflow_cli.environment`."""
    home = settings.airflow_home
    extra = {
        "AIRFLOW__API__HOST": endpoint.host,
        "AIRFLOW__API__PORT": str(endpoint.port),
        "AIRFLOW__API__BASE_URL": endpoint.url,
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{endpoint.url}/execution/",
        # A task's first call to the execution API took 5.6 s on a 2-core machine right after the
        # components started; the default 5 s timeout made the task retry a call the server had
        # already carried out, and the task failed ("invalid state").
        "AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT": "30",
        "AIRFLOW__API__SECRET_KEY": _secret(home / ".api_secret_key"),
        # New DAG rows are created unpaused; the rows `make run` created paused are unpaused by
        # unpause_dags once the components are up.
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__SCHEDULER__DAG_DIR_LIST_INTERVAL": "30",
        # The dbt docs and the Data Docs are served behind the login by plugins/calltrail_data_docs.py
        # (menu Browse). Alerts link the Data Docs there.
        "CALLTRAIL_DATA_DOCS_URL": f"{endpoint.url}/calltrail/data-docs",
    }
    merged = dict(env)
    for key, value in extra.items():  # anything you set yourself wins ...
        merged.setdefault(key, value)
    if is_loopback(endpoint.host):
        merged.setdefault("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS", "True")
    else:  # ... except that nothing listens beyond loopback without a login
        merged["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS"] = "False"
        merged.setdefault("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS", "admin:admin")
        merged.setdefault("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE", str(_passwords_file(home)))
    return merged


def _secret(path: Path) -> str:
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()


def _passwords_file(home: Path) -> Path:
    path = home / "simple_auth_manager_passwords.json"
    if not path.exists():
        path.write_text(json.dumps({"admin": secrets.token_urlsafe(12)}))
        path.chmod(0o600)
    return path


def admin_password(settings: Settings) -> str:
    return json.loads(_passwords_file(settings.airflow_home).read_text())["admin"]


def _state_path(settings: Settings) -> Path:
    return settings.airflow_home / STATE_FILE


def group_members(pgid: int) -> list[int]:
    """Live (not zombie) processes of a process group. A component whose parent has exited is
    reparented to PID 1, which may never reap it: its zombie must not count as running."""
    proc = Path("/proc")
    if not proc.is_dir():  # not Linux: ask the kernel, zombies included
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return []
        except PermissionError:
            pass
        return [pgid]
    return [pid for pid, (_, pgrp, _) in _process_table().items() if pgrp == pgid]


def _alive(pgid: int) -> bool:
    return bool(group_members(pgid))


def _process_table() -> dict[int, tuple[int, int, int]]:
    """Live (not zombie) processes: pid -> (parent pid, process group, start time). Empty if not
    Linux. The start time tells a process from a later one that reused its pid."""
    table = {}
    try:
        pids = [name for name in os.listdir("/proc") if name.isdigit()]
    except OSError:
        return table
    for pid in pids:
        try:  # (not pathlib's glob: its check of a process that ended meanwhile raises ESRCH)
            data = Path("/proc", pid, "stat").read_text()
        except OSError:  # ended since the listing
            continue
        fields = data[data.rindex(")") + 2:].split()  # after "pid (comm) ": state ppid pgrp ...
        if fields[0] != "Z":
            table[int(pid)] = (int(fields[1]), int(fields[2]), int(fields[19]))
    return table


def _still_running(procs: dict[int, int], table: dict[int, tuple[int, int, int]] | None = None) -> dict[int, int]:
    """Those of ``procs`` (pid -> start time) that are alive in ``table`` (default: now)."""
    table = _process_table() if table is None else table
    return {pid: start for pid, start in procs.items() if pid in table and table[pid][2] == start}


def _tree(groups: set[int], known: dict[int, int]) -> dict[int, int]:
    """The live members of ``groups``, the live ``known`` processes, and all their descendants
    (pid -> start time).

    Airflow runs each task in a process group of its own (the supervisor's ``setpgid``), so a
    task, and the dbt or GX process it started, is not reached by TERMing the scheduler's group:
    if its supervisor dies first, the task is reparented to PID 1 and runs on, holding the
    warehouse's lock. So the tree is recorded while the supervisors are still alive.
    """
    table = _process_table()
    found = {pid: start for pid, (_, pgrp, start) in table.items() if pgrp in groups}
    found.update(_still_running(known, table))
    children: dict[int, list[int]] = {}
    for pid, (ppid, _, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    todo = list(found)
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found[child] = table[child][2]
                todo.append(child)
    return found


def _strays(home: Path, since: float) -> dict[int, int]:
    """Orphans (parent PID 1) with this Airflow home that started after ``since`` (epoch seconds):
    task processes whose supervisor died before ``make airflow-stop`` ran. An ``airflow`` command
    run by hand has a shell as its parent, so it is not one of them."""
    try:
        boot = next(float(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines()
                    if line.startswith("btime "))
    except (OSError, StopIteration):
        return {}
    tick = os.sysconf("SC_CLK_TCK")
    marker = f"AIRFLOW_HOME={home}".encode()
    found = {}
    for pid, (ppid, _, start) in _process_table().items():
        if ppid != 1 or boot + start / tick < since:
            continue
        try:
            # Another process's environment, not ours: it tells which installation started it.
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if marker in environ:
            found[pid] = start
    return found


def _wait(busy, seconds: float) -> bool:
    """Poll ``busy()`` until it is false (True) or ``seconds`` have passed (False)."""
    deadline = time.monotonic() + seconds
    while busy():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.2)
    return True


def _signal_each(pids, sig: signal.Signals) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def running(settings: Settings) -> dict[str, int]:
    """The components started by ``make airflow`` that are still alive: name -> process group."""
    path = _state_path(settings)
    if not path.exists():
        return {}
    groups = json.loads(path.read_text()).get("groups", {})
    return {name: pgid for name, pgid in groups.items() if _alive(pgid)}


def health(url: str, timeout: float = 5) -> dict | None:
    try:
        with urllib.request.urlopen(f"{url}/api/v2/monitor/health", timeout=timeout) as response:
            return json.loads(response.read())
    except (urllib.error.URLError, OSError, ValueError):
        return None


def start(settings: Settings, env: dict[str, str], endpoint: Endpoint, *, wait_seconds: float = 180,
          say=print) -> dict[str, int]:
    """Start every component (each in its own process group) and wait until they report healthy."""
    if running(settings):
        raise AirflowServiceError(f"Airflow is already running from {settings.airflow_home} "
                                  f"({', '.join(running(settings))}): `make airflow-stop` first")
    senv = service_environment(settings, env, endpoint)
    logs = settings.airflow_home / "logs" / "components"
    logs.mkdir(parents=True, exist_ok=True)
    groups: dict[str, int] = {}
    try:
        for name in COMPONENTS:
            log = (logs / f"{name}.log").open("a")
            proc = subprocess.Popen([AIRFLOW, name], env=senv, stdout=log, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True)  # setsid: its own group
            log.close()
            groups[name] = proc.pid
            say(f"  started {name} (process group {proc.pid}, log {logs / (name + '.log')})")
        _state_path(settings).write_text(json.dumps({"groups": groups, "url": endpoint.url}))
        wait_healthy(endpoint.url, groups, wait_seconds)
    except BaseException:
        stop(settings, say=say)
        raise
    return groups


def wait_healthy(url: str, groups: dict[str, int], wait_seconds: float) -> dict:
    deadline = time.monotonic() + wait_seconds
    last = None
    while time.monotonic() < deadline:
        dead = [name for name, pgid in groups.items() if not _alive(pgid)]
        if dead:
            raise AirflowServiceError(f"{', '.join(dead)} exited during start-up: see its log under logs/components")
        last = health(url)
        if last and all((last.get(k) or {}).get("status") == "healthy"
                        for k in ("metadatabase", "scheduler", "triggerer", "dag_processor")):
            return last
        time.sleep(2)
    raise AirflowServiceError(f"Airflow did not report healthy within {wait_seconds:.0f} s at {url} "
                              f"(last health: {last})")


STOP_QUIET_SECONDS = 3  # how long a stop waits for components before it says what it waits for


def stop(settings: Settings, *, timeout: float = 30, say=print) -> list[str]:
    """TERM every process group started by :func:`start`, then KILL what is left after ``timeout``.

    The api-server is stopped last, once the others have ended: a task that the scheduler's TERM
    ends reports its state through the api-server, and with the api-server gone first it retried
    for half a minute, so that the scheduler, which waits for its tasks, had to be killed.

    Task processes that Airflow put in groups of their own, and what they started, are stopped
    too: TERM once their component is gone, KILL after 10 s more. So are orphans of this Airflow
    home started since ``make airflow`` (:func:`_strays`).
    """
    path = _state_path(settings)
    if not path.exists():
        return []
    groups = json.loads(path.read_text()).get("groups", {})
    started_at = path.stat().st_mtime - 5  # written right after the components started
    pgids = set(groups.values())
    tree = _tree(pgids, {})
    last = {name: pgid for name, pgid in groups.items() if name == "api-server"}
    for stage in ({name: pgid for name, pgid in groups.items() if name not in last}, last):
        for name, pgid in stage.items():
            if _alive(pgid):
                os.killpg(pgid, signal.SIGTERM)
                say(f"  stopping {name} (process group {pgid})")
        began = time.monotonic()
        deadline, waiting_said = began + timeout, False
        while time.monotonic() < deadline and any(_alive(p) for p in stage.values()):
            if not waiting_said and time.monotonic() - began >= STOP_QUIET_SECONDS:
                waiting = [name for name, pgid in stage.items() if _alive(pgid)]
                why = " (a scheduler lets its running tasks finish)" if "scheduler" in waiting else ""
                say(f"  waiting for {', '.join(waiting)} to end{why}; killed after {timeout:.0f} s")
                waiting_said = True
            tree = _tree(pgids, tree)
            time.sleep(0.5)
        tree = _tree(pgids, tree)
        for name, pgid in stage.items():
            if _alive(pgid):
                say(f"  {name} did not stop within {timeout:.0f} s: killing process group {pgid}")
                os.killpg(pgid, signal.SIGKILL)
    _wait(lambda: any(_alive(p) for p in pgids), 10)
    orphans = _tree(set(), tree | _strays(settings.airflow_home, started_at))
    if orphans:
        say(f"  stopping {len(orphans)} task process(es) the scheduler left running: {sorted(orphans)}")
        _signal_each(orphans, signal.SIGTERM)
        if not _wait(lambda: _still_running(orphans), 10):
            left = _still_running(orphans)
            say(f"  killing task process(es) that did not stop within 10 s: {sorted(left)}")
            _signal_each(left, signal.SIGKILL)
            _wait(lambda: _still_running(left), 10)
    for pgid in pgids:  # reap our direct children, if this process started them
        try:
            os.waitpid(pgid, os.WNOHANG)
        except ChildProcessError:
            pass
    path.unlink(missing_ok=True)
    return list(groups)


# -- the DAGs: registered by the dag-processor, then unpaused ---------------------------------------

DAG_REGISTRATION_SECONDS = 600  # the dag-processor parses every file; on a busy 2-core machine this took minutes


def _call(url: str, path: str, *, token: str | None = None, method: str = "GET", body: object = None,
          timeout: float = 30) -> dict:
    request = urllib.request.Request(f"{url}{path}", method=method,
                                     data=None if body is None else json.dumps(body).encode())
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read())


def api_token(settings: Settings, endpoint: Endpoint) -> str:
    """A JWT for the REST API v2: without credentials on loopback (every user is an admin), else
    as user ``admin``."""
    try:
        if is_loopback(endpoint.host):
            return _call(endpoint.url, "/auth/token")["access_token"]
        return _call(endpoint.url, "/auth/token", method="POST",
                     body={"username": "admin", "password": admin_password(settings)})["access_token"]
    except (urllib.error.URLError, OSError, ValueError, KeyError) as exc:
        raise AirflowServiceError(f"could not get an API token from {endpoint.url}/auth/token ({exc}): "
                                  "see logs/components/api-server.log") from None


def dag_files(dags_folder: Path) -> list[Path]:
    """The DAG files the dag-processor must register (one file per DAG)."""
    return sorted(p for p in dags_folder.glob("*.py") if not p.name.startswith(("_", ".")))


def wait_registered(url: str, token: str, dags_folder: Path, *, timeout: float = DAG_REGISTRATION_SECONDS,
                    poll: float = 3) -> list[dict]:
    """Every DAG of ``dags_folder`` once the dag-processor has registered a DAG from each of its
    files. A file that does not import fails at once, with the error Airflow recorded."""
    expected = {p.name for p in dag_files(dags_folder)}
    deadline = time.monotonic() + timeout
    registered: list[dict] = []
    missing = expected
    while True:
        try:
            dags = _call(url, "/api/v2/dags?limit=100", token=token)["dags"]
            errors = _call(url, "/api/v2/importErrors?limit=100", token=token)["import_errors"]
        except (urllib.error.URLError, OSError, ValueError, KeyError) as exc:
            dags, errors = [], []
            last_error = exc
        else:
            last_error = None
        registered = [d for d in dags if Path(d["fileloc"]).name in expected]
        missing = expected - {Path(d["fileloc"]).name for d in registered}
        if not missing:
            return registered
        broken = {Path(e["filename"]).name: e["stack_trace"] for e in errors if Path(e["filename"]).name in missing}
        if broken:
            name, trace = sorted(broken.items())[0]
            lines = [line for line in trace.strip().splitlines() if line.strip()]
            raise AirflowServiceError(f"the DAG file {dags_folder / name} does not import: "
                                      f"{lines[-1] if lines else trace} (see Import Errors in the UI)")
        if time.monotonic() >= deadline:
            raise AirflowServiceError(
                f"the dag-processor registered no DAG from {', '.join(sorted(missing))} within {timeout:.0f} s "
                f"(last API error: {last_error}): see logs/components/dag-processor.log")
        time.sleep(poll)


def unpause_dags(settings: Settings, env: dict[str, str], endpoint: Endpoint, *,
                 timeout: float = DAG_REGISTRATION_SECONDS) -> list[str]:
    """Unpause every DAG of the DAGs folder through the REST API v2 and return their ids once the
    API reports each of them unpaused.

    ``make run`` (``airflow dags test``) creates the DAG rows paused, and a paused DAG never runs
    on its schedule, so setting ``dags_are_paused_at_creation`` alone is not enough.
    """
    token = api_token(settings, endpoint)
    dags_folder = Path(env["AIRFLOW__CORE__DAGS_FOLDER"])
    dags = wait_registered(endpoint.url, token, dags_folder, timeout=timeout)
    ids = sorted(d["dag_id"] for d in dags)
    try:
        for dag in dags:
            if dag["is_paused"]:
                _call(endpoint.url, f"/api/v2/dags/{dag['dag_id']}", token=token, method="PATCH",
                      body={"is_paused": False})
        still = [d for d in ids if _call(endpoint.url, f"/api/v2/dags/{d}", token=token)["is_paused"]]
    except (urllib.error.URLError, OSError, ValueError, KeyError) as exc:
        raise AirflowServiceError(f"unpausing the DAGs through {endpoint.url}/api/v2 failed ({exc}): "
                                  "see logs/components/api-server.log") from None
    if still:
        raise AirflowServiceError(f"{', '.join(still)} still paused after the API was asked to unpause them: "
                                  "see logs/components/api-server.log")
    return ids
