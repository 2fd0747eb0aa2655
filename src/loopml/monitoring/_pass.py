"""One monitoring pass: a report per deployment with traffic, alert rules evaluated on
its samples, webhooks for what changed, and an event per alert that fired.

``loopml monitor run`` calls :func:`run_monitoring` once; the loop controller calls the
same function on its own schedule.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from loopml.core import NotFoundError, PermissionDeniedError, Settings
from loopml.governance import require
from loopml.monitoring._alert_service import RUN_ACTION, AlertDelivery, AlertEvent, Alerts
from loopml.monitoring._alerts import AlertChange
from loopml.monitoring._monitor import Monitor
from loopml.monitoring._report import MetricSample, MonitorReport
from loopml.monitoring._rules import AlertRule, default_webhook, default_window, load_rules
from loopml.monitoring._webhook import WebhookSender
from loopml.monitoring._windows import DEFAULT_WINDOW, parse_window

__all__ = ["MonitorPass", "run_monitoring"]

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class MonitorPass:
    """What a pass did.

    ``reports`` holds the deployments that had traffic; ``skipped`` those that had none
    yet; ``errors`` the deployments whose report failed (their alerts were left as they
    were), each with the reason. ``changes`` are the alert transitions in the order
    made; ``deliveries`` the webhook POSTs (failed ones included); ``events`` the
    ``alert.<rule>`` events raised for alerts that fired.
    """

    reports: dict[str, MonitorReport]
    skipped: list[str]
    errors: dict[str, str]
    rules: list[AlertRule]
    samples: list[MetricSample]
    changes: list[AlertChange] = field(default_factory=list)
    deliveries: list[AlertDelivery] = field(default_factory=list)
    events: list[AlertEvent] = field(default_factory=list)

    def _kind(self, kind: str) -> list[AlertChange]:
        return [change for change in self.changes if change.kind == kind]

    @property
    def fired(self) -> list[AlertChange]:
        """Alerts that started firing in this pass."""
        return self._kind("firing")

    @property
    def resolved(self) -> list[AlertChange]:
        """Alerts that resolved in this pass (pending ones that cleared included)."""
        return self._kind("resolved")

    @property
    def pending(self) -> list[AlertChange]:
        """Alerts that became pending (breached, waiting out their ``for``)."""
        return self._kind("pending")


def _deployment_names(settings: Settings) -> list[str]:
    from loopml.serving import Deployments

    with Deployments(settings) as deployments:
        return sorted(d.name for d in deployments.list())


def run_monitoring(
    settings: Settings,
    deployments: Sequence[str] | None = None,
    *,
    window: str | None = None,
    rules: Iterable[AlertRule] | None = None,
    sender: WebhookSender | None = None,
    progress: Progress | None = None,
) -> MonitorPass:
    """Run one monitoring pass over ``deployments`` (every deployment when None).

    Args:
        window: the window spec of the reports (``[monitoring] window`` of
            ``loopml.toml`` when None, ``"1h"`` by default).
        rules: the alert rules (when None, :func:`load_rules`: the defaults and
            ``[[monitoring.alerts]]`` of ``loopml.toml``).
        sender: how webhooks are POSTed (timeout, retries); a default one when None.
        progress: ``progress(deployment, done, total)`` while a report reads the log.

    A deployment's failing report is recorded in ``errors`` and the pass goes on; a
    failed webhook or event is recorded too. Never raises for those.

    Raises:
        PermissionDeniedError: the caller may not run monitoring (``monitor.run``).
        NotFoundError: a deployment named in ``deployments`` does not exist.
        ConfigError: ``loopml.toml``'s alert rules or webhook are malformed.
        ValidationError: ``window`` is not a window spec.
    """
    # a bad spec is the caller's mistake, not a deployment's: fail before any report
    window = default_window(settings) if window is None else parse_window(window).text
    rules = load_rules(settings) if rules is None else list(rules)
    webhook = default_webhook(settings)
    with Alerts(settings) as alerts:
        require(settings, alerts.store, RUN_ACTION)
    names = list(deployments) if deployments is not None else _deployment_names(settings)
    reports: dict[str, MonitorReport] = {}
    skipped: list[str] = []
    errors: dict[str, str] = {}
    with Monitor(settings) as monitor:
        for name in names:
            track = None if progress is None else _bind(progress, name)
            try:
                report = monitor.report(name, window, progress=track)
            except PermissionDeniedError:
                raise
            except NotFoundError:
                if deployments is not None:
                    raise
                errors[name] = "the deployment was removed during the pass"
                continue
            except Exception as exc:  # one deployment's failure must not stop the others
                errors[name] = f"{type(exc).__name__}: {exc}"
                continue
            if report.rows_total == 0 or report.current is None:
                skipped.append(name)
            else:
                reports[name] = report
    samples = [s for report in reports.values() for s in report.samples()]
    with Alerts(settings) as alerts:
        changes = alerts.evaluate(rules, samples, deployments=list(reports))
        deliveries = alerts.notify(rules, default_webhook=webhook, sender=sender)
        events = alerts.raise_events(changes)
    return MonitorPass(
        reports=reports,
        skipped=skipped,
        errors=errors,
        rules=rules,
        samples=samples,
        changes=changes,
        deliveries=deliveries,
        events=events,
    )


def _bind(progress: Progress, name: str) -> Callable[[int, int], None]:
    def report(done: int, total: int) -> None:
        progress(name, done, total)

    return report


def latest_samples(
    settings: Settings, deployment: str, window: str = DEFAULT_WINDOW
) -> tuple[list[MetricSample], int | None]:
    """The samples of ``deployment``'s newest stored report of ``window`` windows and when
    it was made (reports of other window specs, run by hand, are not mixed in)."""
    with Monitor(settings) as monitor:
        report = monitor.latest(deployment, window)
    if report is None:
        return [], None
    return report.samples(), report.created_ms
