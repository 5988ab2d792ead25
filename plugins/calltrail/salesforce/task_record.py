"""The Task record as calltrail reads it: fields, the lake contract and the SOQL."""

from __future__ import annotations

from datetime import UTC, datetime

from calltrail.lake.convert import Column, Contract
from calltrail.lake.layout import SALESFORCE_TASK
from calltrail.settings import SalesforceSettings

STANDARD_FIELDS: tuple[Column, ...] = (
    Column("Id", required=True),
    Column("WhoId"),
    Column("WhatId"),
    Column("Subject"),
    Column("Type"),
    Column("TaskSubtype"),
    Column("CallType"),
    Column("CallDurationInSeconds", "integer"),
    Column("CallObject"),
    Column("CallDisposition"),
    Column("Status"),
    Column("ActivityDate", "date"),
    Column("CreatedDate", "timestamp", required=True),
    Column("LastModifiedDate", "timestamp"),
    Column("SystemModstamp", "timestamp", required=True),
    Column("IsDeleted", "boolean"),
)


def contract(sf: SalesforceSettings) -> Contract:
    """Task columns in the lake: Salesforce API names, typed, timestamps in UTC.

    The BizibleId and touchpoint-date fields keep their configured API names, so the lake always
    says which field a value came from. Salesforce ignores case in SOQL and answers with each
    field's canonical name (``bizible2__BizibleId__c`` for a configured ``bizible2__bizibleid__c``);
    the contract matches names ignoring case, so the value lands under the configured name. A Task
    without a BizibleId is valid here: it is reported downstream, not quarantined.
    """
    return Contract(
        dataset=SALESFORCE_TASK,
        columns=STANDARD_FIELDS
        + (Column(sf.bizible_id_field), Column(sf.touchpoint_date_field, "timestamp")),
        key=("Id", "SystemModstamp"),
        case_insensitive_headers=True,
    )


def field_names(sf: SalesforceSettings) -> tuple[str, ...]:
    return contract(sf).names


def soql_datetime(value: datetime) -> str:
    """A SOQL date-time literal in UTC, e.g. ``2026-03-01T09:00:00Z``."""
    if value.tzinfo is None:
        raise ValueError(f"{value!r} has no time zone")
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def incremental_soql(sf: SalesforceSettings, start: datetime, end: datetime) -> str:
    """Tasks modified in ``[start, end)``; the caller widens ``start`` by the overlap."""
    return (
        f"SELECT {', '.join(field_names(sf))} FROM Task "
        f"WHERE SystemModstamp >= {soql_datetime(start)} AND SystemModstamp < {soql_datetime(end)} "
        "ORDER BY SystemModstamp"
    )


def full_soql(sf: SalesforceSettings, end: datetime) -> str:
    """Every Task modified before ``end`` (a full load; REST or Bulk API 2.0 by the record count)."""
    return f"SELECT {', '.join(field_names(sf))} FROM Task WHERE SystemModstamp < {soql_datetime(end)}"


def modstamp_filter(start: datetime | None, end: datetime) -> str:
    """The ``WHERE`` clause of an extraction: ``SystemModstamp`` in ``[start, end)``, or before ``end``."""
    lower = f"SystemModstamp >= {soql_datetime(start)} AND " if start is not None else ""
    return f"WHERE {lower}SystemModstamp < {soql_datetime(end)}"


def count_soql(where: str = "") -> str:
    """How many Tasks a query would read (through ``queryAll``, so deleted ones count)."""
    return f"SELECT COUNT() FROM Task {where}".rstrip()


def ids_soql() -> str:
    """Every Task Id Salesforce still has (through ``queryAll``: the Recycle Bin's too)."""
    return "SELECT Id FROM Task"
