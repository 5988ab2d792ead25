"""Airflow Assets: ingestion publishes the lake datasets, the transformation is scheduled on them.

Kept free of heavy imports: DAG files import this at parse time.
"""

from airflow.sdk import Asset

SALESFORCE_TASKS = Asset(name="calltrail_lake_salesforce_task", uri="calltrail://lake/salesforce_task")
WEB_EVENTS = Asset(name="calltrail_lake_web_events", uri="calltrail://lake/web_events")
TOUCHPOINTS = Asset(name="calltrail_fct_touchpoints", uri="calltrail://warehouse/fct_touchpoints")
