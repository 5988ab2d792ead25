"""The PostgreSQL warehouse of the dbt target ``postgres``: how to reach it, and its writers' lock."""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import time
from collections.abc import Iterator, Mapping

log = logging.getLogger(__name__)


def connection_params(environ: Mapping[str, str] | None = None) -> dict[str, object]:
    """psycopg2's connection arguments from the variables the dbt profile's ``postgres`` output reads
    (``CALLTRAIL_PG_HOST``, ``_PORT``, ``_USER``, ``_PASSWORD``, ``_DATABASE``), with its defaults, and
    its TLS (``CALLTRAIL_PG_SSLMODE``, ``_SSLROOTCERT``) when set: libpq's own ``PGSSLMODE`` would
    reach Airflow's metadata database too."""
    from calltrail.settings import profile_variables

    env = os.environ if environ is None else environ
    defaults = profile_variables("postgres")
    host, port, user, password, dbname = (env.get(f"CALLTRAIL_PG_{name}", defaults[f"CALLTRAIL_PG_{name}"])
                                          for name in ("HOST", "PORT", "USER", "PASSWORD", "DATABASE"))
    params: dict[str, object] = {"host": host, "port": int(port), "user": user, "password": password,
                                 "dbname": dbname}
    for key in ("sslmode", "sslrootcert"):
        if value := env.get(f"CALLTRAIL_PG_{key.upper()}"):
            params[key] = value
    return params


class PostgresUnreachable(RuntimeError):
    """The server of ``CALLTRAIL_PG_*`` refused or did not answer; the message says where it was sought."""


def connect(environ: Mapping[str, str] | None = None, *, application_name: str = "calltrail"):
    """A psycopg2 connection whose session time zone is UTC (timestamps read back as stored)."""
    import psycopg2

    params = connection_params(environ)
    try:
        return psycopg2.connect(**params, options="-c TimeZone=UTC", application_name=application_name)
    except psycopg2.OperationalError as exc:
        raise PostgresUnreachable(
            f"cannot connect to PostgreSQL at {params['host']}:{params['port']} (database {params['dbname']}, "
            f"user {params['user']}; CALLTRAIL_PG_*): {' '.join(str(exc).split())}") from exc  # libpq's lines in one


def has_schema(cur, schema: str) -> bool:
    """Whether ``schema`` exists, asked of ``pg_namespace``: ``information_schema`` lists only the
    schemas this user may use."""
    cur.execute("select count(*) from pg_namespace where nspname = %s", (schema,))
    return bool(cur.fetchone()[0])


def ensure_schema(cur, schema: str) -> None:
    """Create ``schema`` unless it exists. Asked first: PostgreSQL refuses even ``create schema if
    not exists`` of an existing schema to a user without CREATE on the database, as where its
    administrator made the schemas (docs/deploying.md)."""
    if not has_schema(cur, schema):
        cur.execute(f"create schema if not exists {quoted(schema)}")


def quoted(name: str) -> str:
    """``name`` as a PostgreSQL identifier, quoted."""
    return '"' + name.replace('"', '""') + '"'


# The one lock of the warehouse's writers: a session-level advisory lock of the database, taken by
# each calltrail step that writes it (the lake's load, each dbt command, the audit) and released when
# the step ends. PostgreSQL itself would let two runs write at once, and two builds of one model then
# fail on each other's tables ("relation ... already exists"); with the lock the second one waits.
# Any bigint serves as the key; this one spells "calltrl" in ASCII.
WRITER_LOCK_KEY = 0x63616C6C74726C
# This process's holds, by database: a step inside a step (one thread each) waits for no one, but
# a step on another database takes that database's lock.
_held_here: dict[tuple[object, ...], int] = {}


class PostgresBusy(RuntimeError):
    """Another calltrail process writes the warehouse and did not let go within the wait."""


def _application_name(doing: str) -> str:
    # PostgreSQL keeps 63 bytes: the PID and host first, so that they survive a long step name
    return f"calltrail pid {os.getpid()} on {socket.gethostname()}: {doing}"[:63]


def _holder(cur) -> str:
    """Who holds the writers' lock, as pg_stat_activity shows that session (the PID in its
    application name is the process on its host; the backend's own PID is PostgreSQL's)."""
    cur.execute(
        "select a.application_name, a.pid, a.client_addr::text, "
        "to_char(a.backend_start at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS') "
        "from pg_locks l join pg_stat_activity a on a.pid = l.pid "
        "where l.locktype = 'advisory' and l.granted and l.database = "
        "(select oid from pg_database where datname = current_database()) "
        "and l.classid = %s and l.objid = %s and l.objsubid = 1",
        ((WRITER_LOCK_KEY >> 32) & 0xFFFFFFFF, WRITER_LOCK_KEY & 0xFFFFFFFF))
    row = cur.fetchone()
    if row is None:
        return "another calltrail process (it let go just now)"
    name, backend, client, since = row
    who = f"'{name}'" if name else "a session without an application name"
    where = f" from {client}" if client else ""
    when = f", connected since {since} UTC" if since else ""  # both hidden from another login without pg_read_all_stats
    return f"{who} (server process {backend}{where}{when})"


@contextlib.contextmanager
def writer_lock(environ: Mapping[str, str] | None, wait_seconds: float, doing: str, *,
                poll_seconds: float = 0.5, sleep=time.sleep) -> Iterator[float]:
    """Hold the warehouse's writers' lock while the block runs; yields the seconds waited for it.

    Waits up to ``wait_seconds`` (``CALLTRAIL_WAREHOUSE_LOCK_WAIT_SECONDS``) while another calltrail
    process holds it, then raises :class:`PostgresBusy` naming that process. The lock is the
    session's: if this process dies, PostgreSQL releases it with the connection.
    """
    params = connection_params(environ)
    database = (params["host"], params["port"], params["dbname"])
    if _held_here.get(database):
        _held_here[database] += 1
        try:
            yield 0.0
        finally:
            _held_here[database] -= 1
        return
    con = connect(environ, application_name=_application_name(doing))
    try:
        con.autocommit = True
        cur = con.cursor()
        # This session is idle while the step runs (a dbt build, for many minutes): a server that
        # ends idle sessions (idle_session_timeout, PostgreSQL 14 and later) would end the lock with it.
        cur.execute("select current_setting('server_version_num')::int >= 140000")
        if cur.fetchone()[0]:
            cur.execute("set idle_session_timeout = 0")
        started = time.monotonic()
        warned = False
        while True:
            cur.execute("select pg_try_advisory_lock(%s)", (WRITER_LOCK_KEY,))
            if cur.fetchone()[0]:
                break
            waited = time.monotonic() - started
            if waited >= wait_seconds:
                params = connection_params(environ)
                raise PostgresBusy(
                    f"the warehouse (PostgreSQL database {params['dbname']} at {params['host']}:{params['port']}) "
                    f"is being written by {_holder(cur)}, and {doing} needs to write it, one writer at a time. "
                    f"Waited {waited:.0f} s "
                    "(CALLTRAIL_WAREHOUSE_LOCK_WAIT_SECONDS). Let that run finish, then run again; nothing "
                    "was changed by this one. (Two deployments must not share a database: "
                    "docs/deploying.md.)")
            if not warned:
                log.warning("the warehouse is being written by %s: %s waits up to %.0f s for it",
                            _holder(cur), doing, wait_seconds)
                warned = True
            sleep(max(0.0, min(poll_seconds, wait_seconds - waited)))
        _held_here[database] = 1
        try:
            yield time.monotonic() - started
        finally:
            del _held_here[database]
    finally:
        con.close()  # ends the session, and with it the lock


class PublishBlocked(RuntimeError):
    """Publish waited in vain for other sessions' locks on the published tables: nothing was published."""


def sessions_holding(environ: Mapping[str, str] | None, schema: str) -> str:
    """The other sessions that hold a lock on a table of ``schema``, described for a message
    (another login's state, address and times are hidden without ``pg_read_all_stats``)."""
    con = connect(environ)
    try:
        con.autocommit = True
        cur = con.cursor()
        cur.execute(
            "select a.pid, a.application_name, a.usename, a.client_addr::text, a.state, "
            "to_char(coalesce(a.xact_start, a.query_start) at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS'), "
            "string_agg(distinct n.nspname || '.' || c.relname, ', ') "
            "from pg_locks l join pg_class c on c.oid = l.relation join pg_namespace n on n.oid = c.relnamespace "
            "join pg_stat_activity a on a.pid = l.pid "
            "where n.nspname = %s and l.granted and a.pid <> pg_backend_pid() "
            "group by 1, 2, 3, 4, 5, 6 order by 1", (schema,))
        found = []
        for pid, name, user, client, state, since, tables in cur.fetchall():
            who = f"'{name}'" if name else "a session without an application name"
            details = [f"server process {pid}", f"user {user}"]
            if client:
                details.append(f"from {client}")
            if state:
                details.append(f"{state} since {since} UTC" if since else state)
            found.append(f"{who} ({', '.join(details)}) holds {tables}")
        return "; ".join(found) or "a session that has let go since"
    finally:
        con.close()
