"""Helpers for the fault tests: landing files of a known size and content, calltrail run in a
child process of its own (so a real signal can end it), and waits on what such a process does."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import duckdb

from calltrail.ops.airflow_services import group_members
from calltrail.transform.dbt import BUILD_ARGS

BUILD = [*BUILD_ARGS]  # the dbt build, as calltrail's transformation runs it


def event(n: int, prefix: str = "e") -> dict[str, object]:
    """Web event number ``n``: a page view of one visitor, a minute after the previous one."""
    return {"event_id": f"{prefix}{n:08d}", "bizible_id": f"{n % 5000:032x}", "event_type": "page_view",
            "occurred_at": f"2026-03-01T{(n // 60) % 24:02d}:{n % 60:02d}:00Z",
            "page_url": f"https://www.acme.example/pricing?utm_source=google&utm_medium=cpc&n={n}",
            "referrer_url": "https://www.google.com/", "email": None, "form_url": None}


# event(n) as json.dumps writes it, filled in by %-formatting: four times faster than json.dumps on
# the millions of events of the fault tests' large landing files (event_lines checks it is the same)
_EVENT_LINE = ('{"event_id": "%s%08d", "bizible_id": "%032x", "event_type": "page_view", '
               '"occurred_at": "2026-03-01T%02d:%02d:00Z", '
               '"page_url": "https://www.acme.example/pricing?utm_source=google&utm_medium=cpc&n=%d", '
               '"referrer_url": "https://www.google.com/", "email": null, "form_url": null}\n')


def event_lines(first: int, count: int, prefix: str = "e") -> str:
    """Events ``first`` to ``first + count - 1`` as JSON lines."""
    lines = "".join(_EVENT_LINE % (prefix, n, n % 5000, (n // 60) % 24, n % 60, n)
                    for n in range(first, first + count))
    if count and lines[:lines.index("\n") + 1] != json.dumps(event(first, prefix)) + "\n":
        raise AssertionError(f"_EVENT_LINE no longer writes event({first}) as json.dumps does")
    return lines


def write_events(path: Path, count: int, *, first: int = 0, prefix: str = "e") -> list[str]:
    """A JSON-lines landing file of ``count`` events; returns their ids."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as fh:
        for start in range(first, first + count, 50_000):
            fh.write(event_lines(start, min(50_000, first + count - start), prefix))
    return [f"{prefix}{n:08d}" for n in range(first, first + count)]


def backdate(path: Path, seconds: float = 3600) -> None:
    """Set a file's modification time ``seconds`` into the past (a file delivered earlier)."""
    then = time.time() - seconds
    os.utime(path, (then, then))


def lake_event_ids(lake_dir: Path) -> list[str]:
    """Event ids as the lake's readers see them: the glob of the dbt source ``lake.web_events``."""
    files = sorted(lake_dir.glob("web_events/*/events.parquet"))
    if not files:
        return []
    con = duckdb.connect()
    try:
        paths = ", ".join(f"'{p}'" for p in files)
        return [r[0] for r in con.execute(f"select event_id from read_parquet([{paths}]) order by 1").fetchall()]
    finally:
        con.close()


def quarantined(lake_dir: Path, dataset: str = "web_events") -> list[dict[str, object]]:
    rows = []
    for f in sorted((lake_dir / "quarantine" / dataset).rglob("*.jsonl")):
        rows += [json.loads(line) for line in f.read_text().splitlines()]
    return rows


def start_python(code: str, env: dict[str, str], **kwargs: object) -> subprocess.Popen[str]:
    """``python -c code`` in a process group of its own, as Airflow runs a task."""
    return subprocess.Popen([sys.executable, "-c", code], env=env, text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True, **kwargs)


def run_python(code: str, env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], env=env, text=True, capture_output=True,
                          timeout=timeout, check=False)


def kill_group(proc: subprocess.Popen[str]) -> None:
    """SIGKILL the process and everything in its group (dbt and DuckDB die with it), reap it, and
    wait until every process of the group has ended (a dying process holds its file locks until
    its memory is released)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=30)
    deadline = time.monotonic() + 30
    while group_members(proc.pid):
        assert time.monotonic() < deadline, f"process group {proc.pid} still alive 30 s after SIGKILL"
        time.sleep(0.05)


def wait_for(condition: Callable[[], object], proc: subprocess.Popen[str], what: str,
             timeout: float = 300, poll: float = 0.005) -> object:
    """Poll ``condition`` until it is truthy while ``proc`` runs; fail if the process ends first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        if proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(f"the process ended (exit {proc.returncode}) before {what}:\n{out[-2000:]}"
                                 f"\n{err[-4000:]}")
        time.sleep(poll)
    raise AssertionError(f"{what}: not seen within {timeout:.0f} s")


def holders(path: Path, pids: list[int]) -> list[int]:
    """Those of ``pids`` that have ``path`` open."""
    target = str(path)
    found = []
    for pid in pids:
        try:
            fds = list(Path(f"/proc/{pid}/fd").iterdir())
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(fd) == target:
                    found.append(pid)
                    break
            except OSError:
                continue
    return found


def bytes_written(pid: int) -> int:
    """Bytes the process has passed to write calls so far (``wchar`` of /proc/<pid>/io)."""
    try:
        for line in Path(f"/proc/{pid}/io").read_text().splitlines():
            if line.startswith("wchar:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def task(n: int) -> dict[str, object]:
    """Salesforce Task number ``n`` as the REST API returns it: a call of visitor ``n``."""
    at = f"2026-03-01T{(n // 60) % 24:02d}:{n % 60:02d}:30.000+0000"
    return {"attributes": {"type": "Task"}, "Id": f"00T{n:012d}AAA", "Type": "Call", "TaskSubtype": "Call",
            "Subject": f"Call {n}", "CreatedDate": at, "SystemModstamp": at, "IsDeleted": False,
            "bizible2__BizibleId__c": f"{n % 5000:032x}", "bizible2__Bizible_Touchpoint_Date__c": at}


def write_tasks(path: Path, count: int, *, first: int = 0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(task(n)) + "\n" for n in range(first, first + count)))


def open_read_only(warehouse: Path, timeout: float = 30) -> duckdb.DuckDBPyConnection:
    """Open the warehouse as a consumer does, once a killed writer has let go of it: a process
    killed with SIGKILL holds its file locks until the kernel has torn it down, which can end
    after it has left its process group."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return duckdb.connect(str(warehouse), read_only=True)
        except duckdb.IOException as exc:
            if "Could not set lock" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def fingerprint(warehouse: Path) -> dict[str, tuple[int, int]]:
    """Every table of the warehouse (schema.table): its row count and a hash of all its rows.

    Reading every row also reads every block, whose checksums DuckDB verifies: a torn file fails here.
    """
    con = open_read_only(warehouse)
    try:
        tables = con.execute("select table_schema, table_name from information_schema.tables "
                             "where table_type = 'BASE TABLE' order by 1, 2").fetchall()
        return {f"{schema}.{name}": tuple(con.execute(
            f'select count(*), coalesce(bit_xor(hash(t)), 0) from "{schema}"."{name}" t').fetchone())
            for schema, name in tables}
    finally:
        con.close()


def hold_warehouse(warehouse: Path, *, read_only: bool = True, seconds: float = 600) -> subprocess.Popen[str]:
    """Another program with the warehouse open (a DuckDB shell, a notebook), for ``seconds``.
    Returns once the file is open."""
    code = (f"import duckdb, time; con = duckdb.connect({str(warehouse)!r}, read_only={read_only}); "
            f"print('open', flush=True); time.sleep({seconds}); con.close()")
    proc = subprocess.Popen([sys.executable, "-c", code], text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)
    line = proc.stdout.readline() if proc.stdout else ""
    assert line.strip() == "open", f"the holder could not open {warehouse}: {proc.communicate()[1][-2000:]}"
    return proc
