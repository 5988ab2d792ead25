"""The warehouse's one owner: opening the DuckDB file under its one-writer lock
(:mod:`~calltrail.warehouse.duckdb_file`) and the schemas dbt builds and publishes into
(:mod:`~calltrail.warehouse.schemas`)."""
