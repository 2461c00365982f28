"""XRPC query lexicons: parameter parsing from query strings and output validation
(https://atproto.com/specs/lexicon#query-and-procedure-http-api, https://atproto.com/specs/xrpc).

``load_queries(lexicons)`` compiles every ``type: query`` def; ``parse_params`` turns query-string pairs
into typed values the way the reference server does (``@atproto/lex-schema`` ``fromURLSearchParams``):

* empty values (``?limit=``) count as absent; parameters the lexicon does not define are ignored;
* arrays are repeated keys (``?uris=a&uris=b``); a scalar given twice is an error;
* integers are ``-?[0-9]+``, booleans exactly ``true``/``false``; then the lexicon's constraints apply
  (minimum/maximum, maxLength, formats, enum/const; ``knownValues`` are advisory, as for records);
* defaults are applied, missing ``required`` parameters are an error.

Beyond the reference: a NUL character (which Postgres text cannot hold) is refused in any parameter.
``validate_output`` checks a JSON body against ``output.schema`` (refs across files, unions, formats).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal
from urllib.parse import parse_qsl

from core.lexicon import LexiconSet, Schema, Validator

ParamType = Literal["boolean", "integer", "string"]
_SCALARS: Final = frozenset({"boolean", "integer", "string"})
_INT = re.compile(r"-?[0-9]{1,19}")  # anything longer is out of 64-bit range anyway
_MAX_VALUES: Final = 1000  # repeated keys per array parameter, before lexicon limits apply
_MAX_FIELDS: Final = 2000


class ParamError(ValueError):
    """A request's parameters do not satisfy the method's lexicon; the message names the parameter."""


@dataclass(frozen=True, slots=True)
class Param:
    name: str
    type: ParamType
    array: bool
    required: bool
    default: Any
    schema: Schema  # the lexicon property, for docs (OpenAPI)
    check: Validator


@dataclass(frozen=True, slots=True)
class QueryMethod:
    nsid: str
    description: str
    params: Mapping[str, Param]
    output_encoding: str | None
    output_schema: Schema | None
    output: Validator | None  # None: no JSON schema to check against
    errors: tuple[str, ...]


def _at(name: str, err: str) -> str:
    return name + err if err[0] in ":[" else f"{name}.{err}"


def _param(lexicons: LexiconSet, nsid: str, name: str, prop: Schema, required: bool) -> Param:
    kind = prop.get("type")
    item = prop.get("items", {}) if kind == "array" else prop
    if item.get("type") not in _SCALARS:
        raise ValueError(f"{nsid}: parameter {name!r} has unsupported type {kind!r} (boolean, integer, string "
                         "or an array of those)")
    return Param(name=name, type=item["type"], array=kind == "array", required=required,
                 default=prop.get("default"), schema=prop, check=lexicons.compile(prop, nsid))


def _query(lexicons: LexiconSet, nsid: str, d: Schema) -> QueryMethod:
    params_def = d.get("parameters") or {"type": "params", "properties": {}}
    if params_def.get("type") != "params":
        raise ValueError(f"{nsid}: parameters must be of type 'params'")
    props: Mapping[str, Schema] = params_def.get("properties", {})
    required = frozenset(params_def.get("required", ()))
    if unknown := required - props.keys():
        raise ValueError(f"{nsid}: required parameters {sorted(unknown)} are not defined")
    params = {k: _param(lexicons, nsid, k, p, k in required) for k, p in props.items()}
    out = d.get("output") or {}
    schema = out.get("schema")
    validator = lexicons.compile(schema, nsid) if schema is not None else None
    errors = tuple(e["name"] for e in d.get("errors", ()) if isinstance(e, dict) and "name" in e)
    return QueryMethod(nsid=nsid, description=d.get("description", ""), params=params,
                       output_encoding=out.get("encoding"), output_schema=schema, output=validator, errors=errors)


def load_queries(lexicons: LexiconSet) -> dict[str, QueryMethod]:
    """Every ``type: query`` main def in ``lexicons``, compiled; raises ValueError for a bad lexicon."""
    return {nsid: _query(lexicons, nsid, doc["defs"]["main"])
            for nsid, doc in lexicons.documents.items()
            if doc.get("defs", {}).get("main", {}).get("type") == "query"}  # fmt: skip


def _coerce(p: Param, raw: str) -> bool | int | str:
    if "\x00" in raw:
        raise ParamError(f"{p.name}: must not contain NUL characters")
    if p.type == "string":
        return raw
    if p.type == "integer":
        if _INT.fullmatch(raw) is None:
            raise ParamError(f"{p.name}: expected an integer, got {raw[:32]!r}")
        return int(raw)
    if raw in ("true", "false"):
        return raw == "true"
    raise ParamError(f"{p.name}: expected true or false, got {raw[:32]!r}")


def query_pairs(query_string: bytes) -> list[tuple[str, str]]:
    """Decoded ``(name, value)`` pairs of a raw query string (UTF-8, ``+`` is a space); raises ParamError."""
    try:
        return parse_qsl(query_string.decode("utf-8"), keep_blank_values=True, encoding="utf-8",
                         errors="strict", max_num_fields=_MAX_FIELDS)
    except UnicodeDecodeError:
        raise ParamError("query string is not valid UTF-8") from None
    except ValueError:
        raise ParamError(f"query string has more than {_MAX_FIELDS} fields") from None


def parse_params(method: QueryMethod, pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """Typed parameters (defaults applied) from decoded query-string pairs; raises ParamError."""
    values: dict[str, Any] = {}
    for name, raw in pairs:
        p = method.params.get(name)
        if p is None or raw == "":
            continue
        value = _coerce(p, raw)
        if p.array:
            bucket = values.setdefault(name, [])
            if len(bucket) >= _MAX_VALUES:
                raise ParamError(f"{name}: more than {_MAX_VALUES} values")
            bucket.append(value)
        elif name in values:
            raise ParamError(f"{name}: expected a single value, got several")
        else:
            values[name] = value
    for name, p in method.params.items():
        if name not in values:
            if p.default is not None:
                values[name] = p.default
            elif p.required:
                raise ParamError(f"{name}: missing required parameter")
            continue
        if (err := p.check(values[name])) is not None:
            raise ParamError(_at(name, err))
    return values


def validate_output(method: QueryMethod, body: object) -> str | None:
    """None if ``body`` matches the method's output schema (or it has none), else where it does not."""
    if method.output is None:
        return None
    try:
        err = method.output(body)
    except RecursionError:
        return "output nested too deeply"
    if err is None:
        return None
    return "output" + err if err[0] in ":[" else err
