"""Alert webhooks: a JSON POST with a Slack-compatible payload, a timeout and retries.

The payload carries ``text`` (what any Slack incoming webhook shows), ``blocks`` and
``attachments`` (Slack's richer layouts), and ``alert``, the alert as data for receivers
that are not Slack. A failed delivery is returned, never raised: a webhook that is down
must not stop a monitoring pass.
"""

from __future__ import annotations

import datetime as dt
import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from loopml.monitoring._alerts import Alert

__all__ = ["Delivery", "WebhookSender", "slack_payload"]

_COLORS = {"critical": "#d62728", "warning": "#ff7f0e", "info": "#1f77b4"}
_RESOLVED_COLOR = "#2ca02c"
# 429 and 5xx may pass; other 4xx answers mean the request itself is wrong.
_RETRY_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})


def _when(ms: int | None) -> str:
    if ms is None:
        return "-"
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def slack_payload(alert: Alert, summary: str) -> dict[str, Any]:
    """The JSON body for ``alert`` (firing or resolved), as Slack incoming webhooks take it."""
    firing = alert.state == "firing"
    headline = (
        f"[{alert.severity.upper()}] {alert.rule} is firing"
        if firing
        else f"[RESOLVED] {alert.rule}"
    )
    where = f" on {alert.deployment}" if alert.deployment else ""
    value = "no longer reported" if alert.value is None else f"{alert.value:.4g}"
    text = f"{headline}{where}: {summary} ({alert.condition}; value {value})"
    fields = [
        ("Deployment", alert.deployment or "-"),
        ("Severity", alert.severity),
        ("Condition", alert.condition),
        ("Value", value),
        ("Since", _when(alert.fired_ms or alert.started_ms)),
    ]
    if not firing:
        fields.append(("Resolved", _when(alert.resolved_ms)))
    return {
        "text": text,
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": headline[:150]}},
            {"type": "section", "text": {"type": "mrkdwn", "text": summary}},
            {
                "type": "section",
                "fields": [{"type": "mrkdwn", "text": f"*{k}*\n{v}"} for k, v in fields],
            },
            {
                "type": "context",
                "elements": [{"type": "mrkdwn", "text": f"loopml alert {alert.id}"}],
            },
        ],
        "attachments": [
            {
                "color": _COLORS.get(alert.severity, "#999999") if firing else _RESOLVED_COLOR,
                "fallback": text,
                "fields": [{"title": k, "value": v, "short": True} for k, v in fields],
            }
        ],
        "alert": {**alert.to_dict(), "summary": summary, "condition": alert.condition},
    }


@dataclass(frozen=True)
class Delivery:
    """How one POST went: ``ok``, the attempts made, the last HTTP status (None when no
    answer came) and, on failure, why."""

    url: str
    ok: bool
    attempts: int
    status: int | None
    error: str | None = None


class WebhookSender:
    """POSTs JSON with a per-attempt ``timeout_s``, retrying ``retries`` times on
    connection errors, timeouts, 429 and 5xx, waiting ``backoff_s`` then twice as long
    each time. A URL that failed every attempt is not tried again by the same sender
    (one pass): later alerts to it fail at once instead of each waiting out the retries.
    """

    def __init__(
        self,
        *,
        timeout_s: float = 5.0,
        retries: int = 2,
        backoff_s: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.timeout_s = timeout_s
        self.retries = retries
        self.backoff_s = backoff_s
        self._sleep = sleep
        self._dead: dict[str, str] = {}

    def post(self, url: str, payload: Any) -> Delivery:
        """POST ``payload`` as JSON to ``url``; never raises."""
        if url in self._dead:
            return Delivery(url, False, 0, None, f"skipped: {self._dead[url]}")
        body = json.dumps(payload, allow_nan=False, default=str).encode()
        status: int | None = None
        error = "not sent"
        for attempt in range(1, self.retries + 2):
            if attempt > 1:
                self._sleep(self.backoff_s * 2 ** (attempt - 2))
            request = urllib.request.Request(
                url,
                data=body,
                method="POST",
                headers={"Content-Type": "application/json", "User-Agent": "loopml-alerts"},
            )
            try:
                with urllib.request.urlopen(request, timeout=self.timeout_s) as answer:
                    answer.read(65536)
                    return Delivery(url, True, attempt, answer.status)
            except urllib.error.HTTPError as exc:
                status, error = exc.code, f"HTTP {exc.code} {exc.reason}"
                if exc.code not in _RETRY_STATUS:
                    return Delivery(url, False, attempt, status, error)
            except (urllib.error.URLError, TimeoutError, OSError) as exc:
                status = None
                reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
                error = (
                    f"{type(reason).__name__}: {reason}" if str(reason) else type(reason).__name__
                )
        self._dead[url] = error
        return Delivery(url, False, self.retries + 1, status, error)
