"""The web console in a real browser: headless Chromium (the system's) driven by Playwright,
against `brickyard server` started as a user would, over the demo workspace.

Screenshots of each page go to the test's tmp folder; with BRICKYARD_CONSOLE_DOCS=1 the ones
of the tour in docs/console.md are (re)written under docs/console/.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from cli_helpers import BRICKYARD, brickyard, free_port, wait_for_port

playwright = pytest.importorskip("playwright.sync_api", reason="the browser tests need playwright (the test extra)")

pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.slow]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
DOCS = Path(__file__).resolve().parents[2] / "docs" / "console"
ENDPOINT = "titanic"


@dataclass(frozen=True)
class Console:
    url: str
    root: Path
    reader: str
    runner: str
    shots: Path
    log: Path


def _token(root: Path, role: str) -> str:
    made = brickyard("tokens", "create", "--role", role, "--name", f"console {role}", cwd=root)
    assert made.returncode == 0, made.stderr
    return made.stdout.strip()


def _inference_log(root: Path) -> None:
    """An endpoint in the config and 40 requests in its inference log (what `brickyard
    serve` writes), so the Endpoints page has traffic to show."""
    from brickyard import Workspace
    from brickyard.serving.inference_log import InferenceLog

    config = root / "brickyard.yaml"
    config.write_text(config.read_text() + f"\nendpoints:\n  {ENDPOINT}:\n    shadow: true\n")
    ws = Workspace.open(root)
    log = InferenceLog(ws.lake, "gold.inference_log")
    now = time.time()
    for i in range(40):
        status = 500 if i == 0 else 200
        variant = "shadow" if i % 4 == 0 else "champion"
        log.record((f"r{i}", now - 60 + i, ENDPOINT, ENDPOINT, "1", variant, status, float(i + 1), 1, b"{}", b"{}", None))
    assert log.flush() == 40


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    """The demo workspace (small), a reader and a runner token, and `brickyard server` on a
    free loopback port."""
    home = tmp_path_factory.mktemp("console")
    made = brickyard("demo", "demo", "--rows", "1000", cwd=home)
    assert made.returncode == 0, made.stdout[-3000:] + made.stderr
    root = home / "demo"
    _inference_log(root)
    reader, runner = _token(root, "reader"), _token(root, "runner")
    port = free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}  # the access log reaches server.log as it is written
    env.pop("BRICKYARD_WORKSPACE", None)
    log = (home / "server.log").open("wb")
    server = subprocess.Popen([*BRICKYARD, "server", "--port", str(port), "--no-triggers"], cwd=root, env=env,
                              stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for_port(port, server)
        shots = tmp_path_factory.mktemp("screenshots")
        yield Console(f"http://127.0.0.1:{port}", root, reader, runner, shots, home / "server.log")
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with playwright.sync_playwright() as p:
        args = ["--no-sandbox"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []
        launched = p.chromium.launch(executable_path=CHROMIUM, args=args)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: object) -> Iterator[object]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})  # type: ignore[attr-defined]
    opened = context.new_page()
    yield opened
    context.close()


def login(page: object, console: Console, token: str) -> None:
    page.goto(console.url + "/login")  # type: ignore[attr-defined]
    page.fill("input[name=token]", token)  # type: ignore[attr-defined]
    page.click("button:has-text('Log in')")  # type: ignore[attr-defined]
    page.wait_for_url(console.url + "/")  # type: ignore[attr-defined]


def shot(page: object, console: Console, name: str) -> None:
    path = console.shots / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)  # type: ignore[attr-defined]
    if os.environ.get("BRICKYARD_CONSOLE_DOCS") == "1":
        DOCS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(DOCS / f"{name}.png"), full_page=False)  # type: ignore[attr-defined]


def text(page: object, selector: str = "main") -> str:
    if selector.startswith("svg"):  # not an HTML element: no rendered text, its text nodes
        return str(page.text_content(selector))  # type: ignore[attr-defined]
    return str(page.inner_text(selector))  # type: ignore[attr-defined]


def test_an_unauthenticated_browser_sees_the_login_page_only(console: Console, page: object) -> None:
    for path in ["/", "/tables", "/tables/bronze.taxi_trips", "/pipelines/titanic", "/runs", "/models/titanic",
                 "/endpoints", "/monitors", "/features", "/sql", "/lineage"]:
        page.goto(console.url + path)  # type: ignore[attr-defined]
        assert page.url.startswith(console.url + "/login"), path  # type: ignore[attr-defined]
        assert "Log in to the brickyard console" in text(page)
        assert page.locator("header nav").count() == 0  # type: ignore[attr-defined]
    shot(page, console, "login")
    page.fill("input[name=token]", "bky_not_a_real_token")  # type: ignore[attr-defined]
    page.click("button:has-text('Log in')")  # type: ignore[attr-defined]
    assert "That token is not valid" in text(page)
    answer = httpx.post(console.url + "/pipelines/titanic/run", data={"csrf": "x"}, follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"].startswith("/login")


def test_the_session_cookie_holds_no_token_and_is_httponly_and_strict(console: Console, page: object) -> None:
    login(page, console, console.reader)
    cookies = page.context.cookies()  # type: ignore[attr-defined]
    session = next(c for c in cookies if c["name"] == "brickyard_session")
    assert session["httpOnly"] is True and session["sameSite"] == "Strict"
    assert console.reader not in session["value"] and "bky_" not in session["value"]
    assert page.evaluate("document.cookie") == ""  # type: ignore[attr-defined]
    # the JSON API still wants its bearer token: the session cookie does not open it
    cookie = {"brickyard_session": session["value"]}
    assert httpx.get(console.url + "/api/jobs", cookies=cookie).status_code == 401
    api = httpx.get(console.url + "/api/jobs", headers={"Authorization": f"Bearer {console.reader}"})
    assert api.status_code == 200 and "titanic" in {job["name"] for job in api.json()["jobs"]}
    page.click("button:has-text('Log out')")  # type: ignore[attr-defined]
    page.goto(console.url + "/tables")  # type: ignore[attr-defined]
    assert page.url.startswith(console.url + "/login")  # type: ignore[attr-defined]


def test_tables_schema_quarantine_history_and_time_travel(console: Console, page: object) -> None:
    login(page, console, console.reader)
    shot(page, console, "overview")
    assert "pipelines" in text(page) and "Latest runs" in text(page)
    page.click("header >> text=Tables")  # type: ignore[attr-defined]
    listing = text(page)
    for name in ["bronze.taxi_trips", "silver.taxi_trips", "gold.taxi_daily", "features.customer_rfm"]:
        assert name in listing
    shot(page, console, "tables")
    page.click("a:text-is('bronze.taxi_trips')")  # type: ignore[attr-defined]
    shown = text(page)
    assert "Schema" in shown and "pickup_at" in shown
    assert "bronze.taxi_trips__quarantine" in shown
    assert "cannot parse" in text(page, "table.reasons")  # the synthetic file's dirty rows
    assert "Preview at version 1" in shown and "time travel" not in shown  # two ingest tasks: versions 0 and 1
    shot(page, console, "table")
    page.click("table.history tr:last-child a:text('preview')")  # type: ignore[attr-defined]
    assert "Preview at version 0" in text(page) and "time travel" in text(page)
    assert page.locator("table.preview tbody tr").count() == 50  # type: ignore[attr-defined]


def test_pipelines_runs_tasks_and_logs(console: Console, page: object) -> None:
    login(page, console, console.reader)
    page.click("header >> text=Pipelines")  # type: ignore[attr-defined]
    listing = text(page)
    for name in ["taxi_trips", "titanic", "customer_churn"]:
        assert name in listing
    page.click("a:text-is('taxi_trips')")  # type: ignore[attr-defined]
    dag = text(page, "svg.dag")
    for task in ["ingest_synthetic", "clean_trips", "daily_by_zone"]:
        assert task in dag
    assert page.locator("svg.dag line").count() >= 3  # type: ignore[attr-defined]
    assert "succeeded" in text(page, "table.runs")
    assert page.locator("#trigger").count() == 0  # type: ignore[attr-defined]
    assert "needs a runner token" in text(page)
    shot(page, console, "pipeline")
    page.click("table.runs tbody tr:first-child td:first-child a")  # type: ignore[attr-defined]
    tasks = text(page, "table.tasks")
    assert "clean_trips" in tasks and "succeeded" in tasks
    assert "CPU-seconds" in text(page) and "cost" in text(page)
    shot(page, console, "run")
    page.click("table.attempts a:text('log')")  # type: ignore[attr-defined]
    assert "Log of" in text(page)


def test_models_versions_gate_plots_and_compare(console: Console, page: object) -> None:
    login(page, console, console.reader)
    page.click("header >> text=Models")  # type: ignore[attr-defined]
    for name in ["titanic", "churn", "taxi_segments"]:
        assert name in text(page, "table.models")
    page.click("a:text-is('titanic')")  # type: ignore[attr-defined]
    assert "champion" in text(page)
    assert "accuracy" in text(page, "table.versions")
    page.click("table.versions tr:has(span.tag:text-is('champion')) td.n a")  # type: ignore[attr-defined]
    shown = text(page)
    assert "Gate decision: promoted" in shown
    assert page.locator("table.rules tbody tr").count() >= 1  # type: ignore[attr-defined]
    assert "passed" in text(page, "table.rules")
    images = page.locator("figure img")  # type: ignore[attr-defined]
    assert images.count() >= 2
    page.wait_for_function("Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)")  # type: ignore[attr-defined]
    explained = text(page, "section.explain")
    assert "evaluation/shap_importance.png" in explained and "evaluation/fairness.json" in explained
    assert "robustness_drop" in explained and "shap_importance." in explained
    assert "demographic_parity" in explained or "fairness." in explained
    shot(page, console, "model_version")
    page.goto(console.url + "/models/churn_replay")  # type: ignore[attr-defined]
    boxes = page.locator("table.versions input[type=checkbox]")  # type: ignore[attr-defined]
    assert boxes.count() >= 2
    boxes.nth(0).check()
    boxes.nth(1).check()
    page.click("button:has-text('Compare')")  # type: ignore[attr-defined]
    assert re.search(r"Compare churn_replay: versions \d+, \d+", text(page))
    shot(page, console, "compare")


def test_endpoints_monitors_features_lineage(console: Console, page: object) -> None:
    login(page, console, console.reader)
    page.click("header >> text=Endpoints")  # type: ignore[attr-defined]
    shown = text(page)
    assert ENDPOINT in shown and "shadow" in shown
    traffic = text(page, "table.traffic")
    assert "40" in traffic and "2.50%" in traffic  # 1 error in 40 requests
    shot(page, console, "endpoints")
    page.click("header >> text=Monitors")  # type: ignore[attr-defined]
    assert "watch_churn" in text(page, "table.monitors")
    page.click("a:text-is('watch_churn')")  # type: ignore[attr-defined]
    assert page.locator("svg.chart polyline").count() >= 2  # type: ignore[attr-defined]
    assert "recency_days" in text(page, "p.legend")
    assert "drift_share" in text(page, "table.alerts")
    shot(page, console, "monitor")
    page.click("header >> text=Features")  # type: ignore[attr-defined]
    assert "customer_rfm" in text(page, "table.featuretables")
    page.click("header >> text=Lineage")  # type: ignore[attr-defined]
    stages = text(page, "div.stages")
    for node in ["raw/taxi/*.csv", "bronze.taxi_trips", "titanic/1", "watch_churn"]:
        assert node in stages
    assert f"endpoint:{ENDPOINT}" in text(page, "table.edges")
    shot(page, console, "lineage")
    page.click("div.stages a:text-is('watch_churn')")  # type: ignore[attr-defined]
    assert "Lineage of monitor:watch_churn" in text(page, "h1")
    assert page.locator("li.in a:text-is('gold.churn_scores')").count() == 1  # type: ignore[attr-defined]
    assert page.locator("li.out a:text-is('titanic/1')").count() == 1  # type: ignore[attr-defined]
    assert "titanic" not in text(page, "table.edges")


def test_the_sql_console_is_read_only_with_a_row_limit(console: Console, page: object) -> None:
    login(page, console, console.reader)
    page.click("header >> text=SQL")  # type: ignore[attr-defined]
    page.fill("textarea[name=query]", "SELECT count(*) AS trips FROM bronze.taxi_trips")  # type: ignore[attr-defined]
    page.click("button:has-text('Run')")  # type: ignore[attr-defined]
    assert "trips" in text(page, "table.result")
    latest = int(text(page, "table.result tbody td").replace(",", ""))
    page.fill("textarea[name=query]", "SELECT count(*) AS trips FROM bronze.taxi_trips VERSION AS OF 0")  # type: ignore[attr-defined]
    page.click("button:has-text('Run')")  # type: ignore[attr-defined]
    first = int(text(page, "table.result tbody td").replace(",", ""))
    assert 0 < first < latest  # version 0 holds the first ingest task's rows only
    shot(page, console, "sql")
    for query, says in [
        ("CREATE TABLE x AS SELECT 1", "expected a SELECT"),
        ("SELECT * FROM read_csv('/etc/passwd')", "Permission Error"),
        ("SELECT 1; SELECT 2", "expected one SELECT"),
    ]:
        page.fill("textarea[name=query]", query)  # type: ignore[attr-defined]
        page.click("button:has-text('Run')")  # type: ignore[attr-defined]
        assert says in text(page, "p.error"), query
    page.fill("textarea[name=query]", "SELECT range AS n FROM range(5000)")  # type: ignore[attr-defined]
    page.click("button:has-text('Run')")  # type: ignore[attr-defined]
    assert page.locator("table.result tbody tr").count() == 1000  # type: ignore[attr-defined]
    assert "the result has more" in text(page)


def test_a_reader_cannot_trigger_a_runner_can_and_sees_the_run(console: Console, page: object) -> None:
    login(page, console, console.reader)
    page.goto(console.url + "/pipelines/titanic")  # type: ignore[attr-defined]
    assert page.locator("#trigger").count() == 0  # type: ignore[attr-defined]
    csrf = page.locator("header form").evaluate("f => f.ownerDocument.cookie")  # type: ignore[attr-defined]
    assert csrf == ""  # the session cookie is out of a script's reach
    page.goto(console.url + "/sql")  # type: ignore[attr-defined]
    field = page.locator("input[name=csrf]").get_attribute("value")  # type: ignore[attr-defined]
    refused = page.request.post(console.url + "/pipelines/titanic/run", form={"csrf": field})  # type: ignore[attr-defined]
    assert refused.status == 403
    assert "starting a run needs runner" in refused.text()
    page.context.clear_cookies()  # type: ignore[attr-defined]

    login(page, console, console.runner)
    page.goto(console.url + "/pipelines/titanic")  # type: ignore[attr-defined]
    before = page.locator("table.runs tbody tr").count()  # type: ignore[attr-defined]
    page.click("#trigger")  # type: ignore[attr-defined]
    page.wait_for_url(re.compile(r".*/runs/\d{8}-\d{6}-[0-9a-f]{6}$"))  # type: ignore[attr-defined]
    run_id = page.url.rsplit("/", 1)[1]  # type: ignore[attr-defined]
    assert f"Run {run_id}" in text(page)
    assert "trigger console" in text(page)
    assert ended(page) == "succeeded"  # the page reloaded itself while the run ran: no click
    assert "train" in text(page, "table.tasks")
    page.goto(console.url + "/pipelines/titanic")  # type: ignore[attr-defined]
    assert run_id in text(page, "table.runs")
    assert page.locator("table.runs tbody tr").count() == before + 1  # type: ignore[attr-defined]
    shot(page, console, "triggered")
    forged = httpx.post(console.url + "/pipelines/titanic/run", data={"csrf": "forged"},
                        cookies={c["name"]: c["value"] for c in page.context.cookies()})  # type: ignore[attr-defined]
    assert forged.status_code == 403


def ended(page: object, seconds: float = 240) -> str:
    """The run page's status once it is final (the page reloads itself until then)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            status = page.locator("h1 .status").text_content(timeout=10_000)  # type: ignore[attr-defined]
        except playwright.Error:  # caught mid-reload
            status = None
        if status in ("succeeded", "failed", "cancelled"):
            return str(status)
        time.sleep(0.5)
    raise AssertionError(f"the run did not end within {seconds:.0f} s")


def test_revoking_the_token_ends_its_sessions(console: Console, page: object) -> None:
    made = brickyard("tokens", "create", "--role", "reader", "--name", "short-lived", cwd=console.root)
    token = made.stdout.strip()
    login(page, console, token)
    token_id = re.search(r"token (\w+) \(reader\)", text(page, "header")).group(1)  # type: ignore[union-attr]
    assert brickyard("tokens", "revoke", token_id, cwd=console.root).returncode == 0
    page.goto(console.url + "/runs")  # type: ignore[attr-defined]
    assert page.url.startswith(console.url + "/login")  # type: ignore[attr-defined]


def test_no_token_reaches_the_server_log(console: Console, page: object) -> None:
    login(page, console, console.runner)
    page.goto(console.url + "/runs")  # type: ignore[attr-defined]
    logged = console.log.read_text()
    assert "POST /login" in logged and "GET /runs" in logged
    assert "bky_" not in logged
