"""Bearer tokens: 401 without a valid one, readers may score, per-token rate limits (429)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from serving_helpers import split_body
from starlette.testclient import TestClient

from brickyard import Workspace
from brickyard.runtime.tokens import TokenStore
from brickyard.serving.auth import Authenticator
from brickyard.serving.errors import RateLimitedError, UnauthenticatedError

Serve = Callable[..., TestClient]


@pytest.fixture
def store(serving_ws: Workspace) -> TokenStore:
    return TokenStore(serving_ws.state_url)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_tokens_are_required_and_checked(serve: Serve, serving_ws: Workspace, store: TokenStore) -> None:
    client = serve(serving_ws, "titanic", auth=True)
    _, reader = store.create("reader", name="test-reader")
    _, admin = store.create("admin", name="test-admin")
    revoked_record, revoked = store.create("reader", name="test-revoked")
    store.revoke(revoked_record.id)

    missing = client.post("/invocations", json=split_body())
    assert missing.status_code == 401 and missing.headers["www-authenticate"].startswith("Bearer")
    assert missing.json()["error_code"] == "UNAUTHENTICATED"
    assert client.post("/invocations", json=split_body(), headers=bearer("bky_not-a-token")).status_code == 401
    assert client.post("/invocations", json=split_body(), headers={"Authorization": f"Basic {reader}"}).status_code == 401
    assert client.post("/invocations", json=split_body(), headers=bearer(revoked)).status_code == 401
    assert client.post("/invocations", json=split_body(), headers=bearer(reader)).status_code == 200
    assert client.post("/serving-endpoints/titanic/invocations", json=split_body(), headers=bearer(admin)).status_code == 200
    # health, readiness and metrics stay open for probes and scrapers
    assert client.get("/healthz").status_code == 200 and client.get("/readyz").status_code == 200
    assert client.get("/metrics").status_code == 200
    assert 'status="401"' in client.get("/metrics").text


def test_rate_limit_answers_429_with_retry_after(serve: Serve, serving_ws: Workspace, store: TokenStore) -> None:
    client = serve(serving_ws, "titanic", auth=True)
    _, limited = store.create("reader", name="test-limited", rate_limit=0.5)
    _, free = store.create("reader", name="test-free")
    assert client.post("/invocations", json=split_body(), headers=bearer(limited)).status_code == 200
    over = client.post("/invocations", json=split_body(), headers=bearer(limited))
    assert over.status_code == 429
    assert int(over.headers["retry-after"]) >= 1 and over.json()["error_code"] == "REQUEST_LIMIT_EXCEEDED"
    assert all(client.post("/invocations", json=split_body(), headers=bearer(free)).status_code == 200 for _ in range(5))


def test_no_auth_lets_anyone_score(serve: Serve, serving_ws: Workspace) -> None:
    client = serve(serving_ws, "titanic", auth=False)
    assert client.post("/invocations", json=split_body()).status_code == 200
    assert client.get("/readyz").json()["auth"] is False


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_verified_tokens_are_cached_for_seconds_and_buckets_refill(store: TokenStore) -> None:
    clock = Clock()
    auth = Authenticator(store, cache_seconds=5, clock=clock)
    record, token = store.create("reader", name="test-cache", rate_limit=2)
    assert auth.authenticate(f"Bearer {token}").id == record.id
    store.revoke(record.id)
    auth.authenticate(f"bearer {token}")  # still cached (and the bucket holds 2)
    with pytest.raises(RateLimitedError) as limited:
        auth.authenticate(f"Bearer {token}")
    assert limited.value.retry_after == 1 and limited.value.headers() == {"Retry-After": "1"}
    clock.now += 6
    with pytest.raises(UnauthenticatedError):
        auth.authenticate(f"Bearer {token}")
