"""The Task record as calltrail reads it: its fields (two of them settings), as a :class:`SalesforceObject`."""

from __future__ import annotations

from datetime import datetime

from calltrail.lake.convert import Column, Contract
from calltrail.lake.layout import TASKS
from calltrail.salesforce.objects import SalesforceObject, modstamp_filter, soql_datetime
from calltrail.settings import SalesforceSettings

__all__ = ["STANDARD_FIELDS", "contract", "field_names", "full_soql", "incremental_soql", "modstamp_filter",
           "soql_datetime", "task_object"]

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


def task_object(sf: SalesforceSettings) -> SalesforceObject:
    """Task as the extraction, the landing files and the reconciliation read it.

    The BizibleId and touchpoint-date fields keep their configured API names, so the lake always
    says which field a value came from. Salesforce ignores case in SOQL and answers with each
    field's canonical name (``bizible2__BizibleId__c`` for a configured ``bizible2__bizibleid__c``);
    the contract matches names ignoring case, so the value lands under the configured name. A Task
    without a BizibleId is valid here: it is reported downstream, not quarantined.
    """
    return SalesforceObject("Task", TASKS, STANDARD_FIELDS
                            + (Column(sf.bizible_id_field), Column(sf.touchpoint_date_field, "timestamp")))


def contract(sf: SalesforceSettings) -> Contract:
    """Task columns in the lake: Salesforce API names, typed, timestamps in UTC."""
    return task_object(sf).contract()


def field_names(sf: SalesforceSettings) -> tuple[str, ...]:
    return contract(sf).names


def incremental_soql(sf: SalesforceSettings, start: datetime, end: datetime) -> str:
    """Tasks modified in ``[start, end)``; the caller widens ``start`` by the overlap."""
    task = task_object(sf)
    return task.soql(task.names, start, end, ordered=True)


def full_soql(sf: SalesforceSettings, end: datetime) -> str:
    """Every Task modified before ``end`` (a full load; REST or Bulk API 2.0 by the record count)."""
    task = task_object(sf)
    return task.soql(task.names, None, end, ordered=False)
