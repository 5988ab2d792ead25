"""The duckdb profile's connection options take effect.

dbt-duckdb passes `config_options` to `duckdb.connect(config=...)`. DuckDB ignores some options
there without an error: `disabled_compression_methods` read back empty, so a profile comment
described a setting no build had ever used. Each option must read back as it does after a `SET`.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import jinja2
import yaml

PROFILES = Path(__file__).resolve().parents[2] / "dbt_project" / "profiles.yml"


def duckdb_config_options() -> dict[str, object]:
    """The duckdb output's config_options, with env_var() rendered to its default as dbt would."""
    text = jinja2.Environment().from_string(PROFILES.read_text()).render(
        env_var=lambda name, default=None: default if default is not None else f"<{name}>")
    return yaml.safe_load(text)["calltrail"]["outputs"]["duckdb"]["config_options"]


def test_every_connection_option_reads_back_as_after_a_set():
    options = duckdb_config_options()
    assert options, "the duckdb profile has no config_options"
    opened = duckdb.connect(config=options)
    for key, value in options.items():
        reference = duckdb.connect()
        literal = str(value).lower() if isinstance(value, bool) else str(value)
        reference.execute(f"set {key} = '{literal}'")
        expected = reference.execute(f"select current_setting('{key}')").fetchone()[0]
        default = duckdb.connect().execute(f"select current_setting('{key}')").fetchone()[0]
        got = opened.execute(f"select current_setting('{key}')").fetchone()[0]
        assert got == expected, f"{key}: {got!r} after connect, {expected!r} after SET (default {default!r})"


def test_the_check_catches_an_option_duckdb_ignores_at_connect():
    # The option that was silently dropped: if DuckDB starts applying it at connect, this test
    # fails and the profile may use it again.
    opened = duckdb.connect(config={"disabled_compression_methods": "fsst"})
    assert opened.execute("select current_setting('disabled_compression_methods')").fetchone()[0] == ""
