"""The Spark warehouse of the dbt target ``spark``, reached as dbt reaches it.

``CALLTRAIL_SPARK_METHOD=session`` (the default, dbt-spark's ``session`` method): a Spark session in
this process. Its settings are the ``server_side_parameters`` of the profile's ``spark`` output
(``dbt_project/profiles.yml``), read from there so that dbt and calltrail open the same warehouse
and metastore: ``local[*]`` unless ``CALLTRAIL_SPARK_MASTER`` names a cluster, UTC, the tables and
the Derby metastore under ``CALLTRAIL_SPARK_WAREHOUSE_DIR``. Derby admits one process at a time:
the DAG's warehouse tasks run one by one (the pool ``calltrail_warehouse``), and a session (or a
dbt command) that another process's Spark keeps out first waits up to
``CALLTRAIL_WAREHOUSE_LOCK_WAIT_SECONDS``, then fails with one line that names that process
(:func:`wait_for_metastore`), as the DuckDB file does.

``CALLTRAIL_SPARK_METHOD=thrift`` (dbt-spark's ``thrift`` method): a connection to the Spark Thrift
Server of the profile's ``spark_thrift`` output (host, port, user, authentication and the session
settings, read from there as dbt reads them).

Spark reads the lake where it lies (:mod:`calltrail.transform.spark_lake`).
"""

from __future__ import annotations

import fcntl
import importlib.util
import logging
import os
import re
import shutil
import struct
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

PROFILES = Path(__file__).resolve().parents[3] / "dbt_project" / "profiles.yml"
LOG4J2 = Path(__file__).with_name("spark-log4j2.properties")

log = logging.getLogger(__name__)


class SparkUnavailable(RuntimeError):
    """Spark could not start: no Java, or the metastore is held by another process."""


def profile_output(environ: Mapping[str, str], output: str = "spark", profiles: Path = PROFILES) -> dict[str, Any]:
    """An output of the profile, its values rendered as dbt renders them (``env_var`` with its
    default): strings, but None where a value renders to ``none`` alone (``env_var('X', '') or none``),
    as dbt's native rendering leaves a key unset."""
    import jinja2

    values = yaml.safe_load(profiles.read_text())["calltrail"]["outputs"][output]

    def env_var(name: str, default: str | None = None) -> str:
        if name in environ:
            return environ[name]
        if default is None:
            raise SparkUnavailable(f"{profiles}: the {output} output reads {name}, which is not set")
        return default

    unset = "\x00none\x00"
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, finalize=lambda v: unset if v is None else v)

    def render(value: Any) -> Any:
        if isinstance(value, dict):
            return {str(k): render(v) for k, v in value.items()}
        text = env.from_string(str(value)).render(env_var=env_var)
        return None if text == unset else text

    return render(values)


def session_conf(environ: Mapping[str, str], profiles: Path = PROFILES) -> dict[str, str]:
    """The profile's ``spark`` output's ``server_side_parameters``, rendered as dbt renders them."""
    return profile_output(environ, "spark", profiles).get("server_side_parameters") or {}


def thrift_connection(environ: Mapping[str, str], profiles: Path = PROFILES) -> Any:
    """A PyHive connection to the Spark Thrift Server of the profile's ``spark_thrift`` output, with
    its session settings."""
    from pyhive import hive

    out = profile_output(environ, "spark_thrift", profiles)
    where = f"{out['host']}:{out['port']}"
    # thrift logs a refused connection with its traceback; the error below says it in one line
    logging.getLogger("thrift.transport.TSocket").setLevel(logging.CRITICAL)
    # PyHive logs every statement at INFO, which would fill a command's output (calltrail export)
    logging.getLogger("pyhive.hive").setLevel(logging.WARNING)
    auth = out.get("auth") or "NONE"
    if auth == "KERBEROS" and importlib.util.find_spec("kerberos") is None:
        # PyHive's SASL library offers GSSAPI only with it; without, the login fails after connecting
        raise SparkUnavailable(f"authentication KERBEROS (CALLTRAIL_SPARK_AUTH) to the Spark Thrift Server at {where} "
                               "needs the Python package kerberos (SASL's GSSAPI), which calltrail's lock does not "
                               "include: it has no wheel for Linux and builds against the system's Kerberos headers "
                               "(Debian: libkrb5-dev). Use LDAP, or add kerberos to the project's dependencies")
    has_password = out.get("password") is not None
    if has_password != (auth == "LDAP"):  # PyHive's rule, on both transports
        raise SparkUnavailable(f"the profile's spark_thrift output cannot connect with authentication {auth} "
                               f"{'and a' if has_password else 'but no'} password "
                               f"(CALLTRAIL_SPARK_AUTH, CALLTRAIL_SPARK_PASSWORD): a password goes with ldap only")
    configuration = out.get("server_side_parameters") or {}
    try:
        if str(out.get("use_ssl")).lower() == "true":
            return hive.connect(thrift_transport=_tls_transport(out, auth, environ), configuration=configuration)
        return hive.connect(host=out["host"], port=int(out["port"]), username=out.get("user"),
                            auth=auth, password=out.get("password"),
                            kerberos_service_name=out.get("kerberos_service_name"), configuration=configuration)
    except SparkUnavailable:
        raise
    except Exception as exc:  # thrift's TTransportException, a socket error, PyHive's ValueError
        reason = str(exc).strip() or type(exc).__name__
        if isinstance(exc, ValueError):  # PyHive: a Kerberos service name without KERBEROS
            raise SparkUnavailable(f"the profile's spark_thrift output cannot connect with authentication {auth} "
                                   f"(CALLTRAIL_SPARK_AUTH, CALLTRAIL_SPARK_KERBEROS_SERVICE_NAME): {reason}") from exc
        if "Error validating the login" in reason:  # HiveServer2's answer to credentials it rejects
            raise SparkUnavailable(f"the Spark Thrift Server at {where} refused the login of user "
                                   f"{out.get('user')!r} with authentication {auth} (CALLTRAIL_SPARK_USER, "
                                   f"CALLTRAIL_SPARK_AUTH, CALLTRAIL_SPARK_PASSWORD): {reason}") from exc
        if "read 0 bytes" in reason:  # a server that speaks TLS closes a plain connection at once
            reason += " (the server closed the connection: does it want TLS, CALLTRAIL_SPARK_USE_SSL=true?)"
        raise _unreachable(where, reason) from exc


def _unreachable(where: str, reason: object) -> SparkUnavailable:
    return SparkUnavailable(f"cannot reach the Spark Thrift Server at {where} (CALLTRAIL_SPARK_HOST, "
                            f"CALLTRAIL_SPARK_PORT; the profile's spark_thrift output): {reason}")


def _tls_transport(out: Mapping[str, Any], auth: str, environ: Mapping[str, str]) -> Any:
    """The Thrift transport of a TLS connection (``use_ssl``), the server's certificate verified
    against the system's CAs or ``CALLTRAIL_SPARK_SSL_CA``, then SASL as PyHive does it. One
    handshake first, here: thrift's socket logs why a handshake failed and raises without it."""
    import socket
    import ssl

    import thrift_sasl
    from pyhive.sasl_compat import PureSASLClient
    from thrift.transport.TSSLSocket import TSSLSocket

    host, port = out["host"], int(out["port"])
    where = f"{host}:{port}"
    ca = environ.get("CALLTRAIL_SPARK_SSL_CA") or None
    try:
        context = ssl.create_default_context(cafile=ca)
    except OSError as exc:
        raise SparkUnavailable(f"CALLTRAIL_SPARK_SSL_CA: cannot read the CA file {ca}: {exc}") from exc
    try:
        plain = socket.create_connection((host, port), timeout=60)
    except OSError as exc:
        raise _unreachable(where, exc) from exc
    try:
        tls = context.wrap_socket(plain, server_hostname=host)
    except ssl.SSLCertVerificationError as exc:
        plain.close()
        raise SparkUnavailable(f"the Spark Thrift Server at {where} presented a certificate this machine does not "
                               f"trust (CALLTRAIL_SPARK_SSL_CA names a CA file to trust): "
                               f"{exc.verify_message or exc}") from exc
    except (ssl.SSLError, OSError) as exc:
        plain.close()
        raise SparkUnavailable(f"no TLS connection to the Spark Thrift Server at {where} "
                               f"(CALLTRAIL_SPARK_USE_SSL): {exc}") from exc
    tls.close()
    sock = TSSLSocket(host, port, ssl_context=context)  # the same checks, when the SASL transport opens it
    if auth == "KERBEROS":
        mechanism, credentials = "GSSAPI", {"service": out.get("kerberos_service_name")}
    else:  # NONE and LDAP log in with PLAIN; NONE's server checks neither name nor password
        mechanism, credentials = "PLAIN", {"username": out.get("user") or "calltrail",
                                           "password": out.get("password") or "x"}
    return thrift_sasl.TSaslClientTransport(lambda: PureSASLClient(host, mechanism=mechanism, **credentials),
                                            mechanism, sock)


def metastore(conf: Mapping[str, str]) -> Path | None:
    """The folder of the embedded Derby metastore that the session settings ``conf`` name, or None
    when they name another metastore (a cluster's)."""
    found = re.match(r"jdbc:derby:(?:.*;)?databaseName=([^;]+)", conf.get("spark.hadoop.javax.jdo.option.ConnectionURL", ""))
    return Path(found[1]) if found else None


# A Java process of Spark whose Python driver has ended (it was handed to init) exits within
# seconds: it is waited for this long even by a command that does not wait for a running holder.
ENDING_SPARK_WAIT_SECONDS = 30.0
# Such an ending holder is expected right after a task's process on the same machine ended (calltrail
# run's summary after the transformation DAG): it is named in the log only once waited for this long.
ENDING_SPARK_QUIET_SECONDS = 10.0


@dataclass(frozen=True)
class MetastoreHolder:
    """The Java process that holds the Derby metastore (PID -1: a lock of an open file description,
    no process to name), and the process that started it (1 or 0 when it has ended: the Java
    process is ending)."""

    pid: int
    parent: int

    @property
    def ending(self) -> bool:
        return self.pid > 0 and self.parent <= 1

    def describe(self) -> str:
        from calltrail.warehouse.duckdb_file import process_command

        if self.pid <= 0:
            return "another process"
        if self.ending:
            return f"PID {self.pid}, a Java process whose Python driver has ended: {process_command(self.pid) or '?'}"
        return f"the Java process PID {self.pid} of PID {self.parent}: {process_command(self.parent) or '?'}"


def metastore_holder(folder: Path) -> MetastoreHolder | None:
    """Who holds the Derby metastore in ``folder``, or None when no process does. Derby keeps a
    lock on its file ``dbex.lck`` while a Java process has the database open: it is asked for
    (F_GETLK), never taken, which could make a Derby starting that moment fail."""
    try:
        fd = os.open(folder / "dbex.lck", os.O_RDONLY)
    except FileNotFoundError:  # never opened
        return None
    try:  # struct flock: l_type, l_whence, l_start, l_len, l_pid (native layout)
        asked = struct.pack("hhqqi4x", fcntl.F_WRLCK, os.SEEK_SET, 0, 0, 0)
        kind, _, _, _, pid = struct.unpack("hhqqi4x", fcntl.fcntl(fd, fcntl.F_GETLK, asked))
    finally:
        os.close(fd)
    if kind == fcntl.F_UNLCK:
        return None
    try:
        parent = int(re.search(r"^PPid:\s*(\d+)", Path(f"/proc/{pid}/status").read_text(), re.M)[1])
    except (OSError, TypeError):
        parent = 0
    return MetastoreHolder(pid, parent)


def wait_for_metastore(environ: Mapping[str, str], wait_seconds: float, *, conf: Mapping[str, str] | None = None,
                       poll_seconds: float = 0.5, sleep: Callable[[float], None] = time.sleep) -> float:
    """Before a Spark session starts in this process (calltrail's, or dbt's): wait up to
    ``wait_seconds`` while another process holds the embedded Derby metastore (up to
    ``ENDING_SPARK_WAIT_SECONDS`` for one that is ending), then raise :class:`SparkUnavailable`
    naming it. Returns the seconds waited. Nothing to wait for when this process already has its
    session, or the metastore is not an embedded Derby one. ``conf``: the session settings, when
    the caller has them (else the profile's)."""
    from pyspark import SparkContext

    folder = metastore(session_conf(environ) if conf is None else conf)
    if folder is None or SparkContext._active_spark_context is not None:
        return 0.0
    started = time.monotonic()
    warned = False
    while (holder := metastore_holder(folder)) is not None:
        waited = time.monotonic() - started
        limit = max(wait_seconds, ENDING_SPARK_WAIT_SECONDS) if holder.ending else wait_seconds
        if waited >= limit:
            raise SparkUnavailable(
                f"the Spark metastore {folder} is held by {holder.describe()}: the session method's metastore "
                f"(Derby) admits one process at a time. Waited {waited:.0f} s (CALLTRAIL_WAREHOUSE_LOCK_WAIT_SECONDS). "
                "Let that process finish (a calltrail run or command on the spark target), then run again; "
                "a Spark Thrift Server (CALLTRAIL_SPARK_METHOD=thrift) serves many. The warehouse is unchanged.")
        if not warned and (not holder.ending or waited >= ENDING_SPARK_QUIET_SECONDS):
            log.warning("the Spark metastore %s is held by %s: waiting up to %.0f s for it", folder,
                        holder.describe(), limit)
            warned = True
        sleep(max(0.0, min(poll_seconds, limit - waited)))
    return time.monotonic() - started


def quiet_pyspark_pandas_warning() -> None:
    """pyspark warns, once imported (by calltrail's Spark session, or by Great Expectations on any
    target), that pandas 3 is newer than it knows; calltrail's tests run on this pandas. Called
    before either imports it, so the warning stays out of a command's output and a task's log."""
    warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas", category=FutureWarning)


def with_calltrails_log(conf: Mapping[str, str]) -> tuple[dict[str, str], bool]:
    """The session settings with Spark's log as calltrail keeps it: no progress bar, and errors only
    from Spark's start (:data:`LOG4J2`), unless the profile's ``spark.driver.extraJavaOptions`` names
    a log4j2 file of its own, whose levels are then left as they are. The flag: calltrail's log is
    used (so the session's level is then set to ERROR too)."""
    java_options = conf.get("spark.driver.extraJavaOptions") or ""
    quiet = "-Dlog4j2.configurationFile=" not in java_options
    if quiet:
        java_options = f"{java_options} -Dlog4j2.configurationFile={LOG4J2.as_uri()}".strip()
    return {**conf, "spark.ui.showConsoleProgress": "false", "spark.driver.extraJavaOptions": java_options}, quiet


def session(environ: Mapping[str, str], wait_seconds: float = 0.0) -> Any:
    """The process's Spark session (dbt-spark's, when dbt ran here first), with Hive support; first
    waits (``wait_seconds``) while another process holds the metastore (:func:`wait_for_metastore`)."""
    quiet_pyspark_pandas_warning()
    from pyspark.sql import SparkSession

    conf = session_conf(environ)
    wait_for_metastore(environ, wait_seconds, conf=conf)
    # Py4J logs at INFO the closing of its connection when the process ends, after a command's output
    logging.getLogger("py4j").setLevel(logging.WARNING)
    if "JAVA_HOME" not in os.environ and environ.get("JAVA_HOME"):
        os.environ["JAVA_HOME"] = environ["JAVA_HOME"]
    if conf.get("spark.sql.warehouse.dir"):  # Derby writes its derby.log there from its start
        Path(conf["spark.sql.warehouse.dir"]).mkdir(parents=True, exist_ok=True)
    conf, quiet = with_calltrails_log(conf)
    builder = SparkSession.builder.enableHiveSupport()
    for key, value in conf.items():
        builder = builder.config(key, value)
    try:
        spark = builder.getOrCreate()
    except Exception as exc:  # pyspark's PySparkRuntimeError (no Java), or a Py4J error from Spark's own start
        lines = str(exc).strip().splitlines() or [type(exc).__name__]
        started = f"Spark did not start (spark.master {conf.get('spark.master')}, warehouse {conf.get('spark.sql.warehouse.dir')}): "
        if "JAVA_GATEWAY_EXITED" in lines[0]:  # Spark's Java process did not come up
            java_home = os.environ.get("JAVA_HOME")
            if not (Path(java_home, "bin", "java").exists() if java_home else shutil.which("java")):
                raise SparkUnavailable(f"{started}{lines[0]} Spark needs Java 17 or later on PATH or in JAVA_HOME "
                                       "(Debian: openjdk-17-jre-headless)") from exc
            raise SparkUnavailable(f"{started}Spark's Java process exited at its start; its own output above says "
                                   "why (e.g. a master URL it does not take: CALLTRAIL_SPARK_MASTER)") from exc
        # Py4J: "An error occurred while calling ...", then ": " and the Java exception
        reason = next((line[2:] for line in lines[1:] if line.startswith(": ")), lines[0])
        if "stopped SparkContext" in reason and not str(conf.get("spark.master", "")).startswith("local"):
            # what Spark's own error says when a cluster's master did not take the application
            reason = ("the master did not take the application and Spark stopped: no master answered at that "
                      "address (Spark gives up after about a minute), or it refused the application")
        raise SparkUnavailable(f"{started}{reason} (CALLTRAIL_SPARK_MASTER names the master; Spark's own log above "
                               "says more)") from exc
    if quiet:  # ERROR: Spark warns of every globbed lake path it does not find a metadata folder in
        spark.sparkContext.setLogLevel("ERROR")
    return spark
