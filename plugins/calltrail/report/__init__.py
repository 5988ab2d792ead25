"""The report page: what marketers look at, written from the published marts by every publish.

``page.write(settings)`` reads aggregates (and bounded lists: the newest examples, a set of
journeys) from the publish schema and the run history (``run_metrics`` of the quality schema), and writes
``CALLTRAIL_REPORT_DIR/index.html`` with its scripts beside it: the page opens from ``file://``
with no network, and the Airflow plugin serves the same folder behind the login.
"""
