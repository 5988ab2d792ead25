"""Airflow Assets published by ingestion; the transformation DAG is scheduled on them.

Kept free of heavy imports: DAG files import this at parse time.
"""

from airflow.sdk import Asset

SALESFORCE_TASKS = Asset(name="calltrail_lake_salesforce_task", uri="calltrail://lake/salesforce_task")
WEB_EVENTS = Asset(name="calltrail_lake_web_events", uri="calltrail://lake/web_events")
