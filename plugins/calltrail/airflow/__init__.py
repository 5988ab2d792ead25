"""calltrail's adapter to Airflow: connection lookup, alert channels and the task-failure
notifier, Assets, the run context, the cosmos task group of the dbt models and the UI pages.

Nothing below this room (the libraries, ``calltrail.quality``) imports from it.
"""
