"""The recent window the checks also run over, so that months of good history cannot hide a bad week.

A check over every Task ever barely moves when one week goes wrong: after six months, a week in
which most calls lack the BizibleId shifts the all-time share by a few points. The same check over
the last ``CALLTRAIL_DQ_WINDOW_DAYS`` days (by the rows' own time: call time, session start, event
time) sees the week as it is. Both are reported; a window with fewer than
``CALLTRAIL_DQ_WINDOW_MIN_ROWS`` rows is reported as not judged instead of failing on a handful.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from calltrail.settings import QualitySettings


@dataclass(frozen=True)
class Window:
    """``[since, until]`` in UTC (naive, as the warehouse stores times): the last ``days`` days."""

    days: int
    until: datetime
    min_rows: int

    @classmethod
    def ending(cls, q: QualitySettings, as_of: datetime | None = None) -> Window:
        """The window that ends at ``as_of`` (default: now), sized by the settings."""
        at = as_of or datetime.now(UTC)
        if at.tzinfo is not None:
            at = at.astimezone(UTC).replace(tzinfo=None)
        return cls(days=q.window_days, until=at.replace(microsecond=0), min_rows=q.window_min_rows)

    @property
    def since(self) -> datetime:
        return self.until - timedelta(days=self.days)

    @property
    def label(self) -> str:
        """How alerts name the window: ``in the last 7 days (since 2026-11-25 06:00 UTC)``."""
        unit = "day" if self.days == 1 else "days"
        return f"in the last {self.days} {unit} (since {self.since:%Y-%m-%d %H:%M} UTC)"

    def contains(self, column: str) -> str:
        """A SQL condition (DuckDB) that ``column``, a UTC timestamp, falls in the window."""
        return (f"{column} >= timestamp '{self.since.isoformat(sep=' ')}' "
                f"and {column} <= timestamp '{self.until.isoformat(sep=' ')}'")
