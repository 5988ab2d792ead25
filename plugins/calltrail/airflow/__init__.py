"""calltrail's adapter to Airflow: connection lookup, alert channels and the task-failure
notifier, Assets, the run context, the dbt task group (one build, a task per model) and the UI pages.

Nothing below this room (the libraries, ``calltrail.quality``) imports from it.
"""
