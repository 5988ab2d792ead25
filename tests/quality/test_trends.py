"""Trend comparisons: when a metric's move against recent runs is an alert."""

from __future__ import annotations

from calltrail.quality.trends import compare
from calltrail.settings import TrendSettings

T = TrendSettings(factor=2.0, min_change=0.05, runs=7, min_runs=3)


def severities(current, history, t=T):
    return {o.check: o.severity for o in compare(current, history, t)}


def test_no_comparison_before_enough_runs_are_recorded():
    assert severities({"match_rate": 0.1}, {"match_rate": [0.6, 0.6]}) == {}


def test_a_drop_beyond_the_factor_warns_and_a_steady_value_does_not():
    history = {"match_rate": [0.62, 0.60, 0.65, 0.61]}
    assert severities({"match_rate": 0.25}, history) == {"trend_match_rate": "warn"}
    assert severities({"match_rate": 0.45}, history) == {"trend_match_rate": "ok"}


def test_small_shares_need_an_absolute_change_too():
    history = {"missing_bizible_id_share": [0.01, 0.012, 0.011]}
    assert severities({"missing_bizible_id_share": 0.03}, history) == {"trend_missing_bizible_id_share": "ok"}
    assert severities({"missing_bizible_id_share": 0.40}, history) == {"trend_missing_bizible_id_share": "warn"}


def test_row_counts_alert_on_a_collapse_and_on_a_flood():
    history = {"rows_web_events": [10_000, 10_400, 10_900]}
    assert severities({"rows_web_events": 3_000}, history) == {"trend_rows_web_events": "warn"}
    assert severities({"rows_web_events": 30_000}, history) == {"trend_rows_web_events": "warn"}
    assert severities({"rows_web_events": 11_500}, history) == {"trend_rows_web_events": "ok"}


def test_severity_is_configuration():
    t = TrendSettings(factor=2.0, min_change=0.05, runs=7, min_runs=3, severity="error")
    assert severities({"match_rate": 0.1}, {"match_rate": [0.6, 0.6, 0.6]}, t) == {"trend_match_rate": "error"}
