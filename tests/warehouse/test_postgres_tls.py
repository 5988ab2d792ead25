"""TLS to the PostgreSQL warehouse (``CALLTRAIL_PG_SSLMODE``, ``CALLTRAIL_PG_SSLROOTCERT``), for
calltrail's connections and dbt's, against a throwaway server of Debian's binaries that accepts TLS
connections only, with a certificate from a CA made for the test."""

import os
import shutil
import subprocess
from pathlib import Path

import psycopg2
import pytest
import trustme

from calltrail.warehouse.local_postgres import USER, throwaway
from calltrail.warehouse.postgres import PostgresUnreachable, connect
from tests.airflow_env import BIN

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def tls_only(tmp_path_factory):
    """The server's variables (``CALLTRAIL_PG_*``) and the CA file that its certificate comes from."""
    folder = tmp_path_factory.mktemp("pg_tls")
    ca = trustme.CA()
    ca_file = folder / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    issued = ca.issue_cert("127.0.0.1", "localhost")
    with throwaway("calltrail") as server:
        con = psycopg2.connect(host=server["CALLTRAIL_PG_HOST"], port=int(server["CALLTRAIL_PG_PORT"]),
                               user=USER, dbname="postgres", sslmode="disable")
        con.autocommit = True
        cur = con.cursor()
        cur.execute("show data_directory")
        data = Path(cur.fetchone()[0])
        cur.execute("show hba_file")
        hba = Path(cur.fetchone()[0])
        # server.crt and server.key in the data folder: PostgreSQL's default ssl_cert_file, ssl_key_file
        (data / "server.crt").write_bytes(b"".join(pem.bytes() for pem in issued.cert_chain_pems))
        (data / "server.key").write_bytes(issued.private_key_pem.bytes())
        hba.write_text("local all all trust\nhostssl all all 127.0.0.1/32 trust\nhostnossl all all 127.0.0.1/32 reject\n")
        for path in (data / "server.crt", data / "server.key", hba):
            if os.geteuid() == 0:
                shutil.chown(path, USER)
            path.chmod(0o600)
        cur.execute("alter system set ssl = on")
        cur.execute("select pg_reload_conf()")
        con.close()
        yield server, ca_file


def test_calltrails_connection_verifies_the_servers_certificate(tls_only):
    server, ca_file = tls_only
    con = connect({**server, "CALLTRAIL_PG_SSLMODE": "verify-full", "CALLTRAIL_PG_SSLROOTCERT": str(ca_file)})
    try:
        cur = con.cursor()
        cur.execute("select ssl from pg_stat_ssl where pid = pg_backend_pid()")
        assert cur.fetchone() == (True,)
    finally:
        con.close()


@pytest.mark.parametrize(("variables", "said"), [
    ({"CALLTRAIL_PG_SSLMODE": "disable"}, "no encryption"),  # the server's pg_hba.conf refuses it
    ({"CALLTRAIL_PG_SSLMODE": "verify-full", "CALLTRAIL_PG_SSLROOTCERT": "/nonexistent/ca.pem"},
     "root certificate file"),
])
def test_without_tls_or_a_trusted_certificate_the_connection_fails_naming_the_server(tls_only, variables, said):
    server, _ = tls_only
    with pytest.raises(PostgresUnreachable) as error:
        connect({**server, **variables})
    message = str(error.value)
    assert message.startswith(f"cannot connect to PostgreSQL at 127.0.0.1:{server['CALLTRAIL_PG_PORT']} "
                              "(database calltrail, user postgres; CALLTRAIL_PG_*): ")
    assert said in message


def dbt_debug(env: dict[str, str]) -> subprocess.CompletedProcess:
    """``dbt debug`` of the profile's postgres output: its connection test."""
    return subprocess.run([str(BIN / "dbt"), "--no-use-colors", "debug", "--project-dir", str(ROOT / "dbt_project"),
                           "--profiles-dir", str(ROOT / "dbt_project"), "--target", "postgres"],
                          env=env, capture_output=True, text=True, timeout=300)


def test_dbt_reaches_the_server_over_tls_with_the_same_variables_and_without_it_is_refused(tls_only, tmp_path):
    server, ca_file = tls_only
    env = {**os.environ, **server, "CALLTRAIL_PG_SSLMODE": "verify-full", "CALLTRAIL_PG_SSLROOTCERT": str(ca_file),
           "CALLTRAIL_WAREHOUSE": str(tmp_path / "unused.duckdb"), "DBT_LOG_PATH": str(tmp_path / "logs")}
    out = dbt_debug(env)
    shown = out.stdout + out.stderr
    assert out.returncode == 0, shown[-3000:]
    assert "Connection test: [OK connection ok]" in shown
    refused = dbt_debug({**env, "CALLTRAIL_PG_SSLMODE": "disable"})
    assert refused.returncode != 0
    assert "no encryption" in refused.stdout + refused.stderr
