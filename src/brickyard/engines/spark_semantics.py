"""DuckDB's meaning of the SQL, kept on Spark: constructs both engines accept but compute
differently, rewritten so Spark computes DuckDB's result, or rejected with the construct named.

sqlglot translates names; it does not keep meanings. DuckDB's `dayofweek` is 0 on Sunday,
Spark's 1; DuckDB's `dayname` is 'Monday', Spark's 'Mon'; DuckDB's `date_diff('minute', a,
b)` counts minute boundaries crossed, Spark's `DATEDIFF(MINUTE, a, b)` whole minutes elapsed.
`rewrite` runs on the DuckDB tree before it is written as Spark SQL; each rewrite is proven
row for row against both engines in tests/unit/engines/test_spark_semantics.py.

Timestamps are brickyard's (DuckDB `TIMESTAMP`, Spark `TIMESTAMP_NTZ`): every rewrite reads
calendar fields, so none depends on the session's time zone.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from brickyard.errors import SqlError

HINT = "rewrite it with constructs both engines compute alike, or run the task with engine: duckdb"

# DuckDB's names for date parts (date_part, date_diff, date_sub), by the part they mean.
_UNITS = {
    "microsecond": ("us", "usec", "usecs", "microseconds", "microsecond"),
    "millisecond": ("ms", "msec", "msecs", "milliseconds", "millisecond"),
    "second": ("s", "sec", "secs", "seconds", "second"),
    "minute": ("m", "min", "mins", "minutes", "minute"),
    "hour": ("h", "hr", "hrs", "hours", "hour"),
    "day": ("d", "days", "day", "dayofmonth"),
    "week": ("w", "weeks", "week", "weekofyear"),
    "month": ("mon", "mons", "months", "month"),
    "quarter": ("quarter", "quarters"),
    "year": ("y", "yr", "yrs", "years", "year"),
    "dow": ("dow", "dayofweek", "weekday"),
    "isodow": ("isodow",),
    "doy": ("doy", "dayofyear"),
}
UNIT = {alias: unit for unit, aliases in _UNITS.items() for alias in aliases}

# Spark SQL for DuckDB's date_part(unit, {x}) on a DATE or TIMESTAMP.
_PART = {
    "year": "year({x})",
    "quarter": "quarter({x})",
    "month": "month({x})",
    "day": "dayofmonth({x})",
    "hour": "hour({x})",
    "minute": "minute({x})",
    "second": "second({x})",
    "millisecond": "(second({x}) * 1000 + {ms})",
    "microsecond": "(second({x}) * 1000000 + {us})",
    "week": "weekofyear({x})",
    "doy": "dayofyear({x})",
    "dow": "(dayofweek({x}) - 1)",
    "isodow": "(weekday({x}) + 1)",
}
# Fractions of the second, as whole milli- and microseconds (Spark's SECOND part is decimal).
_MS = "(CAST(date_part('SECOND', {x}) * 1000 AS BIGINT) % 1000)"
_US = "(CAST(date_part('SECOND', {x}) * 1000000 AS BIGINT) % 1000000)"

# Spark SQL for DuckDB's date_diff(unit, {a}, {b}): boundaries of the unit crossed from a to b.
_DAYS = "CAST(datediff(CAST({b} AS DATE), CAST({a} AS DATE)) AS BIGINT)"
_HOURS = f"({_DAYS} * 24 + hour({{b}}) - hour({{a}}))"
_MINUTES = f"({_HOURS} * 60 + minute({{b}}) - minute({{a}}))"
_SECONDS = f"({_MINUTES} * 60 + second({{b}}) - second({{a}}))"
_DIFF = {
    "microsecond": f"({_SECONDS} * 1000000 + {_US.format(x='{b}')} - {_US.format(x='{a}')})",
    "millisecond": f"({_SECONDS} * 1000 + {_MS.format(x='{b}')} - {_MS.format(x='{a}')})",
    "second": _SECONDS,
    "minute": _MINUTES,
    "hour": _HOURS,
    "day": _DAYS,
    "week": f"({_DAYS} DIV 7)",
    "month": "(CAST(year({b}) - year({a}) AS BIGINT) * 12 + month({b}) - month({a}))",
    "quarter": "(CAST(year({b}) - year({a}) AS BIGINT) * 4 + quarter({b}) - quarter({a}))",
    "year": "CAST(year({b}) - year({a}) AS BIGINT)",
}
# DuckDB's date_sub(unit, a, b), whole units elapsed, is Spark's timestampdiff.
# (Spark's month, quarter and year counts differ at month ends: those are rejected.)
_ELAPSED = ("microsecond", "millisecond", "second", "minute", "hour", "day", "week")
# DuckDB interpolates a quantile of doubles as fma(lo, 1 - d, hi * d), Spark's percentile
# as (1 - d) * lo + d * hi, rounded twice: they agree where d is 0.5 (both round
# lo / 2 + hi / 2 once), and differ in the last bit for other fractions.
_SAME_FRACTIONS = ("0.5", "0.50")

# strftime codes with the Java pattern that writes the same text (Spark's date_format).
_STRFTIME = {
    "a": "EEE", "A": "EEEE", "b": "MMM", "h": "MMM", "B": "MMMM", "d": "dd", "-d": "d",
    "H": "HH", "-H": "H", "I": "hh", "-I": "h", "j": "DDD", "-j": "D", "m": "MM", "-m": "M",
    "M": "mm", "-M": "m", "S": "ss", "-S": "s", "p": "a", "y": "yy", "Y": "yyyy",
    "f": "SSSSSS", "g": "SSS", "n": "SSSSSSSSS",
}


class DifferentOnSparkError(SqlError):
    """The SQL uses a construct Spark would compute differently, which brickyard cannot
    rewrite."""


def rewrite(tree: Any, where: str) -> None:
    """Rewrite, in place, every construct of the DuckDB `tree` that Spark computes differently
    into Spark SQL that computes DuckDB's result.

    Raises:
        DifferentOnSparkError: a construct that cannot be rewritten (named in the message).
    """
    from sqlglot import exp

    rewrites: dict[type, Callable[[Any, str], Any]] = {
        exp.DayOfWeek: lambda node, _: _spark(_PART["dow"], x=node.this),
        exp.DayOfWeekIso: lambda node, _: _spark(_PART["isodow"], x=node.this),
        exp.Dayname: lambda node, _: _spark("date_format({x}, 'EEEE')", x=node.this),
        exp.Monthname: lambda node, _: _spark("date_format({x}, 'MMMM')", x=node.this),
        exp.Extract: _extract,
        exp.DateDiff: _date_diff,
        exp.TimeToStr: _strftime,
        exp.PercentileCont: _percentile,
        exp.PercentileDisc: _percentile,
        exp.Quantile: _percentile,
        exp.Length: _length,
        exp.Anonymous: _anonymous,
        exp.Pivot: _pivot,
        exp.ArrayAgg: _ordered_list,
        exp.First: _first_or_last,
        exp.Last: _first_or_last,
        exp.WindowSpec: _frame,
        exp.Star: _star,
    }
    _inline_named_windows(tree)
    nodes = [node for node in tree.find_all(*rewrites) if type(node) in rewrites]
    for node in reversed(nodes):  # the deepest first: a rewrite takes its rewritten arguments
        replacement = rewrites[type(node)](node, where)
        if replacement is not node:
            node.replace(replacement)


def _inline_named_windows(tree: Any) -> None:
    """Write each named window (`WINDOW w AS (...)`) into every `OVER` that uses it, and drop
    the WINDOW clause. DuckDB lets a window refine a named one (`OVER (w ROWS BETWEEN ...)`,
    `WINDOW w2 AS (w ORDER BY t)`); Spark's parser refuses both. The inlined window is the
    named one's PARTITION BY, its ORDER BY unless the user gives one, and its frame unless
    the user gives one (the SQL standard's rule, DuckDB's). A select whose windows name one
    that is not defined is left as it is, for the engine to report."""
    from sqlglot import exp

    for select in list(tree.find_all(exp.Select)):
        definitions = select.args.get("windows") or []
        if not definitions:
            continue
        named: dict[str, Any] = {}
        for definition in definitions:
            base = definition.args.get("alias")
            if base is not None and base.name not in named:
                break
            named[definition.this.name] = _refined(named[base.name] if base is not None else None, definition)
        else:
            usages = [
                node for node in select.find_all(exp.Window)
                if node.args.get("over") and node.args.get("alias") is not None and node.parent_select is select
            ]
            if all(node.args["alias"].name in named for node in usages):
                for node in usages:
                    window = _refined(named[node.args["alias"].name], node)
                    for key in ("partition_by", "order", "spec"):
                        node.set(key, window[key])
                    node.set("alias", None)
                select.set("windows", None)


def _refined(base: dict[str, Any] | None, window: Any) -> dict[str, Any]:
    """A window's PARTITION BY, ORDER BY and frame: its own, else those of the `base` it names."""
    own = {key: window.args.get(key) for key in ("partition_by", "order", "spec")}
    if base is None:
        return {key: value.copy() if hasattr(value, "copy") else value for key, value in own.items()}
    return {
        "partition_by": [part.copy() for part in (own["partition_by"] or base["partition_by"] or [])] or None,
        "order": (own["order"] or base["order"]).copy() if (own["order"] or base["order"]) else None,
        "spec": (own["spec"] or base["spec"]).copy() if (own["spec"] or base["spec"]) else None,
    }


def _spark(template: str, **arguments: Any) -> Any:
    """A Spark SQL `template` as a tree, `{name}` replaced by the (DuckDB) tree `arguments[name]`."""
    import sqlglot
    from sqlglot import exp

    text = template.replace("{ms}", _MS).replace("{us}", _US)
    holes = {name: f"__arg_{name}__" for name in arguments}
    tree = sqlglot.parse_one(text.format(**holes), read="spark")
    for column in list(tree.find_all(exp.Column)):
        for name, hole in holes.items():
            if column.name == hole and not column.table:
                column.replace(arguments[name].copy())
    return tree


def _different(where: str, construct: str, why: str) -> DifferentOnSparkError:
    return DifferentOnSparkError(
        f"{where} uses {construct}, which brickyard cannot run the same on Spark ({why})", hint=HINT
    )


def _unit_name(node: Any) -> str | None:
    from sqlglot import exp

    if isinstance(node, exp.Literal):
        return str(node.name).lower() if node.is_string else None
    if isinstance(node, exp.Var | exp.Column | exp.Identifier):
        return str(node.name).lower()
    return None


def _date_part(unit_node: Any, value: Any, where: str, called: str) -> Any:
    unit = _unit_name(unit_node)
    construct = f"{called}('{unit}', ...)" if unit is not None else f"{called}(...) with a computed part"
    part = UNIT.get(unit or "")
    if part not in _PART:
        raise _different(where, construct, "brickyard translates the parts " + ", ".join(_PART))
    return _spark(_PART[part], x=value)


def _extract(node: Any, where: str) -> Any:
    unit = _unit_name(node.this)
    if unit is not None and UNIT.get(unit) in _PART:
        return _spark(_PART[UNIT[unit]], x=node.expression)
    raise _different(where, f"extract({unit or '?'} FROM ...)", "brickyard translates the parts " + ", ".join(_PART))


def _date_diff(node: Any, where: str) -> Any:
    unit = _unit_name(node.args.get("unit")) or "day"
    construct = f"date_diff('{unit}', ...)"
    part = UNIT.get(unit)
    if part not in _DIFF:
        raise _different(where, construct, "brickyard translates the parts " + ", ".join(_DIFF))
    return _spark(f"CAST({_DIFF[part]} AS BIGINT)", a=node.expression, b=node.this)


def _date_sub(node: Any, where: str) -> Any:
    arguments = node.expressions
    unit = _unit_name(arguments[0]) if arguments else None
    part = UNIT.get(unit or "")
    if len(arguments) != 3 or part not in _ELAPSED:
        raise _different(where, f"date_sub('{unit}', ...)", "brickyard translates the parts " + ", ".join(_ELAPSED))
    return _spark(f"CAST(timestampdiff({part.upper()}, {{a}}, {{b}}) AS BIGINT)", a=arguments[1], b=arguments[2])


def _strftime(node: Any, where: str) -> Any:
    import re

    from sqlglot import exp

    template = node.args.get("format")
    if not (isinstance(template, exp.Literal) and template.is_string):
        raise _different(where, "strftime(...) with a computed format", "its Java pattern must be known")
    pattern = []
    for match in re.finditer(r"%(-?.)|([^%]+)", template.name):
        code, text = match.group(1), match.group(2)
        if text is not None or code == "%":
            literal = text if text is not None else "%"
            pattern.append(literal if not re.search(r"[A-Za-z']", literal) else "'" + literal.replace("'", "''") + "'")
        elif code in _STRFTIME:
            pattern.append(_STRFTIME[code])
        else:
            raise _different(where, f"strftime(..., '%{code}')", "Spark's date_format has no such field; "
                             "brickyard translates %" + ", %".join(_STRFTIME))
    return _spark("date_format({x}, " + exp.Literal.string("".join(pattern)).sql(dialect="spark") + ")", x=node.this)


def _percentile(node: Any, where: str) -> Any:
    """median and quantile_cont(x, 0.5) are Spark's exact `percentile(x, 0.5)`; quantile_disc
    (and quantile) Spark's `percentile_disc(q) WITHIN GROUP (ORDER BY x)` (sqlglot would
    write the ordered-set forms as percentile_approx); other continuous fractions are
    rejected (see `_SAME_FRACTIONS`)."""
    from sqlglot import exp

    continuous = isinstance(node, exp.PercentileCont)
    name = "quantile_cont" if continuous else "quantile_disc"
    within = isinstance(node.parent, exp.WithinGroup)
    fraction = node.this if within else node.args.get("quantile") if isinstance(node, exp.Quantile) else node.expression
    if fraction is None:
        return node
    if isinstance(fraction, exp.Array):
        raise _different(where, f"{name}(x, [...])", "call it once per fraction")
    if continuous and not (isinstance(fraction, exp.Literal) and fraction.name in _SAME_FRACTIONS):
        shown = fraction.sql(dialect="duckdb")
        raise _different(
            where, f"quantile_cont(..., {shown})" if not within else f"percentile_cont({shown}) WITHIN GROUP (...)",
            "Spark interpolates between two values with one rounding more, so the last digit can differ; "
            "median, quantile_cont(x, 0.5) and quantile_disc run the same",
        )
    if within:
        return exp.Anonymous(this="percentile_cont" if continuous else "percentile_disc", expressions=[fraction])
    if continuous:
        return _spark("percentile({x}, 0.5)", x=node.this)
    if isinstance(node.parent, exp.Window):
        raise _different(where, f"{name}(...) OVER (...)", "compute it per group and join")
    return exp.WithinGroup(  # built, not parsed: sqlglot would write it as percentile_approx
        this=exp.Anonymous(this="percentile_disc", expressions=[fraction.copy()]),
        expression=exp.Order(expressions=[exp.Ordered(this=node.this.copy())]),
    )


def _length(node: Any, where: str) -> Any:
    """`len(list)` is Spark's array_size; of a column, only the column's type tells (see
    `SparkStatement.typed_text`)."""
    from sqlglot import exp

    if isinstance(node.this, exp.Array | exp.ArrayAgg | exp.Split | exp.RegexpSplit) or node.this.meta.get("list"):
        return _spark("CAST(array_size({x}) AS BIGINT)", x=node.this)
    return node


def _anonymous(node: Any, where: str) -> Any:
    name = str(node.name).lower()
    arguments = node.expressions
    if name in ("date_part", "datepart") and len(arguments) == 2:
        return _date_part(arguments[0], arguments[1], where, name)
    if name == "weekday" and len(arguments) == 1:
        return _spark(_PART["dow"], x=arguments[0])
    if name == "date_sub" and len(arguments) == 3:
        return _date_sub(node, where)
    return node


def _pivot(node: Any, where: str) -> Any:
    """The SQL-standard `PIVOT (agg FOR col IN (...))` runs alike; DuckDB's own `PIVOT t ON
    col USING agg` takes its columns from the data, which Spark SQL cannot."""
    if node.args.get("fields"):
        return node
    statement = "UNPIVOT" if node.args.get("unpivot") else "PIVOT"
    raise _different(
        where, f"{statement} ... ON ... (DuckDB's own form)",
        f"Spark SQL has only {statement} (... FOR column IN (...)) with the values listed",
    )


def _ordered_list(node: Any, where: str) -> Any:
    """`list(v [ORDER BY ...])` / `array_agg`: DuckDB keeps NULL values and the order asked for,
    and gives NULL for no rows; Spark's collect_list drops NULLs, ignores the order and gives
    []. Collected as structs (never NULL), sorted by DuckDB's order, the values taken back out."""
    value, ordering, distinct = _aggregate_argument(node, where, "list(DISTINCT ... ORDER BY ...)")
    carrier = _collect_structs(node, value, ordering)
    values = _sorted_values(carrier, ordering)
    if distinct:
        values = _spark("array_distinct({x})", x=values)
    listed = _spark("CASE WHEN size({c}) > 0 THEN {x} END", c=carrier.copy(), x=values)
    listed.meta["list"] = True
    carrier.replace(listed)
    return node


def _first_or_last(node: Any, where: str) -> Any:
    """`first(v ORDER BY ...)` / `last(...)`: the value (NULL or not) of the first or last row
    in that order, as DuckDB gives it; Spark has no ordered first/last."""
    from sqlglot import exp

    if not isinstance(node.this, exp.Order):
        return node
    name = "first" if isinstance(node, exp.First) else "last"
    value, ordering, _ = _aggregate_argument(node, where, f"{name}(DISTINCT ...)")
    carrier = _collect_structs(node, value, ordering)
    index = "1" if name == "first" else "-1"
    values = _sorted_values(carrier, ordering)
    carrier.replace(_spark(f"CASE WHEN size({{c}}) > 0 THEN element_at({{x}}, {index}) END", c=carrier.copy(), x=values))
    return node


def _aggregate_argument(node: Any, where: str, refused: str) -> tuple[Any, list[Any], bool]:
    """An ordered aggregate's value, its ORDER BY terms and whether it is DISTINCT."""
    from sqlglot import exp

    value, ordering = node.this, []
    if isinstance(value, exp.Order):
        value, ordering = value.this, list(value.expressions)
    distinct = isinstance(value, exp.Distinct)
    if distinct:
        if ordering or len(value.expressions) != 1 or node.key != "arrayagg":
            raise _different(where, refused, "Spark has no DISTINCT with an order inside an aggregate")
        value = value.expressions[0]
    return value, ordering, distinct


def _collect_structs(node: Any, value: Any, ordering: list[Any]) -> Any:
    """Replace the aggregate `node` by collect_list(named_struct(v, k0, k1, ...)); return the
    expression that carries it (with its FILTER and OVER, when it has them)."""
    from sqlglot import exp

    fields: list[Any] = [exp.Literal.string("v"), value.copy()]
    for position, term in enumerate(ordering):
        fields += [exp.Literal.string(f"k{position}"), term.this.copy()]
    collected = exp.Anonymous(this="collect_list", expressions=[exp.Anonymous(this="named_struct", expressions=fields)])
    node.replace(collected)
    carrier: Any = collected
    while isinstance(carrier.parent, exp.Filter | exp.Window) and carrier.parent.this is carrier:
        carrier = carrier.parent
    return carrier


def _sorted_values(carrier: Any, ordering: list[Any]) -> Any:
    """The `v` fields of the structs collected by `carrier`, sorted by DuckDB's ORDER BY (NULLS
    LAST unless said otherwise; NaN above every number, as both engines compare)."""
    if not ordering:
        return _spark("transform({c}, __e -> __e.v)", c=carrier.copy())
    comparison = "0"
    for position in reversed(range(len(ordering))):
        term = ordering[position]
        key, descending, nulls_first = f"k{position}", bool(term.args.get("desc")), bool(term.args.get("nulls_first"))
        before, after = ("1", "-1") if descending else ("-1", "1")
        null_left, null_right = ("-1", "1") if nulls_first else ("1", "-1")
        comparison = (
            f"CASE WHEN __l.{key} IS NULL AND __r.{key} IS NULL THEN {comparison} "
            f"WHEN __l.{key} IS NULL THEN {null_left} WHEN __r.{key} IS NULL THEN {null_right} "
            f"WHEN __l.{key} < __r.{key} THEN {before} WHEN __l.{key} > __r.{key} THEN {after} ELSE {comparison} END"
        )
    return _spark(f"transform(array_sort({{c}}, (__l, __r) -> {comparison}), __e -> __e.v)", c=carrier.copy())


def _frame(node: Any, where: str) -> Any:
    if str(node.args.get("kind") or "").upper() == "GROUPS":
        raise _different(where, "a GROUPS window frame", "Spark has ROWS and RANGE frames only")
    return node


def _star(node: Any, where: str) -> Any:
    if node.args.get("replace"):
        raise _different(where, "SELECT * REPLACE (...)", "Spark SQL has no REPLACE; list the columns")
    return node
