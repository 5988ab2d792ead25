"""The BizibleId rule (docs/rules.md, BizibleId), for SQL run by ingestion (dbt has its own macro).

The pattern is the dbt var ``calltrail__bizible_id_pattern``, declared once in ``dbt_project.yml``.
"""

from calltrail.dbt_project import project_var

BIZIBLE_ID_PATTERN: str = project_var("calltrail__bizible_id_pattern")


def normalised_bizible_id_sql(column: str) -> str:
    """Trim, lower-case, drop hyphens and braces (DuckDB SQL)."""
    return f"regexp_replace(lower(trim({column})), '[-{{}}]', '', 'g')"
