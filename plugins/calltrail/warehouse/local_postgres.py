"""A throwaway PostgreSQL server of Debian's server binaries on this machine.

``calltrail run`` on the dbt target ``postgres`` with no server configured (no ``CALLTRAIL_PG_HOST``)
starts one for the run and removes it when the run ends; the tests start one the same way. It
listens on a free port of 127.0.0.1 only, trusts local connections, and lives in a new temporary
folder. PostgreSQL refuses to run as root: as root its tools run as the ``postgres`` user.
"""

from __future__ import annotations

import contextlib
import glob
import logging
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger(__name__)

USER = "postgres"


class LocalPostgresError(RuntimeError):
    """The server binaries are missing, or the server did not start; the message says which."""


def _bindir() -> str:
    initdb = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not initdb:
        raise LocalPostgresError(
            "PostgreSQL server binaries not found (/usr/lib/postgresql/*/bin): install Debian's postgresql "
            "package (scripts/system-deps.sh does), or point CALLTRAIL_PG_* at a server")
    return os.path.dirname(initdb[-1])


def _as_postgres(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", USER, "--", *cmd] if os.geteuid() == 0 else cmd


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(cmd: list[str], what: str) -> None:
    done = subprocess.run(_as_postgres(cmd), capture_output=True, text=True)
    if done.returncode != 0:
        raise LocalPostgresError(f"{what} failed ({' '.join(cmd[:1])}): {(done.stderr or done.stdout).strip()}")


@contextlib.contextmanager
def throwaway(*databases: str) -> Iterator[dict[str, str]]:
    """Start a server, create ``databases``, and yield the ``CALLTRAIL_PG_*`` variables that reach
    it (user ``postgres``, the first database); stop it and delete its folder afterwards."""
    import psycopg2

    bindir = _bindir()
    # Not under a private temporary folder: as root the server runs as postgres and must reach it.
    root = Path(tempfile.mkdtemp(prefix="calltrail-pg-"))
    data, sockets = root / "data", root / "sockets"
    data.mkdir()
    sockets.mkdir()
    if os.geteuid() == 0:
        for d in (root, data, sockets):
            shutil.chown(d, USER)
        os.chmod(root, 0o755)
    port = _free_port()
    started = False
    try:
        _run([f"{bindir}/initdb", "-D", str(data), "-U", USER, "--auth=trust", "-E", "UTF8"], "initdb")
        _run([f"{bindir}/pg_ctl", "-D", str(data), "-w", "-l", str(root / "server.log"),
              "-o", f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1", "start"], "starting PostgreSQL")
        started = True
        con = psycopg2.connect(host="127.0.0.1", port=port, user=USER, dbname="postgres")
        con.autocommit = True
        for database in databases:
            con.cursor().execute(f'create database "{database}"')
        con.close()
        log.debug("throwaway PostgreSQL server on 127.0.0.1:%d in %s", port, root)
        yield {"CALLTRAIL_PG_HOST": "127.0.0.1", "CALLTRAIL_PG_PORT": str(port), "CALLTRAIL_PG_USER": USER,
               "CALLTRAIL_PG_PASSWORD": "", "CALLTRAIL_PG_DATABASE": databases[0] if databases else "postgres"}
    finally:
        if started:
            subprocess.run(_as_postgres([f"{bindir}/pg_ctl", "-D", str(data), "-m", "fast", "stop"]),
                           check=False, capture_output=True)
        shutil.rmtree(root, ignore_errors=True)
