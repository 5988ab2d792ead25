"""Where the warehouse's tables are: the schema dbt builds into (the audit area) and the schema
consumers read, with its publication log. The publish schemas are the dbt project's vars
(``calltrail__publish_schema``, ``calltrail__publish_log_schema``), read here, not written again."""

from __future__ import annotations

from calltrail.dbt_project import project_var

BUILD_SCHEMA = "main"  # dbt-duckdb's default schema: the profile names none, so dbt builds here
PUBLISHED: str = project_var("calltrail__publish_schema")
PUBLICATIONS: str = f"{project_var('calltrail__publish_log_schema')}.publications"
# The consumer marts the publish step copies into PUBLISHED (``calltrail__published_models``).
PUBLISHED_MODELS: tuple[str, ...] = tuple(project_var("calltrail__published_models"))
