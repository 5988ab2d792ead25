"""Operating calltrail's own Airflow: one-off Airflow commands for ``calltrail run``
(:mod:`~calltrail.ops.airflow_cli`), the long-running components of ``make airflow``
(:mod:`~calltrail.ops.airflow_services`) and deployment helpers (:mod:`~calltrail.ops.deploy`)."""
