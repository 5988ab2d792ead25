"""A throwaway PostgreSQL cluster of Debian's server binaries, for the tests that need a real server
(the Airflow metadata topology, the dbt target ``postgres``)."""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg2

from tests.airflow_live import free_port


def as_postgres(cmd: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: run its tools as the postgres user when we are root."""
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


@contextlib.contextmanager
def throwaway_postgres(*databases: str) -> Iterator[int]:
    """Start a cluster on a free port of 127.0.0.1 (user postgres, trust), create ``databases``,
    yield the port; stop and delete the cluster afterwards."""
    initdb = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    assert initdb, ("PostgreSQL server binaries not found: `scripts/system-deps.sh` (run by make test and "
                    ".ci/run) installs Debian's postgresql package")
    bindir = os.path.dirname(initdb[-1])
    # Not under pytest's temporary folder: that one is private to us, and the server runs as postgres.
    root = Path(tempfile.mkdtemp(prefix="calltrail-pg-"))
    data, sockets = root / "data", root / "sockets"
    data.mkdir()
    sockets.mkdir()
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        for d in (data, sockets):
            shutil.chown(d, "postgres")
        os.chmod(root, 0o755)
    port = free_port()
    subprocess.run(as_postgres([f"{bindir}/initdb", "-D", str(data), "-U", "postgres", "--auth=trust",
                                "-E", "UTF8"]), check=True, capture_output=True)
    subprocess.run(as_postgres([f"{bindir}/pg_ctl", "-D", str(data), "-w", "-l", str(root / "server.log"),
                                "-o", f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1", "start"]),
                   check=True, capture_output=True)
    try:
        con = psycopg2.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres")
        con.autocommit = True
        for database in databases:
            con.cursor().execute(f'create database "{database}"')
        con.close()
        yield port
    finally:
        subprocess.run(as_postgres([f"{bindir}/pg_ctl", "-D", str(data), "-m", "fast", "stop"]),
                       check=False, capture_output=True)
        shutil.rmtree(root, ignore_errors=True)
