"""The dbt project: its variables, environment and the commands around the build."""
