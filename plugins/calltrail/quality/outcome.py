"""What a data-quality check found: one :class:`Outcome` per check and run, whatever the check."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

OK, WARN, ERROR = "ok", "warn", "error"
LAYERS = ("raw", "freshness", "staging", "marts", "trend")


class DataQualityError(RuntimeError):
    """Checks failed at ``error`` severity; the message lists each with its figures."""


@dataclass
class Outcome:
    check: str
    layer: str
    severity: str  # ok | warn | error
    observed: str
    expected: str
    record_ids: list[str] = field(default_factory=list)
    expectation: str = ""  # the GX expectation type, or the dbt/trend mechanism

    @property
    def failed(self) -> bool:
        return self.severity != OK

    def describe(self) -> str:
        ids = f"; records {', '.join(self.record_ids)}" if self.record_ids else ""
        return (f"[{self.severity}] {self.layer}/{self.check}: observed {self.observed}; "
                f"expected {self.expected}{ids}")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def raise_on_errors(outcomes: list[Outcome], what: str) -> None:
    """Fail the task (and so the run, before publishing) when any outcome is at ``error``."""
    errors = [o for o in outcomes if o.severity == ERROR]
    if errors:
        raise DataQualityError(
            f"{what}: {len(errors)} of {len(outcomes)} checks failed at error severity; "
            "the marts are not published:\n" + "\n".join(f"- {o.describe()}" for o in errors))
