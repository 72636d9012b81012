"""The Feast side of bench/featurestore.py: one point-in-time join with a Feast offline store.

Runs inside Feast's own virtual environment (bench/.venvs/feast, made by featurestore.py;
Feast's pins clash with brickyard's), never in the project's:

    bench/.venvs/feast/bin/python bench/feast_side.py --store dask|duckdb \\
        --features F.parquet --entities E.parquet --ttl-days 30 --out OUT.parquet

1. Builds a Feast repository in a temporary folder: `feature_store.yaml` (provider local,
   a file registry, the chosen offline store), one Entity `entity_id` (Int64) and one
   FeatureView `fv` over a FileSource on the feature Parquet file (timestamp field
   `event_ts`), with the given TTL and every `f*` column as a Float64 feature; `apply`.
2. Reads the entity rows (entity_id, event_timestamp, row_id) into pandas and calls
   `get_historical_features(entity_df, ["fv:f0", ...]).to_df()` - the offline retrieval a
   Feast user runs to build a training set. `row_id` rides along as an extra entity column,
   so the caller can match output rows to input rows.
3. Writes the result to --out and prints one JSON line of timings (seconds) and counts.

The `dask` store is Feast's default offline store (`type: file` is an alias of it).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

STARTED = time.perf_counter()

import pandas as pd  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402
from feast import Entity, FeatureStore, FeatureView, Field, FileSource, ValueType  # noqa: E402
from feast.types import Float64  # noqa: E402

IMPORTED = time.perf_counter()

REPO_YAML = """\
project: bench
registry: {registry}
provider: local
online_store:
  type: sqlite
  path: {online}
offline_store:
  type: {store}
entity_key_serialization_version: 3
"""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", choices=("dask", "duckdb"), required=True)
    parser.add_argument("--features", type=Path, required=True, help="feature rows: entity_id, event_ts, f0..fN")
    parser.add_argument("--entities", type=Path, required=True, help="entity rows: entity_id, event_timestamp, row_id")
    parser.add_argument("--ttl-days", type=float, default=30.0)
    parser.add_argument("--out", type=Path, required=True)
    return parser.parse_args(argv)


def build_store(repo: Path, store: str, features: Path, ttl: timedelta) -> tuple[FeatureStore, list[str]]:
    """A Feast repository in `repo` with one feature view over `features`; applied."""
    (repo / "feature_store.yaml").write_text(
        REPO_YAML.format(registry=repo / "registry.db", online=repo / "online.db", store=store)
    )
    columns = [name for name in pq.read_schema(features).names if name.startswith("f")]
    entity = Entity(name="entity_id", join_keys=["entity_id"], value_type=ValueType.INT64)
    source = FileSource(name="bench_features", path=str(features.resolve()), timestamp_field="event_ts")
    view = FeatureView(
        name="fv",
        entities=[entity],
        ttl=ttl,
        schema=[Field(name=name, dtype=Float64) for name in columns],
        source=source,
        online=False,
    )
    feature_store = FeatureStore(repo_path=str(repo))
    feature_store.apply([entity, view])
    return feature_store, [f"fv:{name}" for name in columns]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import feast

    with tempfile.TemporaryDirectory(prefix="feast_bench_") as tmp:
        started = time.perf_counter()
        store, refs = build_store(Path(tmp), args.store, args.features, timedelta(days=args.ttl_days))
        applied = time.perf_counter()
        entity_df = pd.read_parquet(args.entities)
        read = time.perf_counter()
        result = store.get_historical_features(entity_df=entity_df, features=refs).to_df()
        joined = time.perf_counter()
        result.to_parquet(args.out, index=False)
        written = time.perf_counter()
    print(json.dumps({
        "feast": feast.__version__,
        "store": args.store,
        "import_s": IMPORTED - STARTED,
        "apply_s": applied - started,
        "read_entities_s": read - applied,
        "join_s": joined - read,
        "write_s": written - joined,
        "rows_in": len(entity_df),
        "rows_out": len(result),
        "python": sys.version.split()[0],
        "versions": _versions(),
    }))
    return 0


def _versions() -> dict[str, str]:
    from importlib import metadata

    found = {}
    for name in ("feast", "pandas", "pyarrow", "dask", "duckdb", "ibis-framework"):
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


if __name__ == "__main__":
    sys.exit(main())
