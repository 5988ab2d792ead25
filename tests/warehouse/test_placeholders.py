"""The ``?`` placeholders of calltrail's statements on engines whose drivers take none (a Spark
Thrift Server) or another style (psycopg2's ``%s``). A real PostgreSQL runs the same statements in
tests/transform/test_engines.py."""

from datetime import datetime
from decimal import Decimal

import pytest

from calltrail.warehouse.target import _pg_sql, _spark_sql


def test_spark_values_replace_the_placeholders_as_literals():
    sql = _spark_sql("select * from t where a = ? and b = ? and c = ? and d = ?",
                     [None, "it's", Decimal("1.50"), datetime(2026, 1, 2, 3, 4, 5)])
    assert sql == ("select * from t where a = null and b = 'it\\'s' and c = 1.50bd "
                   "and d = timestamp'2026-01-02 03:04:05'")


@pytest.mark.parametrize("sql", [
    "select 'why?' as q, ? as v",
    "select 'it''s ?' as q, ? as v",
    "select 'it\\'s ?' as q, ? as v",
    'select "a?b" as q, ? as v',
    "select `odd?name` as q, ? as v",
    "select 1 as q, -- a question?\n ? as v",
    "select /* what? */ 1 as q, ? as v",
])
def test_a_question_mark_in_a_string_an_identifier_or_a_comment_is_no_placeholder_on_spark(sql):
    head, _, tail = sql.rpartition("?")
    assert _spark_sql(sql, [7]) == f"{head}7{tail}"


def test_postgres_placeholders_become_psycopg2s_and_every_percent_sign_is_doubled():
    assert _pg_sql("select '50%?' as q, ? as v where x like 'a%'", [7]) == (
        "select '50%%?' as q, %s as v where x like 'a%%'", [7])


def test_a_backslash_is_plain_text_in_a_postgres_string():
    # standard_conforming_strings: 'C:\' is a whole string, so the ? after it is a placeholder
    assert _pg_sql("select 'C:\\' as q, ? as v", [7]) == ("select 'C:\\' as q, %s as v", [7])


@pytest.mark.parametrize("render", [_spark_sql, _pg_sql])
def test_more_or_fewer_values_than_placeholders_is_an_error_that_shows_the_statement(render):
    with pytest.raises(ValueError, match=r"1 placeholders for 2 values in: select 'a\?', \?"):
        render("select 'a?', ?", [1, 2])
