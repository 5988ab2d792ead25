"""The warehouse of the configured dbt target, for everything besides dbt that reads or writes it:
opening it (:mod:`~calltrail.warehouse.target`: the DuckDB file under its one-writer lock, a
PostgreSQL database, a Spark session or Thrift Server), the schemas dbt builds and publishes into
(:mod:`~calltrail.warehouse.schemas`), rows as Arrow (:mod:`~calltrail.warehouse.arrow`) and the
export of a published mart (:mod:`~calltrail.warehouse.export`)."""
