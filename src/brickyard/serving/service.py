"""The serving process's state and request path: endpoints, auth, metrics, inference logs.

`ServingService.invoke` is the whole request path of ``POST .../invocations``: authenticate,
read and parse the body (JSON, or ``text/csv``), pick the model (champion or canary), check the
input against that model's signature, score, then count it, buffer its inference-log record and
hand the request to the shadow. Columns the model does not take are ignored, named in the
answer's ``X-Ignored-Columns`` header (a JSON array) and logged (the first few distinct sets
per endpoint and version), as MLflow's server ignores them; with ``strict_columns`` (``brickyard serve
--strict-columns``) they are a 400. A background thread loads the models, re-reads the aliases every
`poll_seconds` and swaps in new versions, and judges canaries about once a second.
"""

from __future__ import annotations

import gc
import itertools
import json
import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson
from starlette.requests import ClientDisconnect

from brickyard.config.models import EndpointConfig
from brickyard.errors import UsageError
from brickyard.ml.errors import ModelNotFoundError
from brickyard.ml.registry import ModelRef
from brickyard.serving.auth import Authenticator
from brickyard.serving.errors import (
    FeatureStoreUnavailableError,
    InvalidInputError,
    NotReadyError,
    PayloadTooLargeError,
    ServingError,
    UnsupportedMediaError,
)
from brickyard.serving.inference_log import InferenceLog
from brickyard.serving.metrics import ServingMetrics
from brickyard.serving.registry import LoadedModel, Registry, is_fast
from brickyard.serving.schema import Batch, Payload, parse_body, parse_csv
from brickyard.serving.tracing import flush, request_tracer, trace_request
from brickyard.serving.traffic import (
    CHALLENGER,
    CHAMPION,
    SHADOW,
    CanaryPolicy,
    Endpoint,
)

if TYPE_CHECKING:
    from brickyard.features.online import OnlineStore
    from brickyard.workspace import Workspace

log = logging.getLogger("brickyard.serving")

TICK_SECONDS = 0.5
SHADOW_BACKLOG = 1_000
INLINE_ROWS = 2_000  # larger fast-path batches are scored on a worker thread
JSON, CSV = "application/json", "text/csv"
IGNORED_HEADER = "X-Ignored-Columns"
IGNORED_HEADER_NAMES = 20  # the header names at most this many columns (then "...")
IGNORED_NAME_CHARS = 64  # a longer name is cut there (then "...") in the header and the log
IGNORED_LOGGED = 5  # distinct ignored-column sets logged per endpoint and version
_DUMP = orjson.OPT_SERIALIZE_NUMPY
_TRUE = {"true", "1", "yes"}
_FALSE = {"false", "0", "no"}


class ServingService:
    """Everything one serving process holds. Start with `start()`, end with `stop()`."""

    def __init__(
        self,
        ws: Workspace,
        refs: list[ModelRef],
        *,
        auth: bool = True,
        strict_columns: bool = False,
        registry: Registry | None = None,
        token_store: Any = None,
    ) -> None:
        if not refs:
            raise UsageError("name at least one model to serve", hint="e.g. brickyard serve titanic")
        self.ws = ws
        self._online_store: OnlineStore | None = None
        self.registry = registry or Registry(ws.mlflow_tracking_uri, online_store=self.online_store)
        self.metrics = ServingMetrics()
        self.tracer = request_tracer(ws)  # None unless `tracing:` is configured
        self.auth_enabled = auth
        self.strict_columns = strict_columns
        self._ignored_logged: dict[tuple[str, str], set[tuple[str, ...]]] = {}
        self.authenticator: Authenticator | None = None
        if auth:
            if token_store is None:
                from brickyard.runtime.tokens import TokenStore

                token_store = TokenStore(ws.state_url)
            self.authenticator = Authenticator(token_store)
        self.endpoints: dict[str, Endpoint] = {}
        for ref in refs:
            endpoint = self._endpoint(ref)
            if endpoint.name in self.endpoints:
                raise UsageError(
                    f"{ref} is served twice as endpoint {endpoint.name!r}",
                    hint="serve each model once; put a challenger in brickyard.yaml (endpoints: shadow or canary)",
                )
            self.endpoints[endpoint.name] = endpoint
        self.logs: dict[str, InferenceLog] = {}
        for endpoint in self.endpoints.values():
            config = endpoint.config
            if config.log and config.log_table not in self.logs:
                self.logs[config.log_table] = InferenceLog(
                    ws.lake, config.log_table, payloads=config.log_payloads, queue_size=config.log_queue_size,
                    batch_rows=config.log_batch_rows, flush_seconds=config.log_flush_seconds,
                    on_drop=lambda name, n: self.metrics.log_dropped.labels(name).inc(n),
                    on_write=lambda name, n: self.metrics.log_written.labels(name).inc(n),
                )
        self.ready = threading.Event()
        self.first_pass = threading.Event()  # set when every champion was tried once
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._shadow_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="shadow")
        self._shadow_pending = 0
        self._last_poll: dict[str, float] = {}

    def _endpoint(self, ref: ModelRef) -> Endpoint:
        config = self.ws.config.endpoints.get(ref.name) or EndpointConfig()
        model = config.model or ref.name
        champion_alias = None if ref.version else (ref.alias or config.champion)
        challenger = config.challenger if (config.shadow or config.canary is not None or config.rollout) else None
        endpoint = Endpoint(ref.name, model, config, champion_alias, ref.version, challenger)
        endpoint.canary = CanaryPolicy.from_config(config)
        return endpoint

    def online_store(self) -> OnlineStore:
        """The workspace's online store, opened once (each thread connects on first use)."""
        if self._online_store is None:
            from brickyard.features.online import workspace_store

            self._online_store = workspace_store(self.ws)
        return self._online_store

    # -- lifecycle -----------------------------------------------------------------------

    def check_models(self) -> None:
        """Resolve every champion now (fail fast at start-up with a helpful error).

        Raises:
            ModelNotFoundError: a model, alias or version that the registry does not have.
        """
        for endpoint in self.endpoints.values():
            self.registry.resolve(endpoint.model, endpoint.champion_alias, endpoint.champion_version)

    def start(self) -> None:
        for inference_log in self.logs.values():
            inference_log.start()
        self._thread = threading.Thread(target=self._supervise, name="serving-supervisor", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop polling, finish shadow work, flush the inference logs."""
        self._stop.set()
        self.first_pass.set()
        if self._thread is not None:
            self._thread.join(30)
        self._shadow_pool.shutdown(wait=True)
        for inference_log in self.logs.values():
            inference_log.close()
        flush(self.tracer)

    def wait_ready(self, timeout: float = 60.0) -> bool:
        return self.ready.wait(timeout)

    def _supervise(self) -> None:
        while not self._stop.is_set():
            for endpoint in self.endpoints.values():
                self._refresh(endpoint)
            self.first_pass.set()
            if all(endpoint.champion is not None for endpoint in self.endpoints.values()):
                self.ready.set()
                break
            self._stop.wait(1.0)
        while not self._stop.wait(TICK_SECONDS):
            now = time.monotonic()
            for endpoint in self.endpoints.values():
                if now - self._last_poll.get(endpoint.name, 0.0) >= endpoint.config.poll_seconds:
                    self._refresh(endpoint)
                self._judge(endpoint)
            pending = sum(inference_log.pending for inference_log in self.logs.values())
            self.metrics.log_pending.set(pending)

    def _refresh(self, endpoint: Endpoint) -> None:
        """Re-read the aliases; load and swap in any version that changed."""
        self._last_poll[endpoint.name] = time.monotonic()
        try:
            version = self.registry.resolve(endpoint.model, endpoint.champion_alias, endpoint.champion_version)
            if endpoint.champion is None or endpoint.champion.version != version:
                self._swap(endpoint, CHAMPION, self.registry.load(endpoint.model, version))
            endpoint.error = ""
        except Exception as exc:
            endpoint.error = str(exc)
            log.warning("endpoint %s: cannot load the champion: %s", endpoint.name, exc)
        if endpoint.challenger_alias is None:
            return
        try:
            version = self.registry.resolve(endpoint.model, endpoint.challenger_alias)
        except ModelNotFoundError:
            if endpoint.challenger is not None:
                log.warning("endpoint %s: alias %s is gone; champion only", endpoint.name, endpoint.challenger_alias)
                self._swap(endpoint, CHALLENGER, None)
            return
        except Exception as exc:
            log.warning("endpoint %s: cannot read alias %s: %s", endpoint.name, endpoint.challenger_alias, exc)
            return
        if endpoint.challenger is None or endpoint.challenger.version != version:
            try:
                self._swap(endpoint, CHALLENGER, self.registry.load(endpoint.model, version))
            except Exception as exc:
                log.warning("endpoint %s: cannot load challenger version %s: %s", endpoint.name, version, exc)

    def _swap(self, endpoint: Endpoint, slot: str, model: LoadedModel | None) -> None:
        old = endpoint.champion if slot == CHAMPION else endpoint.challenger
        if old is not None:
            self.metrics.model_info.labels(endpoint.name, old.name, old.version, slot, old.kind).set(0)
        if slot == CHAMPION:
            endpoint.champion = model
        else:
            endpoint.challenger = model
            if endpoint.canary is not None:
                endpoint.canary.reset()
                self.metrics.canary_rolled_back.labels(endpoint.name).set(0)
        if model is not None:
            self.metrics.model_info.labels(endpoint.name, model.name, model.version, slot, model.kind).set(1)
            log.info("endpoint %s: %s is %s version %s (%s)", endpoint.name, slot, model.name, model.version, model.kind)
        if old is not None:
            self.metrics.swaps.labels(endpoint.name, slot).inc()
        gc.freeze()  # the new model's objects live long: keep them out of the collector's passes

    def _judge(self, endpoint: Endpoint) -> None:
        canary = endpoint.canary
        if canary is None:
            return
        event = canary.tick() if endpoint.challenger is not None else None
        self.metrics.canary_percent.labels(endpoint.name).set(canary.percent if endpoint.challenger is not None else 0.0)
        if event is None:
            return
        self.metrics.canary_events.labels(endpoint.name, event.kind).inc()
        if event.kind == "rollback":
            self.metrics.canary_rolled_back.labels(endpoint.name).set(1)
            log.warning("endpoint %s: canary rolled back, all traffic to the champion: %s", endpoint.name, event.reason)
        else:
            log.info("endpoint %s: canary %s to %g%%: %s", endpoint.name, event.kind, event.percent, event.reason)

    # -- the request path ----------------------------------------------------------------

    async def invoke(self, endpoint: Endpoint, request: Any) -> tuple[int, bytes, dict[str, str]]:
        """Score one request; returns (status, JSON body, headers). Never raises."""
        started = time.perf_counter()
        headers = request.headers
        request_id = headers.get("x-request-id") or new_request_id()
        if len(request_id) > 128:
            request_id = request_id[:128]
        body = b""
        model: LoadedModel | None = None
        variant = CHAMPION
        rows = 0
        payload: Payload | None = None
        extra: dict[str, str] = {}
        used: list[bytes] = []  # the feature values looked up online, for the log
        try:
            if self.authenticator is not None:
                self.authenticator.authenticate(headers.get("authorization"))
            content_type = headers.get("content-type")
            media = JSON if content_type is None or content_type == JSON else media_type(content_type)
            body = await _read_body(request, endpoint.config.max_body_bytes)
            payload = parse_csv(body) if media == CSV else parse_body(body)
            query = request.query_params.get("predict_proba") if request.scope.get("query_string") else None
            model, variant = endpoint.route(endpoint.request_key(headers, payload.columns))
            if model is None:
                raise NotReadyError(
                    f"endpoint {endpoint.name!r} has no model loaded yet" + (f": {endpoint.error}" if endpoint.error else ""),
                    hint="wait for GET /readyz to answer 200",
                )
            if variant == CHALLENGER:
                try:
                    content, rows, ignored = await self._score(endpoint, model, payload, query, used)
                except Exception as exc:
                    champion = endpoint.champion
                    if champion is None:
                        raise
                    content, rows, ignored = await self._score(endpoint, champion, payload, query, used)
                    endpoint.canary.record(False, 0.0)  # type: ignore[union-attr]
                    log.warning("endpoint %s: challenger %s failed, the champion answered: %s", endpoint.name, model.version, exc)
                    model, variant = champion, CHAMPION
            else:
                content, rows, ignored = await self._score(endpoint, model, payload, query, used)
            if ignored:
                extra[IGNORED_HEADER] = self._ignored(endpoint, model, ignored)
            status = 200
        except ServingError as exc:
            status, content, extra = exc.status, exc.body(), exc.headers()
        except ClientDisconnect:
            status, content = 499, b""  # the client left before sending the whole body
        except Exception:
            log.exception("endpoint %s: scoring failed", endpoint.name)
            status, content = 500, ServingError("internal error while scoring; see the server log").body()
        seconds = time.perf_counter() - started
        version = model.version if model is not None else "-"
        if variant == CHALLENGER and status == 200:
            endpoint.canary.record(True, seconds * 1000.0)  # type: ignore[union-attr]
        self.metrics.observe(endpoint.name, endpoint.model, version, status, seconds)
        if self.tracer is not None:
            trace_request(self.tracer, request, endpoint, version, variant, status, rows, seconds, request_id)
        if endpoint.config.log:
            self.logs[endpoint.config.log_table].record(
                (request_id, time.time(), endpoint.name, endpoint.model, version, variant, status, seconds * 1000.0, rows, body, content,
                 used[-1] if used else None)
            )
        if payload is not None and endpoint.config.shadow and endpoint.challenger is not None:
            self._shadow(endpoint, payload, request_id, body)
        extra["X-Request-Id"] = request_id
        if model is not None:
            extra["X-Model-Name"] = model.name
            extra["X-Model-Version"] = version
            extra["X-Served-By"] = variant
        return status, content, extra

    async def _score(
        self, endpoint: Endpoint, model: LoadedModel, payload: Payload, query: str | None, used: list[bytes] | None = None
    ) -> tuple[bytes, int, tuple[str, ...]]:
        """Score a payload with one model: (JSON answer, rows, columns ignored). A model
        trained from a training set gets the features a request lacks looked up online
        first (their values appended to `used`, as JSON)."""
        schema, predictor = model.schema, model.predictor
        sent: Payload | None = None  # the request as sent, when features were added to it
        if model.lookup is not None and model.lookup.needed(payload.columns):
            sent, payload = payload, await _with_features_async(model, payload, used)
        try:
            proba, params = _params(payload.params, query, schema.param_names if schema is not None else _NO_PARAMS)
            if schema is None:
                batch = Batch({name: list(values) for name, values in payload.columns.items()}, payload.rows)
            else:
                if is_fast(predictor) and not proba:
                    row = schema.one_row(payload)
                    if row is not None:
                        return orjson.dumps({"predictions": [predictor.predict_one(row)]}), 1, ()
                batch = schema.batch(payload, max_rows=endpoint.config.max_rows, strict=self.strict_columns)
        except InvalidInputError as exc:
            if sent is None or exc.column is None or exc.column in sent.columns:
                raise
            raise _without_live_features(model, sent, payload, exc) from None
        if is_fast(predictor) and batch.rows <= predictor.inline_rows:
            return _predict(model, batch, proba, params), batch.rows, batch.ignored
        from starlette.concurrency import run_in_threadpool

        return await run_in_threadpool(_predict, model, batch, proba, params), batch.rows, batch.ignored

    def _ignored(self, endpoint: Endpoint, model: LoadedModel, ignored: tuple[str, ...]) -> str:
        """The X-Ignored-Columns value (ASCII JSON: a header is Latin-1); the first few
        distinct sets per endpoint and version are logged too."""
        names = [name if len(name) <= IGNORED_NAME_CHARS else name[:IGNORED_NAME_CHARS] + "..." for name in ignored[:IGNORED_HEADER_NAMES]]
        if len(ignored) > IGNORED_HEADER_NAMES:
            names.append("...")
        key = (endpoint.name, model.version)
        seen = self._ignored_logged.setdefault(key, set())
        if len(seen) < IGNORED_LOGGED and ignored not in seen:
            seen.add(ignored)
            last = len(seen) == IGNORED_LOGGED
            log.warning(
                "endpoint %s: version %s ignores column(s) %s, which its signature does not name "
                "(brickyard serve --strict-columns refuses them)%s",
                endpoint.name, model.version, ", ".join(map(repr, names)),
                "; further sets are named only in the X-Ignored-Columns header" if last else "",
            )
        return json.dumps(names)

    def _shadow(self, endpoint: Endpoint, payload: Payload, request_id: str, body: bytes) -> None:
        if self._shadow_pending >= SHADOW_BACKLOG:
            if endpoint.challenger is not None:
                self.metrics.shadow.labels(endpoint.name, endpoint.model, endpoint.challenger.version, "dropped").inc()
            return
        self._shadow_pending += 1
        try:
            self._shadow_pool.submit(self._score_shadow, endpoint, payload, request_id, body)
        except RuntimeError:  # shutting down
            self._shadow_pending -= 1

    def _score_shadow(self, endpoint: Endpoint, payload: Payload, request_id: str, body: bytes) -> None:
        started = time.perf_counter()
        model = endpoint.challenger
        rows = 0
        used: list[bytes] = []  # the feature values looked up online, for the log
        try:
            if model is None:
                return
            try:
                schema = model.schema
                _, params = _params(payload.params, None, schema.param_names if schema is not None else _NO_PARAMS, shadow=True)
                if model.lookup is not None and model.lookup.needed(payload.columns):
                    payload = _with_features(model, payload, used)
                batch = schema.batch(payload, max_rows=endpoint.config.max_rows, strict=self.strict_columns) if schema is not None else Batch(
                    {name: list(values) for name, values in payload.columns.items()}, payload.rows
                )
                rows = batch.rows
                content, status = _predict(model, batch, False, params), 200
            except ServingError as exc:
                content, status = exc.body(), exc.status
            except Exception as exc:
                log.warning("endpoint %s: shadow version %s failed: %s", endpoint.name, model.version, exc)
                content, status = ServingError(f"shadow failed: {exc}").body(), 500
            seconds = time.perf_counter() - started
            self.metrics.shadow.labels(endpoint.name, endpoint.model, model.version, str(status)).inc()
            if endpoint.config.log:
                self.logs[endpoint.config.log_table].record(
                    (request_id, time.time(), endpoint.name, endpoint.model, model.version, SHADOW, status, seconds * 1000.0, rows, body, content,
                     used[-1] if used else None)
                )
        finally:
            self._shadow_pending -= 1

    def refresh_feature_freshness(self) -> None:
        """Set the freshness gauges of the feature tables the served models look up (one
        read of the store's table states; a store that cannot be read is logged, not raised)."""
        tables = {
            lookup.table
            for endpoint in self.endpoints.values()
            for model in (endpoint.champion, endpoint.challenger)
            if model is not None and model.lookup is not None
            for lookup in model.lookup.info.lookups
        }
        if not tables:
            return
        from brickyard.features.online import OnlineStoreError, now_us

        try:
            states = {state.table: state for state in self.online_store().states()}
        except OnlineStoreError as exc:
            log.warning("feature freshness: %s", exc)
            return
        now = now_us()
        for table in sorted(tables):
            state = states.get(table)
            freshness = state.freshness_seconds(now) if state is not None else None
            self.metrics.feature_freshness.labels(table).set(float("inf") if freshness is None else freshness)
            if state is not None:
                self.metrics.feature_materialized.labels(table).set(state.materialized_at_us / 1e6)

    # -- status --------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """What /readyz and /serving-endpoints report."""
        endpoints = {}
        for endpoint in self.endpoints.values():
            doc: dict[str, Any] = {
                "model": endpoint.model,
                "champion": _describe(endpoint.champion, endpoint.champion_alias or f"version {endpoint.champion_version}"),
            }
            if endpoint.challenger_alias is not None:
                doc["challenger"] = _describe(endpoint.challenger, endpoint.challenger_alias)
                doc["traffic"] = "shadow" if endpoint.config.shadow else "canary"
                if endpoint.canary is not None:
                    doc["canary_percent"] = endpoint.canary.percent if endpoint.challenger is not None else 0.0
                    doc["rolled_back"] = endpoint.canary.rolled_back
            if endpoint.error:
                doc["error"] = endpoint.error
            endpoints[endpoint.name] = doc
        return {"ready": self.ready.is_set(), "auth": self.auth_enabled, "endpoints": endpoints}


_ID_PREFIX = os.urandom(8).hex()
_ID_COUNTER = itertools.count()


def new_request_id() -> str:
    """A request id unique across processes (a random prefix per process, then a counter):
    a fraction of `uuid4`'s cost on every request."""
    return f"{_ID_PREFIX}{next(_ID_COUNTER):016x}"


def _describe(model: LoadedModel | None, alias: str) -> dict[str, Any] | None:
    if model is None:
        return {"alias": alias, "loaded": False}
    return {"alias": alias, "loaded": True, "version": model.version, "path": model.kind}


def _predict(model: LoadedModel, batch: Batch, proba: bool, params: dict[str, Any] | None = None) -> bytes:
    predictor = model.predictor
    if proba:
        if predictor.classes is None:
            raise InvalidInputError("this model does not give class probabilities", hint="drop predict_proba")
        if batch.rows == 0:
            return _no_predictions(predictor.classes)
        probabilities = np.asarray(predictor.predict_proba(batch), dtype=np.float64)
        classes = predictor.classes
        return orjson.dumps(
            {"predictions": probabilities, "classes": classes if classes.dtype.kind in "biuf" else classes.tolist()},
            option=_DUMP,
        )
    if batch.rows == 0:  # scikit-learn and most models refuse an empty input
        return _NO_PREDICTIONS
    # Params a model declares go to the MLflow model (the fast path never compiles such a model).
    predictions = predictor.predict(batch, params) if params else predictor.predict(batch)  # type: ignore[call-arg]
    return orjson.dumps({"predictions": _jsonable(predictions)}, option=_DUMP, default=_default)


_NO_PREDICTIONS = b'{"predictions":[]}'


def _with_features(model: LoadedModel, payload: Payload, used: list[bytes] | None) -> Payload:
    """The payload with the features it lacks looked up online (see `OnlineLookup`), from a
    worker thread (the shadow); the request path awaits `_with_features_async`.

    Raises:
        InvalidInputError: an entity key column is missing (400);
        ServingError: the online store cannot be read (503).
    """
    from brickyard.features.online import OnlineStoreError
    from brickyard.features.online_lookup import MissingKeyError

    lookup = model.lookup
    assert lookup is not None
    takes = frozenset(model.schema.names) if model.schema is not None else None
    try:
        columns, values = lookup.enrich(payload.columns, payload.rows, text=payload.text, takes=takes)
    except MissingKeyError as exc:
        raise InvalidInputError(exc.message, hint=exc.hint, column=exc.column) from None
    except OnlineStoreError as exc:
        raise FeatureStoreUnavailableError(f"the online feature store cannot be read: {exc.message}", hint=exc.hint) from exc
    return _enriched(payload, columns, values, used)


async def _with_features_async(model: LoadedModel, payload: Payload, used: list[bytes] | None) -> Payload:
    """`_with_features` on the event loop: the online read is awaited (a Redis round trip
    does not hold the other requests up).

    Raises:
        InvalidInputError: an entity key column is missing (400);
        ServingError: the online store cannot be read (503).
    """
    from brickyard.features.online import OnlineStoreError
    from brickyard.features.online_lookup import MissingKeyError

    lookup = model.lookup
    assert lookup is not None
    try:
        columns, values = await lookup.enrich_async(payload.columns, payload.rows, text=payload.text, takes=model.takes)
    except MissingKeyError as exc:
        raise InvalidInputError(exc.message, hint=exc.hint, column=exc.column) from None
    except OnlineStoreError as exc:
        raise FeatureStoreUnavailableError(f"the online feature store cannot be read: {exc.message}", hint=exc.hint) from exc
    return _enriched(payload, columns, values, used)


def _without_live_features(model: LoadedModel, sent: Payload, payload: Payload, error: InvalidInputError) -> InvalidInputError:
    """`error` (the signature refused a looked-up feature of `payload`, null) said as what
    it is: the row's entity (in the request `sent`) has no live values online, or its live
    row holds a null there. `error` itself when no row explains it."""
    assert model.lookup is not None
    column = error.column
    lookup = next((item for item in model.lookup.info.lookups if column in item.features), None)
    values = payload.columns.get(column) if column is not None else None
    if lookup is None or values is None:
        return error
    row = next((index for index, value in enumerate(values) if value is None or value == ""), None)
    if row is None:
        return error
    key = ", ".join(f"{name} {sent.columns[name][row]!r}" for name in lookup.keys)
    looked_up = [payload.columns[name][row] for name in lookup.features if name in payload.columns and name not in sent.columns]
    if any(value is not None and value != "" for value in looked_up):
        return InvalidInputError(
            f"row {row}: the live row of {key} in {lookup.table} holds null for {column}, and the model requires a value",
            hint=f"send {column} in the request, or fix the feature table's value",
            column=column,
        )
    return InvalidInputError(
        f"row {row}: {key} has no live features in {lookup.table} (no row online for the key, or it is older "
        f"than the table's TTL), and the model requires a value for {column}",
        hint=f"check the key; a table just built needs `brickyard features materialize {lookup.table.split('.', 1)[-1]}`; "
        "or send the model's features in the request",
        column=lookup.keys[0],
    )


def _enriched(payload: Payload, columns: dict[str, Any], values: list[dict[str, Any]], used: list[bytes] | None) -> Payload:
    """The payload with the looked-up columns; the values used go to `used` (as JSON)."""
    if used is not None:
        used.append(orjson.dumps(values))
    return Payload(columns, payload.rows, payload.params, payload.format, payload.text)


def _no_predictions(classes: Any) -> bytes:
    """The probabilities answer for no rows: no predictions, and the classes."""
    return orjson.dumps({"predictions": [], "classes": _jsonable(classes)}, option=_DUMP, default=_default)


def _jsonable(result: Any) -> Any:
    if isinstance(result, np.ndarray):
        return result if result.dtype.kind in "biuf" and result.flags.c_contiguous else result.tolist()
    module = type(result).__module__
    if module.startswith("pandas"):
        if hasattr(result, "to_dict") and hasattr(result, "columns"):
            return orjson.loads(result.to_json(orient="records"))
        return orjson.loads(result.to_json(orient="values"))
    return result


def _default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


_NO_PARAMS: frozenset[str] = frozenset()


def _params(
    params: dict[str, Any], query: str | None, declared: frozenset[str], *, shadow: bool = False
) -> tuple[bool, dict[str, Any] | None]:
    """Whether the answer is class probabilities, and the params for the model: those its
    signature declares. `shadow`: keep only the model's params, check nothing else.

    Raises:
        InvalidInputError: a param neither brickyard's nor declared, or a bad predict_proba.
    """
    proba = False
    model_params: dict[str, Any] | None = None
    for key, value in params.items():
        if key in declared:
            if model_params is None:
                model_params = {}
            model_params[key] = value
        elif shadow:
            continue
        elif key == "predict_proba":
            if type(value) is not bool:
                raise InvalidInputError(f"params.predict_proba must be true or false, not {orjson.dumps(value).decode()[:40]}")
            proba = value
        elif key == "predict_method":
            if value not in ("predict", "predict_proba"):
                raise InvalidInputError("params.predict_method must be 'predict' or 'predict_proba'")
            proba = value == "predict_proba"
        else:
            accepted = ", ".join(["predict_proba (true/false)", *sorted(declared)])
            raise InvalidInputError(f"unknown param {key!r}: the model's signature does not declare it", hint=f"params: {accepted}")
    if query is not None:
        text = query.lower()
        if text not in _TRUE and text not in _FALSE:
            raise InvalidInputError(f"query parameter predict_proba must be true or false, not {query[:40]!r}")
        proba = text in _TRUE
    return proba, model_params


def media_type(content_type: str) -> str:
    """JSON or CSV from a Content-Type header, as MLflow's server reads it: UTF-8 only, no
    parameters but charset.

    Raises:
        UnsupportedMediaError: another type, charset or parameter (415).
    """
    mime, *parameters = (part.strip() for part in content_type.split(";"))
    options = {key.strip().lower(): value.strip().strip('"') for key, _, value in (p.partition("=") for p in parameters if p)}
    if options.get("charset", "utf-8").lower() not in ("utf-8", "utf8"):
        raise UnsupportedMediaError(f"charset {options['charset']!r} is not supported", hint="send UTF-8")
    others = sorted(set(options) - {"charset"})
    if others:
        raise UnsupportedMediaError(
            f"content type parameter(s) {', '.join(others)} are not supported",
            hint="send application/json with one of dataframe_split, dataframe_records, instances or inputs (MLflow 2's protocol)",
        )
    mime = mime.lower()
    if mime == CSV:
        return CSV
    if mime == JSON or (mime.startswith("application/") and mime.endswith("+json")):
        return JSON
    raise UnsupportedMediaError(f"content type {content_type!r} is not supported", hint="send application/json or text/csv")


async def _read_body(request: Any, limit: int) -> bytes:
    length = request.headers.get("content-length")
    if length is not None:
        if not length.isdigit():
            raise InvalidInputError("the Content-Length header is not a number")
        if int(length) > limit:
            raise PayloadTooLargeError(f"the body is {length} bytes; this endpoint takes at most {limit}", hint="send fewer rows per request")
        return await request.body()
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLargeError(f"the body is over {limit} bytes, the most this endpoint takes", hint="send fewer rows per request")
        chunks.append(chunk)
    return b"".join(chunks)
