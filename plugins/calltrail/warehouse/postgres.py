"""The PostgreSQL warehouse of the dbt target ``postgres``: how to reach it."""

from __future__ import annotations

import os
from collections.abc import Mapping


def connection_params(environ: Mapping[str, str] | None = None) -> dict[str, object]:
    """psycopg2's connection arguments from the variables the dbt profile's ``postgres`` output reads
    (``CALLTRAIL_PG_HOST``, ``_PORT``, ``_USER``, ``_PASSWORD``, ``_DATABASE``), with its defaults, and
    its TLS (``CALLTRAIL_PG_SSLMODE``, ``_SSLROOTCERT``) when set: libpq's own ``PGSSLMODE`` would
    reach Airflow's metadata database too."""
    env = os.environ if environ is None else environ
    params: dict[str, object] = {
        "host": env.get("CALLTRAIL_PG_HOST", "localhost"),
        "port": int(env.get("CALLTRAIL_PG_PORT", "5432")),
        "user": env.get("CALLTRAIL_PG_USER", "calltrail"),
        "password": env.get("CALLTRAIL_PG_PASSWORD", ""),
        "dbname": env.get("CALLTRAIL_PG_DATABASE", "calltrail"),
    }
    for key in ("sslmode", "sslrootcert"):
        if value := env.get(f"CALLTRAIL_PG_{key.upper()}"):
            params[key] = value
    return params


class PostgresUnreachable(RuntimeError):
    """The server of ``CALLTRAIL_PG_*`` refused or did not answer; the message says where it was sought."""


def connect(environ: Mapping[str, str] | None = None):
    """A psycopg2 connection whose session time zone is UTC (timestamps read back as stored)."""
    import psycopg2

    params = connection_params(environ)
    try:
        return psycopg2.connect(**params, options="-c TimeZone=UTC")
    except psycopg2.OperationalError as exc:
        raise PostgresUnreachable(
            f"cannot connect to PostgreSQL at {params['host']}:{params['port']} (database {params['dbname']}, "
            f"user {params['user']}; CALLTRAIL_PG_*): {' '.join(str(exc).split())}") from exc  # libpq's lines in one
