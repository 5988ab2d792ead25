"""The lake: raw data as Parquet, written by ingestion, read by dbt."""
