"""The one set of query builders (``server/sources/*_sql.py``, DuckDB's dialect) rendered in Spark SQL.

sqlglot transpiles the syntax (quoting, ``GROUP BY ALL``, ``FILTER``, ``unnest`` → ``explode``, the
default null ordering of each engine made explicit); the rewrites here are the few DuckDB expressions it
renders wrongly or not at all, each checked by the Spark equivalence tests:

- ``strftime(x, '%Y-%m-%dT%H:%M:%SZ')``: Spark's ``date_format`` needs literal text quoted (``'T'``).
- ``list(x ORDER BY x)``: Spark's ``collect_list`` has no ORDER BY; the builders only ever order a list
  by its own value (or a struct by its first field), which ``array_sort`` does.
- ``from_json(x, '{"Elements":[{"Id":"VARCHAR"}]}')``: DuckDB's JSON type description becomes Spark's
  DDL (``struct<Elements:array<struct<Id:string>>>``); amounts stay ``decimal(38,18)``, read exactly.
- ``to_json(x)`` of a scalar: Spark's takes only structs, maps and arrays, so the scalar is written as
  a one-element array and the brackets are cut off.
- ``json_extract_string(Tags, ?)`` with a ``$."key"`` path parameter: Spark's JSON paths spell keys
  differently, so the tag is read as ``from_json(Tags, 'map<string,string>')[key]`` and the parameter
  becomes the key (``Rendered.key_params``).

A query is rendered once per text and kept (the builders produce a few hundred distinct texts).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import sqlglot
from sqlglot import TokenType, exp

_STRFTIME = {"%Y": "yyyy", "%m": "MM", "%d": "dd", "%H": "HH", "%M": "mm", "%S": "ss"}
_DUCKDB = sqlglot.Dialect.get_or_raise("duckdb")
_DUCK_TYPES = {
    "VARCHAR": "string",
    "BIGINT": "bigint",
    "INTEGER": "int",
    "BOOLEAN": "boolean",
    "DOUBLE": "double",
    "TIMESTAMP": "timestamp_ntz",
    "JSON": "string",
}


class UnsupportedQuery(ValueError):
    """A builder produced DuckDB SQL this module has no Spark rendering for (a bug, caught by the tests)."""


@dataclass(frozen=True, slots=True)
class Rendered:
    sql: str
    # Positions of ``?`` parameters that carry a JSON key path (``$."key"``) which Spark reads as the key.
    key_params: frozenset[int]


def spark_time_format(duckdb_format: str) -> str:
    """A DuckDB strftime format as a Spark datetime pattern (literal text quoted)."""
    out: list[str] = []
    literal: list[str] = []
    for token in re.findall(r"%.|[^%]", duckdb_format):
        if token in _STRFTIME:
            if literal:
                out.append("'" + "".join(literal).replace("'", "''") + "'")
                literal = []
            out.append(_STRFTIME[token])
        elif token.startswith("%"):
            raise UnsupportedQuery(f"strftime directive {token} has no Spark rendering")
        elif token in ("-", ":", " ") and not literal:
            out.append(token)  # separators Spark's patterns take as they are
        else:
            literal.append(token)
    if literal:
        out.append("'" + "".join(literal).replace("'", "''") + "'")
    return "".join(out)


def spark_type(duckdb_json_type: Any) -> str:
    """A DuckDB ``from_json`` type description (parsed JSON) as a Spark DDL type."""
    if isinstance(duckdb_json_type, dict):
        return "struct<" + ",".join(f"`{k}`:{spark_type(v)}" for k, v in duckdb_json_type.items()) + ">"
    if isinstance(duckdb_json_type, list) and len(duckdb_json_type) == 1:
        return f"array<{spark_type(duckdb_json_type[0])}>"
    if isinstance(duckdb_json_type, str):
        name = duckdb_json_type.upper()
        if name.startswith("DECIMAL"):
            return name.lower()
        if name in _DUCK_TYPES:
            return _DUCK_TYPES[name]
    raise UnsupportedQuery(f"from_json type {duckdb_json_type!r} has no Spark rendering")


def _sorted_list(node: exp.ArrayAgg) -> exp.Expression:
    order = node.this
    assert isinstance(order, exp.Order)
    value = order.this
    distinct = isinstance(value, exp.Distinct)
    if distinct:
        value = value.expressions[0]
    keys = order.expressions
    first = value.expressions[0].expression if isinstance(value, exp.Struct) else value
    if len(keys) != 1 or keys[0].this != first or keys[0].args.get("desc"):
        raise UnsupportedQuery("list(... ORDER BY ...) is rendered only when ordered by its value or first field")
    collect = exp.Anonymous(this="collect_set" if distinct else "collect_list", expressions=[value])
    return exp.Anonymous(this="array_sort", expressions=[collect])


def _rewrite(node: exp.Expression, key_params: set[str]) -> exp.Expression:
    if isinstance(node, exp.TimeToStr):
        fmt = node.args["format"]
        return exp.Anonymous(
            this="date_format", expressions=[node.this, exp.Literal.string(spark_time_format(fmt.this))]
        )
    if isinstance(node, exp.ArrayAgg) and isinstance(node.this, exp.Order):
        return _sorted_list(node)
    if isinstance(node, exp.FromJson):
        spec = node.expression
        if not isinstance(spec, exp.Literal):
            raise UnsupportedQuery("from_json needs a constant type")
        schema = spark_type(json.loads(spec.this))
        return exp.Anonymous(this="from_json", expressions=[node.this, exp.Literal.string(schema)])
    if isinstance(node, exp.Anonymous) and node.name.lower() == "to_json" and len(node.expressions) == 1:
        array = exp.Anonymous(this="to_json", expressions=[exp.Array(expressions=[node.expressions[0]])])
        return exp.Anonymous(
            this="regexp_extract", expressions=[array, exp.Literal.string(r"^\[(.*)\]$"), exp.Literal.number(1)]
        )
    if isinstance(node, exp.JSONExtractScalar) and isinstance(node.expression, exp.Placeholder):
        key_params.add(str(node.expression.this))
        tags = exp.Anonymous(this="from_json", expressions=[node.this, exp.Literal.string("map<string,string>")])
        return exp.Bracket(this=tags, expressions=[node.expression])
    return node


@lru_cache(maxsize=2048)
def render(duckdb_sql: str) -> Rendered:
    """``duckdb_sql`` (one statement, ``?`` parameters) in Spark SQL, its parameters named ``:p0``, ``:p1``…
    in the order the ``?`` appear (so a rewrite that moves an expression cannot misbind a value)."""
    try:
        tokens = _DUCKDB.tokenize(duckdb_sql)
        text, last = [], 0
        for i, start in enumerate(t.start for t in tokens if t.token_type is TokenType.PLACEHOLDER):
            text += [duckdb_sql[last:start], f"$p{i}"]
            last = start + 1
        tree = sqlglot.parse_one("".join([*text, duckdb_sql[last:]]), read="duckdb")
    except sqlglot.errors.SqlglotError as exc:
        raise UnsupportedQuery(f"could not read the query: {exc}") from exc
    key_params: set[str] = set()
    tree = tree.transform(lambda n: _rewrite(n, key_params), copy=False)
    return Rendered(tree.sql(dialect="spark"), frozenset(int(k[1:]) for k in key_params))


def json_key_of_path(path: str) -> str:
    """The key of a ``$."key"`` path (``server.sources.sql.json_key_path``), for Spark's map lookup."""
    if not (path.startswith('$."') and path.endswith('"')):
        raise UnsupportedQuery(f"JSON path {path!r} is not a single quoted key")
    return path[3:-1].replace('\\"', '"').replace("\\\\", "\\")
