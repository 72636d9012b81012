"""What an alert does: log a line, POST a signed JSON webhook, start a pipeline run.

The webhook body is the alert as JSON (`alert_payload`); with a `secret`, the header
`X-Brickyard-Signature: sha256=<hex>` carries HMAC-SHA256 of the exact body bytes under
the secret, which a receiver checks with `verify_signature`. A webhook that fails (no
answer, a status >= 400) is tried `attempts` times, then recorded as failed on the alert.

`run: PIPELINE` starts a run through the workspace's normal run system (a queued run and
its own process, as an HTTP trigger does) with trigger `monitor`, the alert as its reason
in the run's params and `alert-<id>` as its idempotency key, so acting on an alert again
(after a crash) does not start a second run.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from brickyard.config.secrets import resolve
from brickyard.monitoring.alerts import Action, LogAction, RunAction, WebhookAction, WebhookSpec
from brickyard.monitoring.state import AlertRecord

SIGNATURE_HEADER = "X-Brickyard-Signature"
TRIGGER = "monitor"
# Starts a run: (pipeline, trigger, params, idempotency key) -> the run's id.
Launch = Callable[[str, str, dict[str, Any], str], str]


class WebhookError(Exception):
    """A webhook delivery failed (connection, timeout, or an HTTP status >= 400)."""


def alert_payload(alert: AlertRecord) -> dict[str, Any]:
    """The alert as the JSON a webhook receives."""
    return {
        "alert_id": alert.id, "monitor": alert.monitor, "rule": alert.rule, "condition": alert.condition,
        "metric": alert.metric, "value": alert.value, "estimated": alert.estimated,
        "breach_start": alert.breach_start.isoformat(), "window_start": alert.window_start.isoformat(),
        "window_end": alert.window_end.isoformat() if alert.window_end else None,
        "message": alert.message, "run_id": alert.run_id, "created_at": alert.created_at.isoformat(),
    }


def sign(body: bytes, secret: str) -> str:
    """The signature header's value for `body`: `sha256=<hex HMAC-SHA256>`."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify_signature(body: bytes, header: str | None, secret: str) -> bool:
    """Whether `header` is the signature of `body` under `secret` (constant-time)."""
    return header is not None and hmac.compare_digest(header, sign(body, secret))


def post_webhook(spec: WebhookSpec, payload: Mapping[str, Any]) -> int:
    """POST `payload` as JSON to the webhook, signed when it has a secret; the HTTP status.

    Raises:
        WebhookError: every attempt failed (the last failure's text).
        ConfigError: the secret's `${env:NAME}` is not set.
    """
    body = json.dumps(payload, sort_keys=True).encode()
    headers = {"Content-Type": "application/json", "User-Agent": "brickyard-monitor"}
    if spec.secret is not None:
        headers[SIGNATURE_HEADER] = sign(body, resolve(spec.secret))

    def once() -> int:
        request = urllib.request.Request(spec.url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=spec.timeout_seconds) as response:  # noqa: S310 - http(s) only, checked
                return int(response.status)
        except urllib.error.HTTPError as exc:
            raise WebhookError(f"{spec.url} answered HTTP {exc.code}") from exc
        except (urllib.error.URLError, OSError) as exc:
            raise WebhookError(f"{spec.url}: {getattr(exc, 'reason', exc)}") from exc

    retrying = Retrying(
        stop=stop_after_attempt(spec.attempts), wait=wait_exponential(multiplier=0.2, max=2),
        retry=retry_if_exception_type(WebhookError), reraise=True,
    )
    return int(retrying(once))


def act(
    alert: AlertRecord, actions: Sequence[Action], *, log: logging.Logger, launch: Launch | None
) -> tuple[list[dict[str, Any]], str | None]:
    """Run an alert's actions in order; each outcome is recorded (`ok`, and the error or
    the started run), one failing does not stop the next. Returns the outcomes and the id
    of the run a `run:` action started."""
    outcomes: list[dict[str, Any]] = []
    started: str | None = None
    for action in actions:
        if action == "log" or isinstance(action, LogAction):
            level = action.log if isinstance(action, LogAction) else "warning"
            log.log(logging.getLevelName(level.upper()), "ALERT %s", alert.message)
            outcomes.append({"action": "log", "ok": True})
        elif isinstance(action, WebhookAction):
            outcomes.append(_webhook(action.webhook, alert, log))
        elif isinstance(action, RunAction):
            outcome = _run(action.run, alert, log, launch)
            started = outcome.get("run_id") or started
            outcomes.append(outcome)
    return outcomes, started


def _webhook(spec: WebhookSpec, alert: AlertRecord, log: logging.Logger) -> dict[str, Any]:
    try:
        status = post_webhook(spec, alert_payload(alert))
    except Exception as exc:  # noqa: BLE001 - recorded on the alert, and logged
        log.warning("alert %d: webhook %s failed: %s", alert.id, spec.url, exc)
        return {"action": "webhook", "url": spec.url, "ok": False, "error": str(exc)}
    log.info("alert %d: webhook %s answered %d", alert.id, spec.url, status)
    return {"action": "webhook", "url": spec.url, "ok": True, "status": status}


def _run(pipeline: str, alert: AlertRecord, log: logging.Logger, launch: Launch | None) -> dict[str, Any]:
    if launch is None:
        error = "no run system here to start it (the monitor ran outside a pipeline run)"
        log.warning("alert %d: cannot start pipeline %s: %s", alert.id, pipeline, error)
        return {"action": "run", "pipeline": pipeline, "ok": False, "error": error}
    params = {"reason": alert.message, "alert_id": alert.id, "monitor": alert.monitor, "rule": alert.rule}
    try:
        run_id = launch(pipeline, TRIGGER, params, f"alert-{alert.id}")
    except Exception as exc:  # noqa: BLE001 - recorded on the alert, and logged
        log.warning("alert %d: could not start pipeline %s: %s", alert.id, pipeline, exc)
        return {"action": "run", "pipeline": pipeline, "ok": False, "error": str(exc)}
    log.warning("alert %d: started run %s of pipeline %s (trigger monitor)", alert.id, run_id, pipeline)
    return {"action": "run", "pipeline": pipeline, "ok": True, "run_id": run_id}
