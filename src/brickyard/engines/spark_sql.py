"""SQL written once in DuckDB's dialect, translated for Spark SQL with sqlglot.

`translate` returns Spark SQL in which every lake table (`zone.name`), time-travel snapshot
(`zone.name VERSION AS OF 3`) and raw file scan (`'raw/x.csv'`, `read_csv(...)`,
`read_parquet(...)`, `read_json(...)`) is replaced by a temporary view name, plus what each
view must hold; the engine registers the views. Anything Spark cannot run fails here, with
the construct named: a function that is neither in Spark's catalogue nor translated by
sqlglot, a DuckDB-only type, a construct sqlglot reports as unsupported. `brickyard
validate` calls it, so a pipeline fails there rather than at run time.

>>> translate("SELECT count(*) AS n FROM bronze.trips WHERE fare > 0").text
'SELECT COUNT(*) AS n FROM bronze__trips AS trips WHERE fare > 0'
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from brickyard.engines import spark_semantics
from brickyard.engines.sql_text import FILE_FUNCTIONS, Snapshot, rewrite_time_travel
from brickyard.errors import SqlError

BUILTIN_SCHEMAS = frozenset({"main", "temp", "information_schema", "pg_catalog", "system"})
UNSUPPORTED_TYPES = frozenset({"ENUM", "UNION", "HUGEINT", "UHUGEINT", "UTINYINT", "USMALLINT", "UINT", "UBIGINT", "BIT", "TIMETZ", "TIME"})
# DuckDB functions sqlglot leaves untranslated, with the Spark equivalent brickyard writes.
RENAMED = {"try_strptime": "try_to_timestamp"}
# Calls Spark parses as syntax rather than functions in its catalogue.
SPARK_SYNTAX = frozenset({"cast", "try_cast", "extract", "trim", "position", "substring", "overlay", "ceil", "floor", "timestampdiff"})
RAW_READERS = {
    "read_csv": "csv",
    "read_csv_auto": "csv",
    "read_parquet": "parquet",
    "parquet_scan": "parquet",
    "read_json": "json",
    "read_json_auto": "json",
    "read_ndjson": "json",
    "read_ndjson_auto": "json",
}


class UntranslatableSqlError(SqlError):
    """The SQL uses a DuckDB construct Spark cannot run."""


@dataclass(frozen=True)
class RawScan:
    """Raw files a query reads directly: lake-relative paths, their format, reader options."""

    format: str
    paths: tuple[str, ...]
    options: tuple[tuple[str, str], ...] = ()


@dataclass
class SparkStatement:
    """One statement in Spark SQL, and the views it needs."""

    text: str
    tables: dict[str, str] = field(default_factory=dict)  # view -> zone.name
    snapshots: dict[str, Snapshot] = field(default_factory=dict)  # view -> past version
    raw: dict[str, RawScan] = field(default_factory=dict)  # view -> raw files
    tree: Any = field(default=None, repr=False, compare=False)  # the translated sqlglot tree

    @property
    def views(self) -> list[str]:
        return [*self.tables, *self.snapshots, *self.raw]

    def typed_text(self, schemas: Mapping[str, Mapping[str, str]]) -> str:
        """The Spark SQL with DuckDB's rounding of doubles, once the views' column types
        (Spark type names) are known.

        Spark rounds a double's shortest decimal text half-up (`round(9.495, 2)` is 9.5);
        DuckDB rounds the double's exact binary value half away from zero (9.495 is
        9.49499999..., so 9.49; DuckDB before 2.0.1 computed `round(x * 10^n) / 10^n` in
        floating point instead, see `duckdb_rounding`). Where sqlglot can tell the argument
        is a double, the Spark SQL does what the installed DuckDB does; decimals round
        exactly on both and are left alone.
        """
        from sqlglot import exp
        from sqlglot.errors import SqlglotError
        from sqlglot.optimizer.annotate_types import annotate_types
        from sqlglot.optimizer.qualify import qualify

        if self.tree is None or self.tree.find(exp.Round, exp.Length, exp.IntDiv) is None:
            return self.text
        schema: dict[str, object] = {view: dict(columns) for view, columns in schemas.items()}
        try:  # types need qualified columns; SQL sqlglot cannot qualify keeps Spark's rounding
            tree = qualify(
                self.tree.copy(), schema=schema, dialect="spark", validate_qualify_columns=False,
                quote_identifiers=False, expand_stars=False,
            )
            tree = annotate_types(tree, schema=schema, dialect="spark")
        except SqlglotError:
            return self.text
        changed = _typed_semantics(tree)
        for node in list(tree.find_all(exp.Round)):
            digits = node.args.get("decimals")
            value = node.this
            if not (isinstance(digits, exp.Literal) and digits.is_int and 0 < int(digits.name) <= 15):
                continue
            if value.type is None or not value.type.is_type("double", "float"):
                continue
            node.replace(_duckdb_round(value.copy(), int(digits.name)))
            changed = True
        return tree.sql(dialect="spark") if changed else self.text


def _typed_semantics(tree: Any) -> bool:
    """Rewrite `len(list)` and `//` of non-integers once sqlglot knows the types; whether
    anything changed."""
    from sqlglot import exp

    changed = False
    for node in list(tree.find_all(exp.Length)):
        if node.this.type is not None and node.this.type.is_type("array"):
            node.replace(exp.cast(exp.Anonymous(this="array_size", expressions=[node.this.copy()]), "BIGINT"))
            changed = True
    for node in reversed(list(tree.find_all(exp.IntDiv))):
        types = [side.type for side in (node.this, node.expression)]
        if all(t is not None and t.is_type(*exp.DataType.INTEGER_TYPES) for t in types):
            continue
        if any(t is None or t.is_type("unknown") for t in types):
            continue
        node.replace(exp.Div(this=exp.cast(node.this.copy(), "DOUBLE"), expression=exp.cast(node.expression.copy(), "DOUBLE")))
        changed = True
    return changed


@cache
def duckdb_rounding() -> str:
    """How the installed DuckDB rounds a double to n digits: `exact` (the binary value,
    half away from zero: DuckDB 2.0.1 and later) or `scaled` (`round(x * 10^n) / 10^n`)."""
    import duckdb

    row = duckdb.connect().execute("SELECT round(3.175::DOUBLE, 2)").fetchone()
    return "exact" if row is not None and row[0] == 3.17 else "scaled"


def _duckdb_round(value: Any, digits: int) -> Any:
    """Spark SQL for DuckDB's `round(value, digits)` of a double (see `duckdb_rounding`).

    Both ways start from y = x * 10^n rounded half away from zero (Spark's `round(y)` on a
    double is that, for any y: a double whose shortest text ends in .5 is exactly a tie).
    The exact way differs only when y is exactly a tie but x * 10^n is not: the rounding
    error of the product (Dekker's split of x into two 26-bit halves; 10^n, n <= 11, has at
    most 26 significant bits, so each half times 10^n is exact) tells which side it lies on.
    """
    import sqlglot

    x = f"({value.sql(dialect='spark')})"
    scale = f"CAST(1e{digits} AS DOUBLE)"
    y = f"({x} * {scale})"
    rounded = f"round({y}) / {scale}"
    if duckdb_rounding() == "scaled" or digits > 11:
        return sqlglot.parse_one(f"({rounded})", read="spark")
    split = f"({x} * 134217729.0D)"
    high = f"({split} - ({split} - {x}))"
    error = f"(({high} * {scale} - {y}) + ({x} - {high}) * {scale})"
    text = (
        f"(CASE WHEN NOT (abs({y}) < 4503599627370496.0D) THEN {rounded}"
        f" WHEN {y} - floor({y}) = 0.5D AND signum({error}) = -signum({y})"
        f" THEN (round({y}) - signum({y})) / {scale}"
        f" ELSE {rounded} END)"
    )
    return sqlglot.parse_one(text, read="spark")


def translate(query: str, *, where: str = "the query") -> SparkStatement:
    """Translate one DuckDB statement (the last, when there are several) for Spark.

    Raises:
        SqlError: it does not parse; UntranslatableSqlError: Spark cannot run it.
    """
    statements = translate_all(query, where=where)
    if not statements:
        raise SqlError(f"{where} holds no SQL statement")
    return statements[-1]


def translate_all(query: str, *, where: str = "the query") -> list[SparkStatement]:
    """Translate every statement of `query` (see `translate`)."""
    import sqlglot
    from sqlglot.errors import ParseError, UnsupportedError

    text, snapshots = rewrite_time_travel(query)
    snapshot_by_view = {s.view_name: s for s in snapshots}
    try:
        trees = [tree for tree in sqlglot.parse(text, read="duckdb") if tree is not None]
    except ParseError as exc:
        raise SqlError(f"{where} does not parse: {_parse_message(exc)}") from exc
    result = []
    for tree in trees:
        statement = SparkStatement("")
        _replace_sources(tree, statement, snapshot_by_view)
        spark_semantics.rewrite(tree, where)
        _check_and_rename(tree, where)
        _keep_duckdb_types(tree)
        try:
            statement.text = tree.sql(dialect="spark", unsupported_level=sqlglot.ErrorLevel.RAISE)
        except UnsupportedError as exc:
            raise UntranslatableSqlError(
                f"{where} cannot run on Spark: {exc}", hint="rewrite it, or run it with --engine duckdb"
            ) from exc
        _check_spark_calls(statement.text, where)
        statement.tree = tree
        result.append(statement)
    return result


def _replace_sources(tree: object, statement: SparkStatement, snapshots: dict[str, Snapshot]) -> None:
    from sqlglot import exp

    ctes = {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}  # type: ignore[attr-defined]
    for table in list(tree.find_all(exp.Table)):  # type: ignore[attr-defined]
        source = table.this
        view: str | None = None
        if isinstance(source, exp.Identifier) and source.name in snapshots:
            view = f"__snapshot_{len(statement.snapshots)}"
            statement.snapshots[view] = snapshots[source.name]
            default_alias = snapshots[source.name].table.split(".")[1]
        elif isinstance(source, exp.Identifier) and source.quoted and _looks_like_path(source.name) and not table.db:
            view = f"__raw_{len(statement.raw)}"
            statement.raw[view] = RawScan(_format_of(source.name), (source.name,))
            default_alias = None
        elif isinstance(source, exp.ReadCSV | exp.Anonymous) and _reader_name(source) in RAW_READERS:
            view = f"__raw_{len(statement.raw)}"
            statement.raw[view] = _raw_scan(source)
            default_alias = None
        elif table.db and not table.catalog and table.db.lower() not in BUILTIN_SCHEMAS:
            name = f"{table.db.lower()}.{table.name.lower()}"
            view = f"{table.db.lower()}__{table.name.lower()}"
            statement.tables[view] = name
            default_alias = table.name
        elif not table.db and table.name.lower() in ctes:
            continue
        if view is None:
            continue
        alias = table.args.get("alias")
        replacement = exp.Table(this=exp.to_identifier(view), pivots=table.args.get("pivots"))
        if alias is not None:
            replacement.set("alias", alias)
        elif default_alias:
            replacement.set("alias", exp.TableAlias(this=exp.to_identifier(default_alias)))
        table.replace(replacement)


def _check_and_rename(tree: object, where: str) -> None:
    from sqlglot import exp

    for function in list(tree.find_all(exp.Anonymous)):  # type: ignore[attr-defined]
        name = str(function.name).lower()
        if name in RENAMED:
            function.replace(_renamed(function, RENAMED[name]))
        elif name in FILE_FUNCTIONS:
            raise UntranslatableSqlError(
                f"{where} cannot run on Spark: {name}() is a DuckDB file function; "
                "Spark reads raw files only as a query's FROM source",
                hint="select FROM read_csv('raw/...') / read_parquet(...), or run it with --engine duckdb",
            )
        elif name not in spark_functions():
            raise UntranslatableSqlError(
                f"{where} cannot run on Spark: function {name}() has no Spark equivalent",
                hint="rewrite it with functions both engines know, or run it with --engine duckdb",
            )
    for data_type in tree.find_all(exp.DataType):  # type: ignore[attr-defined]
        type_name = data_type.this.name if hasattr(data_type.this, "name") else str(data_type.this)
        if type_name.upper() in UNSUPPORTED_TYPES:
            raise UntranslatableSqlError(
                f"{where} cannot run on Spark: type {data_type.sql(dialect='duckdb')} has no Spark equivalent",
                hint="cast to a type both engines know (VARCHAR, BIGINT, DOUBLE, DECIMAL, DATE, TIMESTAMP)",
            )


def _check_spark_calls(text: str, where: str) -> None:
    """Every function the Spark SQL calls must be Spark's: sqlglot renames some DuckDB
    functions to names only other dialects have."""
    import sqlglot
    from sqlglot.tokens import TokenType

    tokens = sqlglot.Dialect.get_or_raise("spark").tokenize(text)
    for before, name, after in zip([None, *tokens], tokens, [*tokens[1:], None]):
        if after is None or after.token_type != TokenType.L_PAREN or name.token_type != TokenType.VAR:
            continue
        if before is not None and before.token_type in (TokenType.ALIAS, TokenType.DOT):
            continue  # `AS t(a, b)` column aliases, `schema.function(...)`
        if before is not None and before.text.upper() == "WITHIN":
            continue  # `percentile_disc(0.5) WITHIN GROUP (ORDER BY x)`
        function = name.text.lower()
        if function not in spark_functions() and function not in SPARK_SYNTAX:
            raise UntranslatableSqlError(
                f"{where} cannot run on Spark: function {function}() (as sqlglot writes it for Spark) "
                "is not one of Spark's",
                hint="rewrite it with functions both engines know, or run it with --engine duckdb",
            )


def _keep_duckdb_types(tree: object) -> None:
    """Make Spark's result types DuckDB's where they differ: `/` is always DOUBLE in DuckDB
    (Spark gives DECIMAL for `x / 60.0`), date parts are BIGINT (Spark: INT)."""
    from sqlglot import exp

    parts = (exp.Year, exp.Month, exp.Day, exp.Hour, exp.Minute, exp.Second, exp.Quarter,
             exp.DayOfYear, exp.WeekOfYear, exp.Extract)
    for division in list(tree.find_all(exp.Div)):  # type: ignore[attr-defined]
        numerator = division.this
        if not (isinstance(numerator, exp.Cast) and numerator.to.is_type("double")):
            division.set("this", exp.cast(numerator.copy(), "DOUBLE"))
    for part in list(tree.find_all(*parts)):  # type: ignore[attr-defined]
        if not isinstance(part.parent, exp.Cast):
            part.replace(exp.cast(part.copy(), "BIGINT"))


def _renamed(function: object, spark_name: str) -> object:
    """`try_strptime(x, fmt)` as Spark's `try_to_timestamp(x, java_fmt)`."""
    from sqlglot import exp

    args = list(function.expressions)  # type: ignore[attr-defined]
    if spark_name == "try_to_timestamp" and len(args) == 2 and isinstance(args[1], exp.Literal):
        args[1] = exp.Literal.string(java_format(args[1].name))
    return exp.Anonymous(this=spark_name, expressions=args)


def _reader_name(source: object) -> str:
    from sqlglot import exp

    return "read_csv" if isinstance(source, exp.ReadCSV) else str(source.name).lower()  # type: ignore[attr-defined]


def _raw_scan(source: object) -> RawScan:
    from sqlglot import exp

    reader = _reader_name(source)
    first = source.this if isinstance(source, exp.ReadCSV) else source.expressions[0]  # type: ignore[attr-defined]
    rest = source.expressions if isinstance(source, exp.ReadCSV) else source.expressions[1:]  # type: ignore[attr-defined]
    paths = tuple(item.name for item in first.expressions) if isinstance(first, exp.Array) else (first.name,)
    options = []
    for item in rest:
        if isinstance(item, exp.EQ | exp.PropertyEQ):
            value = item.expression
            text = value.name if isinstance(value, exp.Literal) else value.sql().lower()
            options.append((item.this.name.lower(), text))
    return RawScan(RAW_READERS[reader], paths, tuple(options))


def _looks_like_path(name: str) -> bool:
    return "/" in name or bool(re.search(r"\.(csv|tsv|parquet|json|jsonl|ndjson)(\.gz)?$", name, re.I))


def _format_of(path: str) -> str:
    lowered = path.lower().removesuffix(".gz")
    if lowered.endswith(".parquet"):
        return "parquet"
    if lowered.endswith((".json", ".jsonl", ".ndjson")):
        return "json"
    return "csv"


_JAVA = {
    "Y": "yyyy", "y": "yy", "m": "M", "d": "d", "H": "H", "I": "h", "M": "m", "S": "s",
    "f": "SSSSSS", "g": "SSS", "n": "SSSSSSSSS", "p": "a", "b": "MMM", "B": "MMMM",
    "a": "E", "A": "EEEE", "j": "D", "z": "XX", "Z": "z",
}
_NUMERIC = frozenset("mdHIMSj")


def java_format(format: str) -> str:
    """A strptime format (DuckDB's) as a Java DateTimeFormatter pattern (Spark's).

    Numeric fields between separators get one letter (`M`, `d`, `H`, ...), which Java
    parses as one or more digits, as strptime does ("3/5/2017" with `%m/%d/%Y`); fields
    next to another field keep a fixed width of two.

    >>> java_format("%m/%d/%Y %H:%M")
    'M/d/yyyy H:m'
    >>> java_format("%Y%m%dT%H%M%S")
    "yyyyMMdd'T'HHmmss"
    """
    tokens: list[tuple[str, str]] = []  # ("field", code) or ("text", literal)
    for match in re.finditer(r"%-?(.)|([^%]+)", format):
        if match.group(1) is not None:
            code = match.group(1)
            if code == "%":
                tokens.append(("text", "%"))
            else:
                tokens.append(("field", code))
        else:
            tokens.append(("text", match.group(2)))
    out = []
    for index, (kind, value) in enumerate(tokens):
        if kind == "text":
            out.append(_java_text(value))
            continue
        pattern = _JAVA.get(value, value)
        if value in _NUMERIC:
            after = tokens[index + 1] if index + 1 < len(tokens) else None
            before = tokens[index - 1] if index > 0 else None
            if any(t is not None and t[0] == "field" for t in (before, after)):
                pattern = "DDD" if value == "j" else pattern * 2
        out.append(pattern)
    return "".join(out)


def _java_text(text: str) -> str:
    """Literal text of a Java pattern: letters and quotes quoted."""
    if not re.search(r"[A-Za-z']", text):
        return text
    return "'" + text.replace("'", "''") + "'"


@cache
def spark_functions() -> frozenset[str]:
    """Names of Spark SQL's built-in functions (a list taken from pyspark 4)."""
    lines = (Path(__file__).parent / "spark_functions.txt").read_text(encoding="utf-8").splitlines()
    return frozenset(line.strip() for line in lines if line.strip() and not line.startswith("#"))


def _parse_message(exc: Exception) -> str:
    errors = getattr(exc, "errors", None)
    if errors:
        first = errors[0]
        return f"{first.get('description')} (line {first.get('line')}, column {first.get('col')})"
    return str(exc).splitlines()[0]
