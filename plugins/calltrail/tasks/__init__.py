"""Every Airflow task's entry point: thin functions that DAG files call with the run's values and
that call the libraries below (lake, salesforce, web, transform, quality, warehouse).

- :mod:`calltrail.tasks.ingest`: landing files and the Salesforce API into the lake;
- :mod:`calltrail.tasks.transform`: the dbt docs of every build (the build and the models' tasks
  are the dbt task group of :mod:`calltrail.airflow.dbt_task_group`);
- :mod:`calltrail.tasks.quality`: source freshness and the audit gate before publishing;
- :mod:`calltrail.tasks.publish`: the audited marts into the publish schema.
"""
