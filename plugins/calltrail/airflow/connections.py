"""Airflow connections: the one lookup every task uses (Salesforce, Slack, SMTP)."""

from __future__ import annotations


def connection_configured(conn_id: str) -> bool:
    """Whether Airflow has connection ``conn_id`` (environment, secrets backend or metadata DB).

    Not found is ``False``; any other failure (no metadata database reachable) raises.
    """
    from airflow.sdk import BaseHook

    try:
        BaseHook.get_connection(conn_id)
    except Exception as exc:  # the SDK and core raise different NotFound classes
        if type(exc).__name__ == "AirflowNotFoundException":
            return False
        raise
    return True
