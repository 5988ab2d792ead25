"""The Salesforce objects calltrail reads: each one's fields, its lake contract and its SOQL.

One :class:`SalesforceObject` per object; extraction (:mod:`calltrail.salesforce.extract`), landing
files (:mod:`calltrail.salesforce.files`) and the reconciliation of deletes
(:mod:`calltrail.salesforce.reconcile`) take the object as a parameter, so every object goes through
the same machinery: ``queryAll`` or Bulk API 2.0 ``queryAll``, the data's own watermark, deletes,
quarantine with reasons and atomic partitions. Task is one of them (:mod:`calltrail.salesforce.task_record`
builds it: its BizibleId fields are settings); the others are declared here.

Every object's lake columns are its Salesforce API names, typed, timestamps in UTC, and every column
is always present. A field that exists only in some orgs (``CurrencyIsoCode`` exists only where
multi-currency is on) is an *org-dependent* field: extraction reads the object's describe and leaves
the field out of the SOQL where the org has none (Salesforce would answer ``INVALID_FIELD``); its
column is then null, as it is for a landing file without it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from calltrail.lake.convert import Column, Contract
from calltrail.lake.layout import (
    CONTACTS,
    LEADS,
    OPPORTUNITIES,
    OPPORTUNITY_CONTACT_ROLES,
    SalesforceDataset,
)

KEY = ("Id", "SystemModstamp")
# Fields Salesforce adds to an object only in some orgs; the SOQL asks for them only where they exist.
CURRENCY_ISO_CODE = "CurrencyIsoCode"  # multi-currency orgs only


def soql_datetime(value: datetime) -> str:
    """A SOQL date-time literal in UTC, e.g. ``2026-03-01T09:00:00Z``."""
    if value.tzinfo is None:
        raise ValueError(f"{value!r} has no time zone")
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def modstamp_filter(start: datetime | None, end: datetime) -> str:
    """The ``WHERE`` clause of an extraction: ``SystemModstamp`` in ``[start, end)``, or before ``end``."""
    lower = f"SystemModstamp >= {soql_datetime(start)} AND " if start is not None else ""
    return f"WHERE {lower}SystemModstamp < {soql_datetime(end)}"


@dataclass(frozen=True)
class SalesforceObject:
    """One Salesforce object as calltrail reads it."""

    name: str  # the API name, e.g. OpportunityContactRole
    dataset: SalesforceDataset  # where it lives in the lake (from lake.layout)
    columns: tuple[Column, ...]  # the lake's columns, in order, before _loaded_at
    org_dependent: frozenset[str] = frozenset()  # fields some orgs do not have (read from the describe)

    @property
    def folder(self) -> str:
        """The object in lower snake case: its landing folder, ``landing/salesforce/<folder>/``."""
        return re.sub(r"(?<!^)(?=[A-Z])", "_", self.name).lower()

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def contract(self) -> Contract:
        """Salesforce answers with each field's canonical name whatever case the query used, and
        Data Loader headers may be upper case: the contract matches names ignoring case."""
        return Contract(dataset=self.dataset.name, columns=self.columns, key=KEY, case_insensitive_headers=True)

    def selected(self, absent: frozenset[str] = frozenset()) -> tuple[str, ...]:
        """The fields a query asks for: every column but the org-dependent ones the org lacks."""
        return tuple(n for n in self.names if n not in absent)

    def soql(self, fields: tuple[str, ...], start: datetime | None, end: datetime, *, ordered: bool) -> str:
        """Records modified in ``[start, end)`` (or before ``end`` when ``start`` is None).

        ``ordered`` sorts by ``SystemModstamp`` (REST incremental runs); Bulk API 2.0 gains nothing
        from an ``ORDER BY`` and may time out on it, and a full load does not need it.
        """
        order = " ORDER BY SystemModstamp" if ordered else ""
        return f"SELECT {', '.join(fields)} FROM {self.name} {modstamp_filter(start, end)}{order}"

    def count_soql(self, where: str = "") -> str:
        """How many records a query would read (through ``queryAll``, so deleted ones count)."""
        return f"SELECT COUNT() FROM {self.name} {where}".rstrip()

    def ids_soql(self) -> str:
        """Every Id Salesforce still has (through ``queryAll``: the Recycle Bin's too)."""
        return f"SELECT Id FROM {self.name}"


def _common(*columns: Column) -> tuple[Column, ...]:
    return (Column("Id", required=True), *columns,
            Column("SystemModstamp", "timestamp", required=True), Column("IsDeleted", "boolean"))


LEAD = SalesforceObject("Lead", LEADS, _common(
    Column("Email"),
    Column("CreatedDate", "timestamp", required=True),
    Column("IsConverted", "boolean"),
    Column("ConvertedContactId"),
    Column("ConvertedDate", "date"),
))
CONTACT = SalesforceObject("Contact", CONTACTS, _common(
    Column("Email"),
    Column("AccountId"),
    Column("CreatedDate", "timestamp", required=True),
))
OPPORTUNITY = SalesforceObject("Opportunity", OPPORTUNITIES, _common(
    Column("Name"),
    Column("AccountId"),
    Column("Amount", "decimal"),
    Column(CURRENCY_ISO_CODE),
    Column("StageName"),
    Column("CreatedDate", "timestamp", required=True),
    Column("CloseDate", "date", required=True),  # required by Salesforce; a closed one's cut-off
    Column("IsClosed", "boolean"),
    Column("IsWon", "boolean"),
), org_dependent=frozenset({CURRENCY_ISO_CODE}))
OPPORTUNITY_CONTACT_ROLE = SalesforceObject("OpportunityContactRole", OPPORTUNITY_CONTACT_ROLES, _common(
    Column("OpportunityId", required=True),  # both required by Salesforce: a role without them
    Column("ContactId", required=True),  # names nobody
    Column("Role"),
    Column("IsPrimary", "boolean"),
))

# The objects read besides Task, in the order the DAGs show them.
BEYOND_TASK: tuple[SalesforceObject, ...] = (LEAD, CONTACT, OPPORTUNITY, OPPORTUNITY_CONTACT_ROLE)


def object_named(name: str) -> SalesforceObject:
    """An object besides Task by its API name (``OpportunityContactRole``) or its folder
    (``opportunity_contact_role``)."""
    for obj in BEYOND_TASK:
        if name in (obj.name, obj.folder):
            return obj
    raise ValueError(f"calltrail does not read the Salesforce object {name!r}: one of "
                     f"{', '.join(o.name for o in BEYOND_TASK)} (Task has its own settings)")
