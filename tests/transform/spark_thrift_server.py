"""A Spark Thrift Server on this machine, for the spark target's ``thrift`` method in the tests: the
server a cluster offers, started from the jars pyspark ships (HiveThriftServer2 of
spark-hive-thriftserver), with its tables and Derby metastore in a folder of its own. It takes
statements over HiveServer2's Thrift protocol, as a cluster's server does.

    python -m tests.transform.spark_thrift_server FOLDER PORT    (runs until interrupted)
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyspark

SPARK_HOME = Path(pyspark.__file__).parent


@dataclass(frozen=True)
class ThriftServer:
    host: str
    port: int
    folder: Path

    def environ(self) -> dict[str, str]:
        """The variables that point the spark target's thrift method at this server."""
        return {"CALLTRAIL_SPARK_METHOD": "thrift", "CALLTRAIL_SPARK_HOST": self.host,
                "CALLTRAIL_SPARK_PORT": str(self.port)}


def tls(folder: Path) -> tuple[dict[str, str], Path]:
    """A certificate for 127.0.0.1 from a CA made here: HiveServer2's settings that serve it (a
    PKCS12 keystore) and the CA's PEM file, for clients to trust."""
    import trustme
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.serialization import pkcs12

    folder.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA()
    issued = ca.issue_cert("127.0.0.1", "localhost")
    ca_file = folder / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    key = serialization.load_pem_private_key(issued.private_key_pem.bytes(), None)
    cert, *chain = (x509.load_pem_x509_certificate(pem.bytes()) for pem in issued.cert_chain_pems)
    password = secrets.token_hex(8)
    keystore = folder / "server.p12"
    keystore.write_bytes(pkcs12.serialize_key_and_certificates(
        b"calltrail-test", key, cert, chain, serialization.BestAvailableEncryption(password.encode())))
    return {"hive.server2.use.SSL": "true", "hive.server2.keystore.path": str(keystore),
            "hive.server2.keystore.password": password}, ca_file


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


@contextmanager
def listening(cmd: list[str], port: int, log: Path, what: str, timeout: float, poll: float = 1.0,
              **popen: Any) -> Iterator[subprocess.Popen]:
    """``cmd`` in a process group of its own, its output in ``log``, once it accepts connections on
    ``port``; stopped with its group (TERM, then KILL) when the block ends."""
    with log.open("w") as fh:
        process = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True, **popen)
    try:
        deadline = time.monotonic() + timeout
        while not accepts(port):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{what} did not start on port {port} within {timeout:.0f} s "
                                   f"(exit {process.poll()}): {log.read_text()[-3000:]}")
            time.sleep(poll)
        yield process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


@contextmanager
def thrift_server(folder: Path, port: int | None = None, timeout: float = 180,
                  hiveconf: Mapping[str, str] | None = None) -> Iterator[ThriftServer]:
    """The server, listening on 127.0.0.1, until the block ends (then stopped with its JVM).
    ``hiveconf``: more of HiveServer2's settings, such as its authentication (ldap_server.py)."""
    port = port or free_port()
    folder.mkdir(parents=True, exist_ok=True)
    warehouse = folder / "warehouse"
    cmd = [str(SPARK_HOME / "bin" / "spark-submit"), "--class", "org.apache.spark.sql.hive.thriftserver.HiveThriftServer2",
           "--name", "calltrail-test-thrift-server", "--master", "local[2]", "--driver-memory", "2g",
           "--conf", f"spark.sql.warehouse.dir={warehouse}",
           "--conf", f"spark.hadoop.javax.jdo.option.ConnectionURL=jdbc:derby:;databaseName={warehouse}/metastore_db;create=true",
           "--conf", f"spark.driver.extraJavaOptions=-Dderby.stream.error.file={folder}/derby.log",
           "--conf", "spark.ui.enabled=false",
           "--hiveconf", f"hive.server2.thrift.port={port}", "--hiveconf", "hive.server2.thrift.bind.host=127.0.0.1",
           *[arg for key, value in (hiveconf or {}).items() for arg in ("--hiveconf", f"{key}={value}")],
           "spark-internal"]
    with listening(cmd, port, folder / "server.log", "the Spark Thrift Server", timeout, cwd=folder,
                   env={**os.environ, "SPARK_HOME": str(SPARK_HOME)}):
        yield ThriftServer("127.0.0.1", port, folder)

if __name__ == "__main__":
    with thrift_server(Path(sys.argv[1]), int(sys.argv[2])) as server:
        print(f"Spark Thrift Server on {server.host}:{server.port}; Ctrl-C stops it", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
