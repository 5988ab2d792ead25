"""The Task record as calltrail reads it: its fields (two of them settings), as a :class:`SalesforceObject`."""

from __future__ import annotations

from calltrail.lake.convert import Column
from calltrail.lake.layout import TASKS
from calltrail.salesforce.objects import SalesforceObject
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
