{#- Hooks for models whose tables are cheaper to write with plain strings (make bench: compressing
    strings with FSST took about a third of int_conversions' time, and int_calls_matched_to_sessions
    took 0.3 s longer with it). Only those models: int_sessions took as long either way, and
    plain strings made int_sessions' and fct_touchpoints' tables four times larger.

    DuckDB: before the model, a checkpoint and a `set`; after its commit, a checkpoint and a
    `reset`, so later models compress again. The checkpoints are needed because a small table is
    written to the file only at a checkpoint, with the setting in force at that moment: without
    them, tables built earlier would be written with plain strings, and these with compressed
    ones (at the make bench size the tables are written while they are built). The setting cannot
    go into the profile's config_options (DuckDB ignores it there), and in its settings it would
    apply to every model. Other engines: no hook (dbt skips an empty one).

    Not on an incremental run (the table exists): the few rows it appends are compressed like the
    rest of the file, and the four checkpoints cost more than compressing them (make bench). -#}

{% macro plain_strings_on() -%}
  {{ return(adapter.dispatch('plain_strings_on', 'calltrail')()) }}
{%- endmacro %}

{% macro default__plain_strings_on() -%}
{%- endmacro %}

{% macro duckdb__plain_strings_on() -%}
  {%- if not is_incremental() -%}
  checkpoint; set disabled_compression_methods = 'fsst,dict_fsst'
  {%- endif -%}
{%- endmacro %}

{% macro plain_strings_off() -%}
  {{ return(adapter.dispatch('plain_strings_off', 'calltrail')()) }}
{%- endmacro %}

{% macro default__plain_strings_off() -%}
{%- endmacro %}

{% macro duckdb__plain_strings_off() -%}
  {%- if not is_incremental() -%}
  checkpoint; reset disabled_compression_methods
  {%- endif -%}
{%- endmacro %}
