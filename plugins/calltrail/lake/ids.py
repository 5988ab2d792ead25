"""The BizibleId rule (docs/rules.md, BizibleId), for SQL run by ingestion (dbt has its own macro)."""

BIZIBLE_ID_PATTERN = "^[0-9a-f]{32}$"


def normalised_bizible_id_sql(column: str) -> str:
    """Trim, lower-case, drop hyphens and braces (DuckDB SQL)."""
    return f"regexp_replace(lower(trim({column})), '[-{{}}]', '', 'g')"
