"""Trend comparisons: when a metric's move against recent runs is an alert."""

from __future__ import annotations

from datetime import datetime

from calltrail.quality.trends import compare
from calltrail.quality.window import Window
from calltrail.settings import TrendSettings

T = TrendSettings(factor=2.0, min_change=0.05, runs=7, min_runs=3)
W = Window(days=7, until=datetime(2026, 12, 2, 6, 0), min_rows=50)


def severities(current, history, t=T, window=W):
    return {o.check: o.severity for o in compare(current, history, t, window)}


def test_no_comparison_before_enough_runs_are_recorded():
    assert severities({"match_rate_7d": 0.1}, {"match_rate_7d": [0.6, 0.6]}) == {}


def test_a_drop_beyond_the_factor_warns_and_a_steady_value_does_not():
    history = {"match_rate_7d": [0.62, 0.60, 0.65, 0.61]}
    assert severities({"match_rate_7d": 0.25}, history) == {"trend_match_rate_7d": "warn"}
    assert severities({"match_rate_7d": 0.45}, history) == {"trend_match_rate_7d": "ok"}


def test_small_shares_need_an_absolute_change_too():
    history = {"missing_bizible_id_share_7d": [0.01, 0.012, 0.011]}
    assert severities({"missing_bizible_id_share_7d": 0.03}, history) == {"trend_missing_bizible_id_share_7d": "ok"}
    assert severities({"missing_bizible_id_share_7d": 0.40}, history) == {
        "trend_missing_bizible_id_share_7d": "warn"}


def test_row_counts_alert_on_a_collapse_and_on_a_flood():
    history = {"web_events_7d": [10_000, 10_400, 10_900]}
    assert severities({"web_events_7d": 3_000}, history) == {"trend_web_events_7d": "warn"}
    assert severities({"web_events_7d": 30_000}, history) == {"trend_web_events_7d": "warn"}
    assert severities({"web_events_7d": 11_500}, history) == {"trend_web_events_7d": "ok"}


def test_severity_is_configuration():
    t = TrendSettings(factor=2.0, min_change=0.05, runs=7, min_runs=3, severity="error")
    assert severities({"match_rate_7d": 0.1}, {"match_rate_7d": [0.6, 0.6, 0.6]}, t) == {"trend_match_rate_7d": "error"}


def test_the_alert_names_the_window_and_a_changed_window_starts_a_new_baseline():
    history = {"calls_7d": [500, 520, 510]}
    [outcome] = compare({"calls_7d": 40}, history, T, W)
    assert outcome.observed == "call Tasks in the last 7 days (since 2026-11-25 06:00 UTC): 40 in this run", outcome
    fortnight = Window(days=14, until=W.until, min_rows=50)
    assert severities({"calls_14d": 40}, history, window=fortnight) == {}  # no 14-day history yet
