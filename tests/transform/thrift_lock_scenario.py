"""The writers' lock on a Spark Thrift Server (calltrail.warehouse.thrift_lock), between processes,
on a server the Spark side started (tests/transform/spark_suite.py); tests/transform/test_spark.py
checks what this saw. Writes ``OUT/thrift_lock.json``.

Each holder is a process of its own (a lock is re-entrant within a process), which holds the lock
until its standard input closes, renewing its heartbeat every 0.5 s, and states its staleness limit
(20 s, and 3 s for the one killed):

- busy: while one holds it, a second writer waits out its wait and fails naming the holder, as do
  a writing connection (``open_warehouse``) and ``calltrail dbt``; a read-only connection reads;
- alive: a holder whose heartbeat is renewed keeps the lock past its staleness limit (a wait of
  30 s);
- handover: a writer waiting while the holder lets go takes its turn;
- stale: a holder killed with SIGKILL leaves the lock; a writer takes it once the heartbeat is
  older than the holder's staleness limit, and says whose lock it drops;
- setting: a holder that holds through ``open_warehouse`` with ``CALLTRAIL_SPARK_LOCK_STALE_SECONDS=10``,
  killed, states 10 s; a writer whose own setting is the default (300 s) takes it after 10 s;
- race: three writers (processes) that find a dead holder's lock at the same moment hold the lock
  one after another, each its own lock view from the start to the end of its hold, and one of them
  claims the dead holder's turn (the view a dead holder leaves, its heartbeat an hour old, its
  limit 10 s); the claim stays, and the first writer to take the lock after 10 s drops it;
- stuck claim: a dead holder's lock whose turn a writer claimed an hour ago, and died: the next
  writer drops that claim, claims the turn and takes it;
- released: the lock view is gone after a step, also after a step that failed;
- taken: a holder whose lock view is dropped by someone else says so at its next heartbeat.

    python -m tests.transform.thrift_lock_scenario OUT
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

from calltrail import settings as settings_module
from calltrail.warehouse.spark import thrift_connection
from calltrail.warehouse.target import open_warehouse
from calltrail.warehouse.thrift_lock import CLAIM_PREFIX, LOCK_VIEW, SparkBusy, writer_lock
from tests.airflow_env import BIN

HOLD = """
import sys
from calltrail.warehouse.thrift_lock import writer_lock
import os
with writer_lock(os.environ, sys.argv[1], 0, sys.argv[2], heartbeat_seconds=0.5, stale_seconds=float(sys.argv[3])):
    print("held", flush=True)
    sys.stdin.read()
"""
# A step's own way: the settings of its environment
HOLD_BY_SETTINGS = """
import sys
from calltrail import settings
from calltrail.warehouse.target import open_warehouse
with open_warehouse(settings.load(), doing=sys.argv[2]):
    print("held", flush=True)
    sys.stdin.read()
"""
DOING = "holding it for the test"
# A writer that starts when its standard input gives a line, holds the lock for a second, and says
# who held the lock view at the start and the end of its hold
BREAKER = """
import json, logging, os, sys, time
logging.basicConfig(level=logging.WARNING)
from calltrail.warehouse.thrift_lock import writer_lock
from tests.transform.thrift_lock_scenario import _lock_view
print("ready", flush=True)
sys.stdin.readline()
with writer_lock(os.environ, sys.argv[1], 120.0, "a breaker", poll_seconds=0.2):
    start, first = time.time(), _lock_view(os.environ, sys.argv[1])
    time.sleep(1.0)
    last, end = _lock_view(os.environ, sys.argv[1]), time.time()
print(json.dumps({"pid": os.getpid(), "start": start, "end": end, "first": first, "last": last}), flush=True)
"""


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.levelname} {record.getMessage()}")


def _holder(env: dict[str, str], schema: str, stale_seconds: float = 20.0, script: str = HOLD) -> subprocess.Popen:
    process = subprocess.Popen([sys.executable, "-c", script, schema, DOING, str(stale_seconds)], env=env,
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, start_new_session=True)
    line = process.stdout.readline()
    if line.strip() != "held":
        raise RuntimeError(f"the holder did not take the lock (exit {process.wait()}): {line!r}")
    return process


def _release(process: subprocess.Popen) -> int:
    process.stdin.close()
    return process.wait(timeout=60)


def _try(env: dict[str, str], schema: str, wait: float, **kwargs) -> dict:
    started = time.monotonic()
    try:
        with writer_lock(env, schema, wait, "a second writer", poll_seconds=0.2, **kwargs) as waited:
            return {"took": True, "waited": waited, "lock_view": _lock_view(env, schema)}
    except SparkBusy as exc:
        return {"took": False, "error": str(exc), "seconds": time.monotonic() - started}


def _lock_view(env: dict[str, str], schema: str) -> dict[str, str] | None:
    cur = thrift_connection(env).cursor()
    cur.execute(f"show tables in `{schema}` like '{LOCK_VIEW}'")
    if not cur.fetchall():
        return None
    cur.execute(f"show tblproperties `{schema}`.`{LOCK_VIEW}`")
    return dict(cur.fetchall())


def _claims(env: dict[str, str], schema: str) -> list[str]:
    cur = thrift_connection(env).cursor()
    cur.execute(f"show views in `{schema}` like '{CLAIM_PREFIX}*'")
    return sorted(str(row[1]) for row in cur.fetchall())


def _plant(env: dict[str, str], schema: str, name: str, holder: str, age: int, limit: str) -> str:
    """A view of the lock's as a writer that died leaves it: its heartbeat ``age`` seconds old."""
    cur = thrift_connection(env).cursor()
    cur.execute(f"select unix_timestamp() - {age}")
    then = cur.fetchall()[0][0]
    holder_id = uuid.uuid4().hex
    cur.execute(f"create view `{schema}`.`{name}` tblproperties ('calltrail.holder'='{holder}', "
                f"'calltrail.holder_id'='{holder_id}', 'calltrail.since'='{then}', 'calltrail.heartbeat'='{then}', "
                f"'calltrail.stale_seconds'='{limit}') as select 1 as held")
    return holder_id


RACE_LIMIT = 60  # the staleness limit the race's dead holder states (s)


def _race(env: dict[str, str], schema: str) -> dict:
    """A dead holder's lock, found stale by three writers at once."""
    breakers = [subprocess.Popen([sys.executable, "-c", BREAKER, schema], env=env, stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(3)]
    for breaker in breakers:
        if breaker.stdout.readline().strip() != "ready":
            raise RuntimeError(f"a breaker did not start: {breaker.communicate(timeout=60)}")
    dead = "calltrail pid 4242 on a lost machine: a step that died"
    # The claim is kept for the dead holder's limit: 60 s outlasts the race on a loaded machine (with
    # 10 s, a race under a CI's load outlasted the claim, and the third writer dropped it).
    dead_id = _plant(env, schema, LOCK_VIEW, dead, 3600, str(RACE_LIMIT))
    for breaker in breakers:
        breaker.stdin.write("go\n")
        breaker.stdin.flush()
    held, said = [], []
    for breaker in breakers:
        stdout, stderr = breaker.communicate(timeout=300)
        if breaker.returncode != 0:
            raise RuntimeError(f"a breaker failed (exit {breaker.returncode}): {stderr[-3000:]}")
        held.append(json.loads(stdout.strip().splitlines()[-1]))
        said += stderr.splitlines()
    seen = {"dead": dead, "dead_id": dead_id, "held": held, "said": said, "claims_after": _claims(env, schema)}
    if f"{CLAIM_PREFIX}{dead_id}" not in seen["claims_after"]:
        return seen  # the test says so, with the writers' times
    cur = thrift_connection(env).cursor()
    cur.execute(f"show tblproperties `{schema}`.`{CLAIM_PREFIX}{dead_id}`")
    claimed_at = int(dict(cur.fetchall())["calltrail.since"])
    cur.execute("select unix_timestamp()")
    # until the claim is older than the dead holder's limit
    time.sleep(max(0, claimed_at + RACE_LIMIT + 2 - cur.fetchall()[0][0]))
    with writer_lock(env, schema, 30.0, "a step after the claim's time"):
        pass
    seen["claims_later"] = _claims(env, schema)
    return seen


def _stuck_claim(env: dict[str, str], schema: str) -> dict:
    """A dead holder's lock, whose turn a writer claimed an hour ago and died before it took it."""
    dead_id = _plant(env, schema, LOCK_VIEW, "calltrail pid 4343 on a lost machine: a step that died", 3600, "10")
    _plant(env, schema, CLAIM_PREFIX + dead_id, "calltrail pid 4444 on a lost machine: a claim", 3600, "10")
    taken = _try(env, schema, 60.0)
    return {"dead_id": dead_id, "taken": taken, "claims_after": _claims(env, schema)}


def main(out: Path) -> int:
    env = dict(os.environ)
    settings = settings_module.load(env)
    schema = settings.build_schema
    records = _Records()
    logging.getLogger("calltrail.warehouse.thrift_lock").addHandler(records)
    logging.getLogger("calltrail.warehouse.thrift_lock").setLevel(logging.DEBUG)
    seen: dict = {"schema": schema}

    holder = _holder(env, schema)
    seen["holder_pid"] = holder.pid
    seen["busy"] = _try(env, schema, 2.0)
    # several renewals within the limit, even when a renewal's three statements take seconds under load
    seen["alive"] = _try(env, schema, 30.0)
    try:
        open_warehouse(settings_module.load({**env, "CALLTRAIL_WAREHOUSE_LOCK_WAIT_SECONDS": "1"}),
                       doing="the data-quality audit").close()
        seen["open_for_writing"] = "opened"
    except SparkBusy as exc:
        seen["open_for_writing"] = str(exc)
    with open_warehouse(settings, read_only=True) as con:
        seen["read_only"] = con.execute("select 40 + 2").fetchall()[0][0]
    dbt = subprocess.run([str(BIN / "calltrail"), "dbt", "compile", "--inline", "select 1"],
                         env={**env, "CALLTRAIL_WAREHOUSE_LOCK_WAIT_SECONDS": "1"}, capture_output=True, text=True,
                         timeout=300)
    seen["dbt"] = {"code": dbt.returncode, "stdout": dbt.stdout, "stderr": dbt.stderr}

    waiter = subprocess.Popen([sys.executable, "-c", (
        "import json, logging, os, sys\n"
        "logging.basicConfig(level=logging.WARNING)\n"
        "from tests.transform.thrift_lock_scenario import _try\n"
        "print(json.dumps(_try(dict(os.environ), sys.argv[1], 60.0)))\n"), schema],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    said = ""
    while "a second writer waits up to" not in said:  # the waiter has found the lock held
        said = waiter.stderr.readline()
        if not said:
            raise RuntimeError(f"the waiter ended without waiting: {waiter.communicate(timeout=60)}")
    seen["waiter_said"] = said.strip()
    seen["holder_exit"] = _release(holder)
    seen["handover"] = json.loads(waiter.communicate(timeout=120)[0])
    seen["after_handover"] = _lock_view(env, schema)

    dead = _holder(env, schema, 3.0)
    dead_holder = f"calltrail pid {dead.pid}"
    os.killpg(dead.pid, signal.SIGKILL)
    dead.wait()
    seen["left_by_the_dead"] = (_lock_view(env, schema) or {}).get("calltrail.holder")
    seen["stale"] = _try(env, schema, 60.0)
    seen["stale_log"] = [line for line in records.lines if dead_holder in line]
    seen["after_stale"] = _lock_view(env, schema)

    dead = _holder({**env, "CALLTRAIL_SPARK_LOCK_STALE_SECONDS": "10"}, schema, script=HOLD_BY_SETTINGS)
    dead_holder = f"calltrail pid {dead.pid}"
    os.killpg(dead.pid, signal.SIGKILL)
    dead.wait()
    seen["stated_by_setting"] = (_lock_view(env, schema) or {}).get("calltrail.stale_seconds")
    started = time.monotonic()
    with open_warehouse(settings_module.load({**env, "CALLTRAIL_WAREHOUSE_LOCK_WAIT_SECONDS": "120"}),
                        doing="a writer of the default limit"):
        seen["by_setting"] = {"seconds": time.monotonic() - started, "lock_view": _lock_view(env, schema)}
    seen["by_setting_log"] = [line for line in records.lines if dead_holder in line]

    seen["race"] = _race(env, schema)
    records.lines.clear()
    seen["stuck_claim"] = _stuck_claim(env, schema)
    seen["stuck_claim"]["log"] = list(records.lines)

    try:
        with writer_lock(env, schema, 0, "a step that fails"):
            raise ValueError("the step failed")
    except ValueError:
        pass
    seen["after_failed_step"] = _lock_view(env, schema)

    records.lines.clear()
    with writer_lock(env, schema, 0, "a step whose lock is taken", heartbeat_seconds=0.3):
        thrift_connection(env).cursor().execute(f"drop view `{schema}`.`{LOCK_VIEW}`")
        deadline = time.monotonic() + 60
        while not any(line.startswith("ERROR ") for line in records.lines) and time.monotonic() < deadline:
            time.sleep(0.2)  # the next heartbeat finds the lock gone
    seen["taken_log"] = list(records.lines)
    (out / "thrift_lock.json").write_text(json.dumps(seen, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
