"""Great Expectations field-population checks, on a real DuckDB warehouse file."""

from __future__ import annotations

import duckdb
import pytest

from calltrail.quality.validate import DataQualityError, validate_warehouse
from calltrail.settings import QualitySettings

Q = QualitySettings()


def warehouse(tmp_path, *, calls_missing_id: int = 0, blank_types: int = 0, touchpoint_types=("Call", "Web Visit")):
    path = tmp_path / "wh.duckdb"
    con = duckdb.connect(str(path))
    con.execute("create table stg_salesforce__tasks (task_id varchar, bizible_id varchar, bizible_id_raw varchar, "
                "task_type_clean varchar, is_call boolean)")
    for i in range(20):
        bid = None if i < calls_missing_id else f"{i:032x}"
        ttype = None if i < blank_types else "Call"
        con.execute("insert into stg_salesforce__tasks values (?, ?, ?, ?, true)", [f"00T{i:015d}", bid, bid, ttype])
    con.execute("insert into stg_salesforce__tasks values ('00TEMAIL', null, null, 'Email', false)")
    con.execute("create table int_sessions as select 's' || i as session_id, 'https://acme.example/' as landing_page, "
                "'google' as touchpoint_source, 'Paid Search' as marketing_channel from range(10) t(i)")
    con.execute("create table fct_touchpoints (touchpoint_id varchar, touchpoint_type varchar, "
                "touchpoint_position varchar, marketing_channel varchar)")
    for i, t in enumerate(touchpoint_types):
        con.execute("insert into fct_touchpoints values (?, ?, ?, 'Direct')", [f"tp{i}", t, "FT, LC" if i == 0 else "Post LC"])
    con.close()
    return path


def test_a_healthy_account_passes_with_a_few_percent_of_calls_without_bizible_id(tmp_path):
    report = validate_warehouse(warehouse(tmp_path, calls_missing_id=1), Q)  # 5 %: normal
    assert report.failures == [] and len(report.results) == 10


def test_forty_percent_of_calls_without_bizible_id_fails_naming_the_expectation_and_figures(tmp_path):
    with pytest.raises(DataQualityError) as err:
        validate_warehouse(warehouse(tmp_path, calls_missing_id=8), Q)
    message = str(err.value)
    assert "1 of 10 expectations failed" in message
    assert "call_tasks: expect_column_values_to_not_be_null(bizible_id) expected mostly=0.9" in message
    assert "element_count=20, unexpected_count=8, unexpected_percent=40.0" in message


def test_blank_task_types_beyond_the_threshold_fail(tmp_path):
    with pytest.raises(DataQualityError, match=r"not_be_null\(task_type_clean\).*unexpected_count=6"):
        validate_warehouse(warehouse(tmp_path, blank_types=6), Q)


def test_an_unexpected_touchpoint_type_is_named(tmp_path):
    with pytest.raises(DataQualityError, match=r"be_in_set\(touchpoint_type\).*examples=\['Fax'\]"):
        validate_warehouse(warehouse(tmp_path, touchpoint_types=("Call", "Fax")), Q)


def test_thresholds_are_configuration(tmp_path):
    path = warehouse(tmp_path, calls_missing_id=8)
    report = validate_warehouse(path, QualitySettings(bizible_id_mostly=0.5))
    assert report.failures == []
