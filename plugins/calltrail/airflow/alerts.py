"""Alerts that reach people: one per failing check per run, through Airflow's provider notifiers.

Channels:
- Slack: ``SlackWebhookNotifier`` on connection ``slack_alerts`` (CALLTRAIL_ALERT_SLACK_CONN_ID);
- e-mail: ``SmtpNotifier`` on connection ``smtp_alerts`` (CALLTRAIL_ALERT_SMTP_CONN_ID) to the
  addresses in ``CALLTRAIL_ALERT_EMAILS``.
Either is optional. Every alert is also written to the task log and appended to ``alerts.jsonl``
beside the warehouse, so with no channel configured nothing is lost. A channel that fails (the
endpoint is down) is logged; it never changes the outcome of the run.
"""

from __future__ import annotations

import html
import json
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from calltrail.airflow.connections import connection_configured
from calltrail.airflow.run_context import RunInfo
from calltrail.quality.outcome import ERROR, Outcome
from calltrail.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class Alert:
    check: str
    layer: str
    severity: str
    observed: str
    expected: str
    record_ids: list[str]
    dag_id: str
    run_id: str
    data_docs: str
    raised_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    task_id: str = ""  # the Airflow task that raised it

    @classmethod
    def of(cls, outcome: Outcome, run: RunInfo, data_docs: str) -> Alert:
        return cls(check=outcome.check, layer=outcome.layer, severity=outcome.severity, observed=outcome.observed,
                   expected=outcome.expected, record_ids=list(outcome.record_ids), dag_id=run.dag_id,
                   run_id=run.run_id, data_docs=data_docs, task_id=run.task_id)

    @property
    def subject(self) -> str:
        if self.layer in ("task", "dbt"):  # a failed Airflow task: its check is the task id
            return f"[calltrail {self.severity.upper()}] {self.dag_id}: task {self.check} failed"
        return f"[calltrail {self.severity.upper()}] {self.layer} check {self.check} failed"

    def lines(self) -> list[tuple[str, str]]:
        rows = [("Check", self.check), ("Layer", self.layer), ("Severity", self.severity),
                ("Observed", self.observed), ("Expected", self.expected)]
        if self.record_ids:
            rows.append((f"Records ({len(self.record_ids)} shown)", ", ".join(self.record_ids)))
        rows.append(("DAG run", f"{self.dag_id} / {self.run_id}"))
        if self.task_id:
            rows.append(("Task", self.task_id))
        rows.append(("Data Docs", self.data_docs))
        if self.severity == ERROR:
            rows.append(("Effect", "the run fails; the published touchpoints stay as they were"))
        return rows

    def text(self) -> str:
        return "\n".join([f"*{self.subject}*", *(f"{k}: {v}" for k, v in self.lines())])

    def html(self) -> str:
        body = "".join(f"<tr><th align='left'>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>"
                       for k, v in self.lines())
        return f"<p>{html.escape(self.subject)}</p><table>{body}</table>"


def _configured(conn_id: str) -> bool:
    try:
        return connection_configured(conn_id)
    except Exception as exc:  # no Airflow at all (a plain script): only the file and the log
        log.info("alert channel %s not looked up: %s", conn_id, exc)
        return False


def _channels(settings: Settings) -> list[tuple[str, Callable[[Alert], Any]]]:
    """The configured channels, looked up once per delivery: name and a notifier for an alert."""
    a = settings.quality.alerts
    out: list[tuple[str, Callable[[Alert], Any]]] = []
    if _configured(a.slack_conn_id):
        from airflow.providers.slack.notifications.slack_webhook import SlackWebhookNotifier

        out.append((f"slack ({a.slack_conn_id})", lambda alert: SlackWebhookNotifier(
            slack_webhook_conn_id=a.slack_conn_id, text=alert.text(), timeout=10)))
    if a.emails and _configured(a.smtp_conn_id):
        from airflow.providers.smtp.notifications.smtp import SmtpNotifier

        out.append((f"e-mail ({a.smtp_conn_id})", lambda alert: SmtpNotifier(
            smtp_conn_id=a.smtp_conn_id, to=list(a.emails), subject=alert.subject, html_content=alert.html())))
    elif a.emails:
        log.warning("CALLTRAIL_ALERT_EMAILS is set but there is no Airflow connection %r: no e-mail sent",
                    a.smtp_conn_id)
    return out


def deliver(outcomes: list[Outcome], settings: Settings, run: RunInfo, context: dict[str, Any] | None = None,
            data_docs: str | None = None) -> list[Alert]:
    """One alert per failing outcome, to the log, ``alerts.jsonl`` and every configured channel."""
    alerts = [Alert.of(o, run, data_docs or settings.data_docs_index) for o in outcomes if o.failed]
    if not alerts:
        return []
    settings.alerts_file.parent.mkdir(parents=True, exist_ok=True)
    with settings.alerts_file.open("a") as fh:
        for alert in alerts:
            fh.write(json.dumps(asdict(alert)) + "\n")
    channels = _channels(settings)
    for alert in alerts:
        (log.error if alert.severity == ERROR else log.warning)("ALERT %s", alert.text().replace("\n", " | "))
        for channel, notifier_for in channels:
            try:
                notifier_for(alert).notify(context or {})
                log.info("alert %s sent to %s", alert.check, channel)
            except Exception as exc:  # a dead endpoint must not change the run's outcome
                log.error("alert %s could not be sent to %s: %s: %s (it is in %s)", alert.check, channel,
                          type(exc).__name__, exc, settings.alerts_file)
    return alerts


def main(argv: list[str] | None = None) -> int:
    """``python -m calltrail.airflow.alerts DAG_ID OBSERVED``: one ``error`` alert for a DAG run that
    failed without any task telling why (a DAG that does not load, a task process killed).

    ``calltrail run`` calls it in a child process with the Airflow environment, so that the
    channels are looked up in the same connections as the tasks' own alerts.
    """
    import argparse

    from calltrail import settings as settings_module

    parser = argparse.ArgumentParser(prog="python -m calltrail.airflow.alerts")
    parser.add_argument("dag_id")
    parser.add_argument("observed")
    parser.add_argument("--run-id", default="manual")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    outcome = Outcome(check=args.dag_id, layer="task", severity=ERROR, observed=args.observed,
                      expected="the DAG run succeeds", expectation="task")
    deliver([outcome], settings_module.load(), RunInfo(args.dag_id, args.run_id))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
