"""The Spark warehouse of the dbt target ``spark``, reached as dbt reaches it.

``CALLTRAIL_SPARK_METHOD=session`` (the default, dbt-spark's ``session`` method): a Spark session in
this process. Its settings are the ``server_side_parameters`` of the profile's ``spark`` output
(``dbt_project/profiles.yml``), read from there so that dbt and calltrail open the same warehouse
and metastore: ``local[*]`` unless ``CALLTRAIL_SPARK_MASTER`` names a cluster, UTC, the tables and
the Derby metastore under ``CALLTRAIL_SPARK_WAREHOUSE_DIR``. Derby admits one process at a time:
the DAG's warehouse tasks run one by one (the pool ``calltrail_warehouse``).

``CALLTRAIL_SPARK_METHOD=thrift`` (dbt-spark's ``thrift`` method): a connection to the Spark Thrift
Server of the profile's ``spark_thrift`` output (host, port, user, authentication and the session
settings, read from there as dbt reads them).

Spark reads the lake where it lies (:mod:`calltrail.transform.spark_lake`).
"""

from __future__ import annotations

import importlib.util
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

PROFILES = Path(__file__).resolve().parents[3] / "dbt_project" / "profiles.yml"


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


def session(environ: Mapping[str, str]) -> Any:
    """The process's Spark session (dbt-spark's, when dbt ran here first), with Hive support."""
    from pyspark.sql import SparkSession

    conf = session_conf(environ)
    if "JAVA_HOME" not in os.environ and environ.get("JAVA_HOME"):
        os.environ["JAVA_HOME"] = environ["JAVA_HOME"]
    builder = SparkSession.builder.enableHiveSupport()
    for key, value in conf.items():
        builder = builder.config(key, value)
    try:
        spark = builder.getOrCreate()
    except Exception as exc:  # pyspark raises PySparkRuntimeError (no Java) or a Py4J error (metastore)
        raise SparkUnavailable(f"Spark did not start (spark.master {conf.get('spark.master')}, warehouse "
                               f"{conf.get('spark.sql.warehouse.dir')}): {str(exc).strip().splitlines()[0]} "
                               "Spark needs Java 17 or later on PATH or in JAVA_HOME (Debian: "
                               "openjdk-17-jre-headless)") from exc
    # ERROR: Spark warns of every globbed lake path it does not find a metadata folder in
    spark.sparkContext.setLogLevel("ERROR")
    return spark
