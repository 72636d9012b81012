"""What monitors leave in the workspace state database: each monitor's last status, the
latest statistic of each of its features (the Prometheus gauges and `brickyard monitors`
read them), and the alerts, one row per breach.

The tables live beside the runs in the state database (`state.url`), declared here on
their own metadata: this package sits below `runtime`, which owns the runs' tables.

>>> import tempfile
>>> store = MonitorStore(f"sqlite:///{tempfile.mkdtemp()}/state.db")
>>> store.monitors()
[]
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_random_exponential

METADATA = sa.MetaData()
BUSY_TIMEOUT_SECONDS = 30
PENDING, SENT, FAILED = "pending", "sent", "failed"

MONITORS = sa.Table(
    "monitors",
    METADATA,
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("pipeline", sa.String(200), nullable=False),
    sa.Column("task", sa.String(200), nullable=False),
    sa.Column("model", sa.String(300), nullable=False),
    sa.Column("model_version", sa.String(50), nullable=True),
    sa.Column("target", sa.Text(), nullable=False),
    sa.Column("results_table", sa.String(300), nullable=False),
    sa.Column("window_by", sa.String(20), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("windows", sa.Integer(), nullable=False, default=0),
    sa.Column("last_window_start", sa.DateTime(), nullable=True),
    sa.Column("last_window_end", sa.DateTime(), nullable=True),
    sa.Column("last_rows", sa.BigInteger(), nullable=True),
    sa.Column("drift_share", sa.Float(), nullable=True),
    sa.Column("drifted_features", sa.JSON(), nullable=False, default=list),
    sa.Column("performance", sa.JSON(), nullable=False, default=dict),
    sa.Column("run_id", sa.String(64), nullable=True),
    sa.Column("updated_at", sa.DateTime(), nullable=False),
)

MONITOR_FEATURES = sa.Table(
    "monitor_features",
    METADATA,
    sa.Column("monitor", sa.String(200), primary_key=True),
    sa.Column("feature", sa.String(300), primary_key=True),
    sa.Column("method", sa.String(50), nullable=False),
    sa.Column("statistic", sa.Float(), nullable=True),
    sa.Column("p_value", sa.Float(), nullable=True),
    sa.Column("threshold", sa.Float(), nullable=True),
    sa.Column("drifted", sa.Boolean(), nullable=False),
    sa.Column("window_start", sa.DateTime(), nullable=False),
    sa.Column("window_end", sa.DateTime(), nullable=False),
    sa.Column("updated_at", sa.DateTime(), nullable=False),
)

MONITOR_ALERTS = sa.Table(
    "monitor_alerts",
    METADATA,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("monitor", sa.String(200), nullable=False),
    sa.Column("rule", sa.String(300), nullable=False),
    sa.Column("condition", sa.String(300), nullable=False),
    sa.Column("metric", sa.String(100), nullable=False),
    sa.Column("value", sa.Float(), nullable=False),
    sa.Column("estimated", sa.Boolean(), nullable=False, default=False),
    sa.Column("breach_start", sa.DateTime(), nullable=False),
    sa.Column("window_start", sa.DateTime(), nullable=False),
    sa.Column("window_end", sa.DateTime(), nullable=True),
    sa.Column("message", sa.Text(), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("actions", sa.JSON(), nullable=False, default=list),
    sa.Column("run_id", sa.String(64), nullable=True),
    sa.Column("started_run", sa.String(64), nullable=True),
    sa.Column("created_at", sa.DateTime(), nullable=False),
    sa.Column("updated_at", sa.DateTime(), nullable=False),
    sa.UniqueConstraint("monitor", "rule", "breach_start", name="uq_monitor_alerts_breach"),
)


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


@dataclass(frozen=True)
class AlertRecord:
    """One alert: a breach of a rule of a monitor, and what its actions did."""

    id: int
    monitor: str
    rule: str
    condition: str
    metric: str
    value: float
    estimated: bool
    breach_start: datetime
    window_start: datetime
    window_end: datetime | None
    message: str
    status: str
    actions: list[dict[str, Any]]
    run_id: str | None
    started_run: str | None
    created_at: datetime
    updated_at: datetime

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class MonitorStore:
    """The monitors' tables in the state database at a SQLAlchemy URL (made on first use)."""

    def __init__(self, url: str) -> None:
        self.url = url

    @cached_property
    def engine(self) -> sa.Engine:
        return _connect(self.url)

    # -- status -------------------------------------------------------------------------

    def save_status(self, name: str, values: Mapping[str, Any], features: Iterable[Mapping[str, Any]]) -> None:
        """Replace monitor `name`'s status row and the latest statistic of each feature
        named in `features` (features not named keep their last row)."""
        now = utcnow()
        row = {**values, "name": name, "updated_at": now}
        with self.engine.begin() as conn:
            conn.execute(MONITORS.delete().where(MONITORS.c.name == name))
            conn.execute(MONITORS.insert().values(**row))
            for feature in features:
                conn.execute(MONITOR_FEATURES.delete().where(
                    (MONITOR_FEATURES.c.monitor == name) & (MONITOR_FEATURES.c.feature == feature["feature"])
                ))
                conn.execute(MONITOR_FEATURES.insert().values(**{**feature, "monitor": name, "updated_at": now}))

    def monitors(self) -> list[dict[str, Any]]:
        """Every monitor's last status, by name."""
        with self.engine.connect() as conn:
            rows = conn.execute(MONITORS.select().order_by(MONITORS.c.name)).mappings().all()
        return [dict(row) for row in rows]

    def features(self, monitor: str | None = None) -> list[dict[str, Any]]:
        """The latest statistic of each feature (of one monitor, or of all)."""
        query = MONITOR_FEATURES.select().order_by(MONITOR_FEATURES.c.monitor, MONITOR_FEATURES.c.feature)
        if monitor is not None:
            query = query.where(MONITOR_FEATURES.c.monitor == monitor)
        with self.engine.connect() as conn:
            return [dict(row) for row in conn.execute(query).mappings().all()]

    # -- alerts -------------------------------------------------------------------------

    def add_alert(self, values: Mapping[str, Any]) -> AlertRecord | None:
        """Record a new alert (status pending); None when this breach (monitor, rule, first
        window) already has one: a breach alerts once."""
        now = utcnow()
        row = {**values, "status": PENDING, "actions": [], "created_at": now, "updated_at": now}
        try:
            with self.engine.begin() as conn:
                inserted = conn.execute(MONITOR_ALERTS.insert().values(**row)).inserted_primary_key
        except sa.exc.IntegrityError:
            return None
        assert inserted is not None
        return self.get_alert(int(inserted[0]))

    def pending_alerts(self, monitor: str) -> list[AlertRecord]:
        """Alerts of `monitor` whose actions have not all run (a process that stopped
        between recording an alert and acting on it): they are acted on again."""
        return self.alerts(monitor=monitor, status=PENDING)

    def finish_alert(
        self, alert_id: int, actions: Sequence[Mapping[str, Any]], *, started_run: str | None = None
    ) -> AlertRecord:
        """Record what the actions of an alert did: sent when every one succeeded."""
        status = SENT if all(action.get("ok") for action in actions) else FAILED
        values: dict[str, Any] = {"status": status, "actions": [dict(a) for a in actions], "updated_at": utcnow()}
        if started_run is not None:
            values["started_run"] = started_run
        with self.engine.begin() as conn:
            conn.execute(MONITOR_ALERTS.update().where(MONITOR_ALERTS.c.id == alert_id).values(**values))
        return self.get_alert(alert_id)

    def get_alert(self, alert_id: int) -> AlertRecord:
        with self.engine.connect() as conn:
            row = conn.execute(MONITOR_ALERTS.select().where(MONITOR_ALERTS.c.id == alert_id)).mappings().one()
        return AlertRecord(**dict(row))

    def alerts(self, *, monitor: str | None = None, status: str | None = None, limit: int | None = None) -> list[AlertRecord]:
        """Alerts, newest first."""
        query = MONITOR_ALERTS.select().order_by(MONITOR_ALERTS.c.id.desc())
        if monitor is not None:
            query = query.where(MONITOR_ALERTS.c.monitor == monitor)
        if status is not None:
            query = query.where(MONITOR_ALERTS.c.status == status)
        if limit is not None:
            query = query.limit(limit)
        with self.engine.connect() as conn:
            return [AlertRecord(**dict(row)) for row in conn.execute(query).mappings().all()]


_ENGINES: dict[str, sa.Engine] = {}
_LOCK = threading.Lock()


def _connect(url: str) -> sa.Engine:
    """An engine for the state database with the monitors' tables created (once per
    process; a process creating them at the same moment makes this try again)."""
    with _LOCK:
        engine = _ENGINES.get(url)
        if engine is None:
            engine = _create(url)
            for attempt in Retrying(
                stop=stop_after_attempt(5), wait=wait_random_exponential(0.05, max=1),
                retry=retry_if_exception(_raced), reraise=True,
            ):
                with attempt:
                    METADATA.create_all(engine)
            _ENGINES[url] = engine
        return engine


def _raced(exc: BaseException) -> bool:
    text = str(exc).lower()
    return isinstance(exc, sa.exc.DBAPIError) and any(
        word in text for word in ("already exists", "duplicate", "database is locked")
    )


def _create(url: str) -> sa.Engine:
    if not url.startswith("sqlite:///"):
        return sa.create_engine(url, pool_pre_ping=True)
    path = url[len("sqlite:///"):]
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_SECONDS, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_SECONDS * 1000}")
        cursor.close()

    return engine
