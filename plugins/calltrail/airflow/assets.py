"""Airflow Assets: ingestion publishes the lake datasets, the transformation is scheduled on them.

Kept free of heavy imports: DAG files import this at parse time.
"""

from airflow.sdk import Asset

SALESFORCE_TASKS = Asset(name="calltrail_lake_salesforce_task", uri="calltrail://lake/salesforce_task")
# The Salesforce objects besides Task, by their folder (the object in lower snake case; their datasets
# are lake.layout's salesforce_<folder>, which tests/salesforce checks). The transform reads whatever
# objects are in the lake and is not scheduled on these.
SALESFORCE_OBJECTS = {
    folder: Asset(name=f"calltrail_lake_salesforce_{folder}", uri=f"calltrail://lake/salesforce_{folder}")
    for folder in ("lead", "contact", "opportunity", "opportunity_contact_role")
}
WEB_EVENTS = Asset(name="calltrail_lake_web_events", uri="calltrail://lake/web_events")
TOUCHPOINTS = Asset(name="calltrail_fct_touchpoints", uri="calltrail://warehouse/fct_touchpoints")
