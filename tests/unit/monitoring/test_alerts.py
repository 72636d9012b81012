"""Alert rules, breaches and their de-duplication, webhooks against a real receiver."""

from __future__ import annotations

import json
import logging
import threading
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from pydantic import ValidationError

from brickyard.monitoring.actions import SIGNATURE_HEADER, act, verify_signature
from brickyard.monitoring.alerts import AlertRule, breaches, parse_condition
from brickyard.monitoring.state import FAILED, SENT, MonitorStore

DAY = [datetime(2026, 1, 1) + timedelta(days=n) for n in range(10)]


def summaries(shares: list[float | None]) -> list[tuple[datetime, dict[str, float | None]]]:
    return [(DAY[n], {"drift_share": share}) for n, share in enumerate(shares)]


def test_a_condition_is_metric_operator_number_with_auc_as_roc_auc() -> None:
    assert parse_condition("drift_share > 0.3") == ("drift_share", ">", 0.3)
    assert parse_condition("auc_drop>=0.05") == ("roc_auc_drop", ">=", 0.05)
    with pytest.raises(ValueError, match="metric op number"):
        parse_condition("drift_share is high")
    with pytest.raises(ValidationError, match="metric op number"):
        AlertRule(when="drift share > 0.3")


def test_a_breach_alerts_once_at_its_consecutive_window_and_a_new_breach_alerts_again() -> None:
    rule = AlertRule(when="drift_share > 0.3", consecutive=2)
    found = breaches(rule, summaries([0.1, 0.5, 0.6, 0.7, 0.8, 0.1, 0.5, 0.1, 0.6, 0.9]))
    assert [(b.start, b.fired) for b in found] == [(DAY[1], DAY[2]), (DAY[8], DAY[9])]
    assert [b.ongoing for b in found] == [False, True]


def test_a_missing_value_ends_a_breach() -> None:
    rule = AlertRule(when="drift_share > 0.3", consecutive=2)
    assert breaches(rule, summaries([0.5, None, 0.5, 0.1])) == []


def test_a_breach_is_stored_once(tmp_path) -> None:
    store = MonitorStore(f"sqlite:///{tmp_path}/state.db")
    values = {"monitor": "m", "rule": "r", "condition": "x > 1", "metric": "x", "value": 2.0, "estimated": False,
              "breach_start": DAY[1], "window_start": DAY[2], "window_end": DAY[3], "message": "x is 2", "run_id": "r1"}
    first = store.add_alert(values)
    assert first is not None and first.status == "pending"
    assert store.add_alert({**values, "window_start": DAY[3], "run_id": "r2"}) is None
    assert store.add_alert({**values, "breach_start": DAY[5]}) is not None
    assert [a.breach_start for a in store.alerts(monitor="m")] == [DAY[5], DAY[1]]


class Receiver:
    """A real HTTP server on loopback that keeps what it was sent."""

    def __init__(self, status: int = 200) -> None:
        self.bodies: list[tuple[bytes, dict[str, str]]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.bodies.append((body, dict(self.headers)))
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.close()


def stored_alert(tmp_path):
    store = MonitorStore(f"sqlite:///{tmp_path}/state.db")
    alert = store.add_alert({
        "monitor": "titanic", "rule": "drift", "condition": "drift_share > 0.3", "metric": "drift_share", "value": 0.6,
        "estimated": False, "breach_start": DAY[1], "window_start": DAY[1], "window_end": DAY[2],
        "message": "monitor titanic: drift_share = 0.6", "run_id": "run-1",
    })
    assert alert is not None
    return store, alert


def test_webhook_posts_the_alert_signed_with_the_secret_from_the_environment(tmp_path, receiver, monkeypatch) -> None:
    monkeypatch.setenv("HOOK_SECRET", "s3cr3t")
    store, alert = stored_alert(tmp_path)
    rule = AlertRule(when="drift_share > 0.3", actions=[{"webhook": {"url": receiver.url, "secret": "${env:HOOK_SECRET}"}}])
    outcomes, _ = act(alert, rule.actions, log=logging.getLogger("test"), launch=None)
    assert outcomes == [{"action": "webhook", "url": receiver.url, "ok": True, "status": 200}]
    (body, headers), = receiver.bodies
    assert json.loads(body)["monitor"] == "titanic" and json.loads(body)["value"] == 0.6
    assert verify_signature(body, headers[SIGNATURE_HEADER], "s3cr3t")
    assert not verify_signature(body, headers[SIGNATURE_HEADER], "another")
    assert store.finish_alert(alert.id, outcomes).status == SENT


def test_a_webhook_that_fails_is_retried_then_recorded_as_failed(tmp_path) -> None:
    failing = Receiver(status=500)
    try:
        store, alert = stored_alert(tmp_path)
        rule = AlertRule(when="drift_share > 0.3", actions=["log", {"webhook": {"url": failing.url, "attempts": 2}}])
        outcomes, _ = act(alert, rule.actions, log=logging.getLogger("test"), launch=None)
    finally:
        failing.close()
    assert len(failing.bodies) == 2
    assert outcomes[0] == {"action": "log", "ok": True}
    assert outcomes[1]["ok"] is False and "HTTP 500" in outcomes[1]["error"]
    assert store.finish_alert(alert.id, outcomes).status == FAILED


def test_a_literal_webhook_secret_is_refused() -> None:
    with pytest.raises(ValidationError, match=r"reference such as \$\{env:"):
        AlertRule(when="x > 1", actions=[{"webhook": {"url": "http://127.0.0.1:1/", "secret": "plain"}}])
