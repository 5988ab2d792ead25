"""The writers' lock of a warehouse on a Spark Thrift Server (``CALLTRAIL_SPARK_METHOD=thrift``).

A Thrift Server serves many clients and keeps none of them apart: two runs of one deployment (the
scheduler's, and one started by hand on another machine) would build, audit and publish over each
other. So each calltrail step that writes the warehouse there (each dbt command that opens it, the
lake's views, the audit, publish) holds this lock while it runs, as on PostgreSQL
(:func:`calltrail.warehouse.postgres.writer_lock`); another waits up to
``CALLTRAIL_WAREHOUSE_LOCK_WAIT_SECONDS``, then fails naming the holder.

The lock is a view, ``<build schema>._calltrail_writer`` (one per deployment: two deployments on one
server have build schemas of their own). The metastore creates a name once, so of two writers that
create it at once, one fails and waits. Its table properties say who holds it and when the holder
last showed that it lives: a thread of the holder's renews that heartbeat every
:data:`HEARTBEAT_SECONDS` (or a quarter of the staleness limit, when that is less), in the server's
clock (``unix_timestamp()``), which every client reads alike. Unlike PostgreSQL's, the lock does not
end with the holder's connection: a holder that died (killed, its machine lost) leaves it, and the
first writer that finds its heartbeat older than the staleness limit drops it and takes its turn.
That limit is the holder's (``CALLTRAIL_SPARK_LOCK_STALE_SECONDS`` of its process, :data:`STALE_SECONDS`
by default), which the view's properties carry. The holder drops it when its step ends.

Of writers that find a dead holder's lock at the same moment, only one may drop it: another could
drop the new lock of the first instead. So a writer first claims the dead holder's turn by creating
a second view, ``_calltrail_writer_taken_<dead holder's id>``, which the metastore also creates
once; the others find it and wait as for a holder. The claim stays for the dead holder's staleness
limit, longer than a writer takes between reading the dead lock and claiming it, so that a late
writer cannot claim it again; then the next writer that takes the lock drops it. A claim whose
writer died before it took its turn is dropped once it is as old as that limit.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

log = logging.getLogger(__name__)

LOCK_VIEW = "_calltrail_writer"
# How often the holder renews its heartbeat (at most), and how old a heartbeat is when its holder is
# taken for dead unless the setting says otherwise. A renewal is three small statements; the margin
# covers a server slow to answer.
HEARTBEAT_SECONDS = 15.0
STALE_SECONDS = 300.0
# The table properties (Spark hides the values of keys that contain "token" or "secret")
HOLDER, HOLDER_ID, SINCE, HEARTBEAT = "calltrail.holder", "calltrail.holder_id", "calltrail.since", "calltrail.heartbeat"
# The holder's staleness limit: the one a writer that finds the lock applies, so that processes
# configured alike or not never take a live holder's lock for dead
STALE_AFTER = "calltrail.stale_seconds"
CLAIM_PREFIX = f"{LOCK_VIEW}_taken_"
# This process's holds, by server and schema: a step inside a step (one thread each) waits for no one
_held_here: dict[tuple[str, str, str], int] = {}


class SparkBusy(RuntimeError):
    """Another calltrail process writes the warehouse on the Spark Thrift Server and did not let go
    within the wait."""


def _quoted(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def _said(exc: BaseException) -> str:
    """An error on one line, at most 300 characters (PyHive's carry the server's stack trace)."""
    return " ".join(str(exc).split())[:300] or type(exc).__name__


def _server_now(cur: Any) -> int:
    cur.execute("select unix_timestamp()")
    return int(cur.fetchall()[0][0])


def _properties(cur: Any, view: str) -> dict[str, str] | None:
    """The lock view's table properties; None when there is no lock view."""
    try:
        cur.execute(f"show tblproperties {view}")
    except Exception as exc:  # PyHive's OperationalError carries Spark's error class
        if "TABLE_OR_VIEW_NOT_FOUND" in str(exc):
            return None
        raise
    return {str(key): str(value) for key, value in cur.fetchall()}


def _utc(seconds: str | int | None) -> str:
    try:
        return datetime.fromtimestamp(int(seconds or 0), UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    except (TypeError, ValueError):
        return "an unknown time"


def _heartbeat(props: Mapping[str, str]) -> int:
    """The lock's last heartbeat, seconds since 1970 in the server's clock; 0 (long dead) when the
    view has none (made by something else than calltrail)."""
    try:
        return int(props.get(HEARTBEAT, ""))
    except ValueError:
        return 0


def _stale_after(props: Mapping[str, str], default: float) -> float:
    """The staleness limit the lock's holder stated; ``default`` for a lock that states none."""
    try:
        return float(props.get(STALE_AFTER, ""))
    except ValueError:
        return default


def _describe(props: Mapping[str, str], now: int) -> str:
    holder = props.get(HOLDER) or "a writer that did not say who it is"
    return f"'{holder}' (holding it since {_utc(props.get(SINCE))}, last heartbeat {now - _heartbeat(props)} s ago)"


def _outlived(claimed: Mapping[str, str], now: int, default: float) -> bool:
    """Whether a claim is older than the staleness limit it states (``default`` when it states none)."""
    return now - int(claimed.get(SINCE) or 0) > _stale_after(claimed, default)


def _claim(cur: Any, schema: str, props: Mapping[str, str], now: int, limit: float, holder: str) -> bool:
    """Claim the turn of the dead holder whose lock view has ``props``: True when this writer is the
    one to drop its lock. False when another writer claimed it first (a claim older than ``limit``,
    whose writer died before it took its turn, is dropped, and the caller looks again)."""
    dead_id = "".join(c for c in props.get(HOLDER_ID, "").lower() if c in "0123456789abcdef") or "unknown"
    claim = f"{_quoted(schema)}.{_quoted(CLAIM_PREFIX + dead_id)}"
    try:
        cur.execute(f"create view {claim} tblproperties ('{HOLDER}'='{holder}', '{SINCE}'='{now}', "
                    f"'{STALE_AFTER}'='{limit:g}') as select 1 as claimed")
        return True
    except Exception as exc:
        if "ALREADY_EXISTS" not in str(exc):
            raise
    claimed = _properties(cur, claim)
    if claimed is not None and _outlived(claimed, now, limit):
        log.warning("%s, a claim of a dead writer's turn by '%s', is older than %.0f s: that writer died "
                    "before it took its turn; dropped", claim, claimed.get(HOLDER), _stale_after(claimed, limit))
        cur.execute(f"drop view if exists {claim}")
    return False


def _drop_old_claims(cur: Any, schema: str) -> None:
    """Drop the claims older than their dead holder's staleness limit: no writer acts on those
    dead holders' locks any more."""
    cur.execute(f"show views in {_quoted(schema)} like '{CLAIM_PREFIX}*'")
    claims = [str(row[1]) for row in cur.fetchall()]
    if not claims:
        return
    now = _server_now(cur)
    for name in claims:
        claim = f"{_quoted(schema)}.{_quoted(name)}"
        props = _properties(cur, claim)
        if props is not None and _outlived(props, now, STALE_SECONDS):
            cur.execute(f"drop view if exists {claim}")


def _drop_if_held_by(cur: Any, view: str, holder_id: str) -> None:
    """Drop the lock view if ``holder_id`` still holds it (another writer may have taken it since)."""
    props = _properties(cur, view)
    if props is not None and props.get(HOLDER_ID) == holder_id:
        cur.execute(f"drop view if exists {view}")


def _beat(con: Any, view: str, holder_id: str, every: float, stale_seconds: float, stop: threading.Event
          ) -> None:
    """The holder's heartbeat, until ``stop``: its own cursor on the lock's connection, which nothing
    else uses while the lock is held."""
    cur = con.cursor()
    while not stop.wait(every):
        try:
            props = _properties(cur, view)
            if props is None or props.get(HOLDER_ID) != holder_id:
                log.error("the warehouse's writers' lock %s is no longer this process's (%s): another writer "
                          "took it for dead (no heartbeat for more than %.0f s: a suspended machine, a stalled "
                          "process) or it was dropped by hand, and another writer may be writing at the same time",
                          view, "dropped" if props is None else f"now held by {_describe(props, _server_now(cur))}",
                          stale_seconds)
                return
            cur.execute(f"alter view {view} set tblproperties ('{HEARTBEAT}'='{_server_now(cur)}')")
        except Exception as exc:  # the next beat tries again; a lock unrenewed for STALE_SECONDS is lost
            log.warning("could not renew the heartbeat of the warehouse's writers' lock %s: %s", view, _said(exc))


@contextlib.contextmanager
def writer_lock(environ: Mapping[str, str], schema: str, wait_seconds: float, doing: str, *,
                poll_seconds: float = 1.0, heartbeat_seconds: float | None = None,
                stale_seconds: float = STALE_SECONDS, sleep=time.sleep) -> Iterator[float]:
    """Hold the writers' lock of the warehouse whose dbt builds into ``schema`` on the Spark Thrift
    Server of the profile's ``spark_thrift`` output while the block runs; yields the seconds waited.

    Waits up to ``wait_seconds`` while another writer holds it, then raises :class:`SparkBusy`
    naming that writer; a lock whose heartbeat is older than its holder's staleness limit (this
    process's ``stale_seconds`` for a lock that states none) is dropped first. The lock taken here
    states ``stale_seconds``.
    The holder renews its heartbeat every ``heartbeat_seconds``: by default :data:`HEARTBEAT_SECONDS`,
    or a quarter of ``stale_seconds`` when that is less.
    """
    if heartbeat_seconds is None:
        heartbeat_seconds = min(HEARTBEAT_SECONDS, stale_seconds / 4)
    from calltrail.warehouse.spark import profile_output, thrift_connection

    out = profile_output(environ, "spark_thrift")
    where = f"{out['host']}:{out['port']}"
    key = (str(out["host"]), str(out["port"]), schema)
    if _held_here.get(key):
        _held_here[key] += 1
        try:
            yield 0.0
        finally:
            _held_here[key] -= 1
        return
    view = f"{_quoted(schema)}.{_quoted(LOCK_VIEW)}"
    holder_id = uuid.uuid4().hex
    holder = "".join(c for c in f"calltrail pid {os.getpid()} on {socket.gethostname()}: {doing}" if c not in "'\\")
    con = thrift_connection(environ)
    try:
        cur = con.cursor()
        cur.execute(f"show schemas like '{schema}'")
        if not cur.fetchall():
            cur.execute(f"create schema if not exists {_quoted(schema)}")
        started = time.monotonic()
        warned = False
        while True:
            now = _server_now(cur)
            try:
                cur.execute(f"create view {view} tblproperties ('{HOLDER}'='{holder}', '{HOLDER_ID}'='{holder_id}', "
                            f"'{SINCE}'='{now}', '{HEARTBEAT}'='{now}', '{STALE_AFTER}'='{stale_seconds:g}') "
                            "as select 1 as held")
                break
            except Exception as exc:
                props = _properties(cur, view)
                if props is None:
                    # its holder let go just now; when that happens while Spark reads the view to say
                    # it exists, Spark says it cannot find it
                    if "ALREADY_EXISTS" in str(exc) or "TABLE_OR_VIEW_NOT_FOUND" in str(exc):
                        continue
                    raise
            limit = _stale_after(props, stale_seconds)
            if now - _heartbeat(props) > limit and _claim(cur, schema, props, now, limit, holder):
                log.warning("the warehouse's writers' lock %s was left by %s, silent for more than %.0f s "
                            "(its CALLTRAIL_SPARK_LOCK_STALE_SECONDS): taken for dead, %s drops it and takes its turn",
                            view, _describe(props, now), limit, doing)
                _drop_if_held_by(cur, view, props.get(HOLDER_ID, ""))
                continue
            # held, or a dead holder's turn another writer claimed just now: wait as for a holder
            waited = time.monotonic() - started
            if waited >= wait_seconds:
                raise SparkBusy(
                    f"the warehouse (Spark Thrift Server at {where}, schema {schema}) is being written by "
                    f"{_describe(props, now)}, and {doing} needs to write it, one writer at a time. "
                    f"Waited {waited:.0f} s (CALLTRAIL_WAREHOUSE_LOCK_WAIT_SECONDS). Let that run finish, then "
                    "run again; nothing was changed by this one. A writer that died lets go "
                    f"{limit:.0f} s after its last heartbeat (its CALLTRAIL_SPARK_LOCK_STALE_SECONDS; or "
                    f"drop view {schema}.{LOCK_VIEW} once you know it is gone).")
            if not warned:
                log.warning("the warehouse is being written by %s: %s waits up to %.0f s for it",
                            _describe(props, now), doing, wait_seconds)
                warned = True
            sleep(max(0.0, min(poll_seconds, wait_seconds - waited)))
        try:
            _drop_old_claims(cur, schema)
        except Exception as exc:  # the next writer tries again
            log.warning("could not drop the old claims of dead writers' turns in %s: %s", schema, _said(exc))
        _held_here[key] = 1
        stop = threading.Event()
        beat = threading.Thread(target=_beat, args=(con, view, holder_id, heartbeat_seconds, stale_seconds, stop),
                                name="calltrail-writer-lock-heartbeat", daemon=True)
        beat.start()
        try:
            yield time.monotonic() - started
        finally:
            del _held_here[key]
            stop.set()
            beat.join(timeout=60)  # a renewal in flight ends within a statement's time
            try:
                _drop_if_held_by(cur, view, holder_id)
            except Exception as exc:  # the step's own outcome stands; the lock ends with its heartbeat
                log.warning("could not drop the warehouse's writers' lock %s (%s): the next writer takes it "
                            "%.0f s after this one's last heartbeat", view, _said(exc), stale_seconds)
    finally:
        try:
            con.close()
        except Exception as exc:  # a server gone since: the step's own outcome stands
            log.warning("could not close the connection of the warehouse's writers' lock: %s", _said(exc))
