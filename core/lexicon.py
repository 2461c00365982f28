"""Lexicon loading and record validation (https://atproto.com/specs/lexicon).

``LexiconSet.load(root)`` reads every ``*.json`` lexicon under ``root`` once and compiles each def
into a closure; ``validate_record`` then returns ``None`` (valid) or a short reason such as
``"title: string longer than maxLength 256 bytes"``. It never raises on any input value.

Semantics: string ``maxLength``/``minLength`` count UTF-8 bytes, ``*Graphemes`` count extended
grapheme clusters; ``enum``/``const`` are enforced, ``knownValues`` are not; unions are open unless
``closed``; unknown fields are ignored but must still be valid atproto data model (no floats
anywhere, 64-bit ints, well-formed ``$link``/``$bytes``/blob objects, non-empty ``$type``).
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Final

import regex

from core import syntax

TRACK: Final = "fm.plyr.track"
LIKE: Final = "fm.plyr.like"
COMMENT: Final = "fm.plyr.comment"
LIST: Final = "fm.plyr.list"
PROFILE: Final = "fm.plyr.actor.profile"
PLYR_COLLECTIONS: Final = frozenset({TRACK, LIKE, COMMENT, LIST, PROFILE})
# teal.fm records (vendored in lexicons/fm/teal/, both the alpha and the current namespace).
TEAL_COLLECTIONS: Final = frozenset(
    f"fm.teal.{ns}{name}" for ns in ("", "alpha.")
    for name in ("feed.play", "actor.status", "actor.profile", "actor.profileStatus")
)
# The account's own Bluesky profile, indexed for the accounts we track (vendored in lexicons/app/bsky/actor/).
BSKY_COLLECTIONS: Final = frozenset({"app.bsky.actor.profile"})
# Beside `core/`: the repository's folder in a checkout or an editable install, the copy shipped as package
# data (pyproject `package-data`) in a wheel.
LEXICON_DIR: Final = Path(__file__).resolve().parent.parent / "lexicons"
MAX_DEPTH: Final = 128  # nesting limit for free-form (unknown / open-union) values

# A validator returns None or an error; errors of the value itself start with ": ", errors of a
# child start with its path ("title: ...", "[0].did: ...").
Validator = Callable[[Any], "str | None"]
Schema = Mapping[str, Any]

# The few external defs our lexicons reference, trimmed to what validation needs.
BUILTIN_LEXICONS: Final[tuple[dict[str, Any], ...]] = (
    {"lexicon": 1, "id": "com.atproto.repo.strongRef", "defs": {"main": {
        "type": "object", "required": ["uri", "cid"], "properties": {
            "uri": {"type": "string", "format": "at-uri"}, "cid": {"type": "string", "format": "cid"}}}}},
    {"lexicon": 1, "id": "com.atproto.label.defs", "defs": {
        "selfLabels": {"type": "object", "required": ["values"], "properties": {
            "values": {"type": "array", "items": {"type": "ref", "ref": "#selfLabel"}, "maxLength": 10}}},
        "selfLabel": {"type": "object", "required": ["val"], "properties": {
            "val": {"type": "string", "maxLength": 128}}},
        "label": {"type": "object", "required": ["src", "uri", "val", "cts"], "properties": {
            "ver": {"type": "integer"}, "src": {"type": "string", "format": "did"},
            "uri": {"type": "string", "format": "uri"}, "cid": {"type": "string", "format": "cid"},
            "val": {"type": "string", "maxLength": 128}, "neg": {"type": "boolean"},
            "cts": {"type": "string", "format": "datetime"}, "exp": {"type": "string", "format": "datetime"},
            "sig": {"type": "bytes"}}}}},
)  # fmt: skip
_FORMATS: Final[dict[str, Callable[[str], bool]]] = {
    "did": syntax.is_did, "handle": syntax.is_handle, "at-identifier": syntax.is_at_identifier,
    "nsid": syntax.is_nsid, "at-uri": syntax.is_at_uri, "tid": syntax.is_tid,
    "record-key": syntax.is_record_key, "datetime": syntax.is_datetime, "uri": syntax.is_uri,
    "cid": syntax.is_cid, "language": syntax.is_language,
}  # fmt: skip
# Compilable def types ("record" defs are unwrapped by _Compiler.ref).
_KINDS: Final = frozenset("object ref union string integer boolean array blob bytes cid-link unknown".split())
_KEY_CHECKS: Final = {"tid": syntax.is_tid, "nsid": syntax.is_nsid, "any": syntax.is_record_key}
_GRAPHEME = regex.compile(r"\X")
_BASE64 = re.compile(r"[A-Za-z0-9+/]*={0,2}")
_INT_MIN, _INT_MAX = -(2**63), 2**63 - 1
_TYPE_NAMES = {type(None): "null", bool: "boolean", int: "integer", float: "float", str: "string",
               list: "array", dict: "object"}  # fmt: skip


def _tname(v: object) -> str:
    return _TYPE_NAMES.get(type(v), type(v).__name__)


def _at(prefix: str, err: str) -> str:
    return prefix + err if err[0] in ":[" else f"{prefix}.{err}"


def _q(s: object) -> str:
    return repr(s[:64] if isinstance(s, str) else s)


def _utf8_len(v: str) -> int | None:
    """UTF-8 byte length, or None for strings with lone surrogates (not valid Unicode)."""
    if v.isascii():
        return len(v)
    try:
        return len(v.encode())
    except UnicodeEncodeError:
        return None


def _bytes_len(v: object) -> int | None:
    """Decoded length of a valid base64 (padding optional) ``$bytes`` string, else None."""
    if type(v) is not str or _BASE64.fullmatch(v) is None:
        return None
    n = len(v.rstrip("="))
    return None if n % 4 == 1 else n * 3 // 4


def _blob_error(v: dict[str, Any]) -> str | None:
    """Blob shape: ``{$type: blob, ref: {$link}, mimeType, size}`` or legacy ``{cid, mimeType}``."""
    if "$type" in v:
        ref, size = v.get("ref"), v.get("size")
        if v["$type"] != "blob" or type(ref) is not dict or not syntax.is_cid(ref.get("$link")):
            return ": invalid blob (needs $type 'blob' and ref {$link: cid})"
        if type(size) is not int or size < 0:
            return ": invalid blob size"
    elif not syntax.is_cid(v.get("cid")):
        return ": invalid blob (no $type/ref, nor a legacy cid)"
    mime = v.get("mimeType")
    return None if type(mime) is str and mime else ": invalid blob mimeType"


def check_data_model(v: Any, depth: int = 0) -> str | None:
    """None if a free-form value is valid atproto data model (https://atproto.com/specs/data-model)."""
    t = type(v)
    if t is str:
        return None if _utf8_len(v) is not None else ": string is not valid unicode"
    if t is int:
        return None if _INT_MIN <= v <= _INT_MAX else ": integer out of 64-bit range"
    if t is bool or v is None:
        return None
    if t is float:
        return ": float values are not allowed"
    if t is not list and t is not dict:
        return f": unsupported value type {t.__name__}"
    if depth >= MAX_DEPTH:
        return f": value nested deeper than {MAX_DEPTH}"
    if t is list:
        for i, x in enumerate(v):
            if (err := check_data_model(x, depth + 1)) is not None:
                return _at(f"[{i}]", err)
        return None
    if "$link" in v:
        return None if len(v) == 1 and syntax.is_cid(v["$link"]) else ": invalid $link object"
    if "$bytes" in v:
        return None if len(v) == 1 and _bytes_len(v["$bytes"]) is not None else ": invalid $bytes object"
    if "$type" in v:
        if type(v["$type"]) is not str or not v["$type"]:
            return "$type: must be a non-empty string"
        if v["$type"] == "blob" and (err := _blob_error(v)) is not None:
            return err
    for k, x in v.items():
        if type(k) is not str:
            return ": object keys must be strings"
        if (err := check_data_model(x, depth + 1)) is not None:
            return _at(k, err)
    return None


def _norm_ref(ref: str, nsid: str) -> str:
    full = nsid + ref if ref.startswith("#") else ref
    return full[:-5] if full.endswith("#main") else full


class _Compiler:
    """Turns lexicon schemas into validator closures; refs are looked up at call time (recursion-safe)."""

    def __init__(self, defs: dict[str, tuple[str, Schema]]) -> None:
        self.defs = defs  # normalised ref ("nsid" for main, else "nsid#name") -> (nsid, schema)
        self.compiled: dict[str, Validator] = {}

    def ref(self, name: str) -> Validator:
        if name not in self.compiled:
            if name not in self.defs:
                raise ValueError(f"unresolvable lexicon ref {name!r}")
            nsid, schema = self.defs[name]
            self.compiled[name] = self.compile(schema["record"] if "record" in schema else schema, nsid)
        return self.compiled[name]

    def compile(self, s: Schema, nsid: str) -> Validator:
        if (kind := s.get("type")) not in _KINDS:
            raise ValueError(f"{nsid}: unsupported lexicon type {kind!r}")
        make: Callable[[Schema, str], Validator] = getattr(self, "_" + kind.replace("-", "_"))
        return make(s, nsid)

    def _object(self, s: Schema, nsid: str) -> Validator:
        props = {k: self.compile(p, nsid) for k, p in s.get("properties", {}).items()}
        required, nullable = tuple(s.get("required", ())), frozenset(s.get("nullable", ()))

        def check(v: Any) -> str | None:
            if type(v) is not dict:
                return ": expected object, got " + _tname(v)
            for k in required:
                if k not in v:
                    return f"{k}: missing required field"
            for k, x in v.items():
                if (f := props.get(k)) is not None:
                    err = None if x is None and k in nullable else f(x)
                elif type(k) is not str:
                    return ": object keys must be strings"
                elif k == "$type":
                    err = None if type(x) is str and x else ": must be a non-empty string"
                else:  # unknown field: ignored, but must be valid data model
                    err = check_data_model(x)
                if err is not None:
                    return _at(k, err)
            return None

        return check

    def _ref(self, s: Schema, nsid: str) -> Validator:
        name, compiled = _norm_ref(s["ref"], nsid), self.compiled
        if name not in self.defs:
            raise ValueError(f"{nsid}: unresolvable lexicon ref {name!r}")
        return lambda v: compiled[name](v)

    def _union(self, s: Schema, nsid: str) -> Validator:
        refs = frozenset(_norm_ref(r, nsid) for r in s.get("refs", ()))
        known, closed, compiled = refs & self.defs.keys(), bool(s.get("closed")), self.compiled

        def check(v: Any) -> str | None:
            if type(v) is not dict:
                return ": expected object (union), got " + _tname(v)
            t = v.get("$type")
            if type(t) is not str or not t:
                return ": union value has no $type"
            name = t[:-5] if t.endswith("#main") else t
            if name in known:
                return compiled[name](v)
            if closed and name not in refs:
                return f": $type {_q(t)} is not allowed in this closed union"
            return check_data_model(v)  # open union: unknown type accepted as plain data

        return check

    def _string(self, s: Schema, nsid: str) -> Validator:
        max_len, min_len = s.get("maxLength"), s.get("minLength", 0)
        max_g, min_g = s.get("maxGraphemes"), s.get("minGraphemes", 0)
        fmt, const, enum = s.get("format"), s.get("const"), s.get("enum")
        fmt_ok = _FORMATS.get(fmt) if fmt else None  # unknown (future) formats are not checked
        choices = frozenset(enum) if enum is not None else None

        def check(v: Any) -> str | None:
            if type(v) is not str:
                return ": expected string, got " + _tname(v)
            if (n := _utf8_len(v)) is None:
                return ": string is not valid unicode"
            if max_len is not None and n > max_len:
                return f": string longer than maxLength {max_len} bytes"
            if n < min_len:
                return f": string shorter than minLength {min_len} bytes"
            if (max_g is not None and len(v) > max_g) or min_g:  # graphemes <= code points
                g = len(_GRAPHEME.findall(v))
                if max_g is not None and g > max_g:
                    return f": string longer than maxGraphemes {max_g} graphemes"
                if g < min_g:
                    return f": string shorter than minGraphemes {min_g} graphemes"
            if fmt_ok is not None and not fmt_ok(v):
                return f": invalid {fmt} {_q(v)}"
            if choices is not None and v not in choices:
                return f": {_q(v)} is not one of the enum values"
            return f": must be {const!r}" if const is not None and v != const else None

        return check

    def _integer(self, s: Schema, nsid: str) -> Validator:
        lo, hi = max(s.get("minimum", _INT_MIN), _INT_MIN), min(s.get("maximum", _INT_MAX), _INT_MAX)
        const, enum = s.get("const"), s.get("enum")
        choices = frozenset(enum) if enum is not None else None

        def check(v: Any) -> str | None:
            if type(v) is not int:
                return ": expected integer, got " + _tname(v)
            if not lo <= v <= hi:
                return f": integer {v} out of range [{lo}, {hi}]"
            if choices is not None and v not in choices:
                return f": integer {v} is not one of the enum values"
            return f": must be {const}" if const is not None and v != const else None

        return check

    def _boolean(self, s: Schema, nsid: str) -> Validator:
        const = s.get("const")
        return lambda v: (": expected boolean, got " + _tname(v)) if type(v) is not bool else (
            f": must be {str(const).lower()}" if const is not None and v is not const else None)  # fmt: skip

    def _array(self, s: Schema, nsid: str) -> Validator:
        item, max_len, min_len = self.compile(s["items"], nsid), s.get("maxLength"), s.get("minLength", 0)

        def check(v: Any) -> str | None:
            if type(v) is not list:
                return ": expected array, got " + _tname(v)
            if max_len is not None and len(v) > max_len:
                return f": array longer than maxLength {max_len}"
            if len(v) < min_len:
                return f": array shorter than minLength {min_len}"
            for i, x in enumerate(v):
                if (err := item(x)) is not None:
                    return _at(f"[{i}]", err)
            return None

        return check

    def _blob(self, s: Schema, nsid: str) -> Validator:
        accept: list[str] | None = s.get("accept")
        max_size = s.get("maxSize")

        def check(v: Any) -> str | None:
            if type(v) is not dict:
                return ": expected blob, got " + _tname(v)
            if (err := _blob_error(v)) is not None:
                return err
            mime, size = v["mimeType"], v.get("size")
            if accept is not None and not any(
                a == "*/*" or a == mime or (a.endswith("/*") and mime.startswith(a[:-1])) for a in accept
            ):
                return f": blob mimeType {_q(mime)} not accepted ({', '.join(accept)})"
            if max_size is not None and type(size) is int and size > max_size:
                return f": blob size {size} exceeds maxSize {max_size}"
            return None

        return check

    def _bytes(self, s: Schema, nsid: str) -> Validator:
        max_len, min_len = s.get("maxLength"), s.get("minLength", 0)

        def check(v: Any) -> str | None:
            n = _bytes_len(v.get("$bytes")) if type(v) is dict and len(v) == 1 else None
            if n is None:
                return ": expected bytes ({$bytes: base64})"
            if max_len is not None and n > max_len:
                return f": bytes longer than maxLength {max_len}"
            return f": bytes shorter than minLength {min_len}" if n < min_len else None

        return check

    def _cid_link(self, s: Schema, nsid: str) -> Validator:
        return lambda v: None if type(v) is dict and len(v) == 1 and syntax.is_cid(v.get("$link")) else (
            ": expected cid-link ({$link: cid})")  # fmt: skip

    def _unknown(self, s: Schema, nsid: str) -> Validator:
        def check(v: Any) -> str | None:
            if type(v) is not dict or "$bytes" in v or "$link" in v or v.get("$type") == "blob":
                return ": expected an object (unknown), got " + _tname(v)
            return check_data_model(v)

        return check


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ValueError(f"lexicon file {path}: {e}") from e


class LexiconsMissing(RuntimeError):
    """The lexicon folder is absent or holds no lexicon: refusing to start beats rejecting every record."""


class LexiconSet:
    """Compiled record validators for a set of lexicon documents (plus ``BUILTIN_LEXICONS``)."""

    def __init__(self, documents: Iterable[Mapping[str, Any]]) -> None:
        docs: dict[str, Mapping[str, Any]] = {b["id"]: b for b in BUILTIN_LEXICONS}
        seen: set[str] = set()
        for doc in documents:
            nsid = doc.get("id")
            if not isinstance(nsid, str) or not syntax.is_nsid(nsid) or nsid in seen:
                raise ValueError(f"lexicon with missing, invalid or duplicate id: {nsid!r}")
            seen.add(nsid)
            docs[nsid] = doc  # a provided document overrides a built-in one
        defs = {_norm_ref(f"{nsid}#{name}", nsid): (nsid, d)
                for nsid, doc in docs.items() for name, d in doc.get("defs", {}).items()}  # fmt: skip
        for nsid, doc in docs.items():  # a query's output schema, addressable as "<nsid>#output"
            main = doc.get("defs", {}).get("main", {})
            schema = main.get("output", {}).get("schema") if main.get("type") in ("query", "procedure") else None
            if isinstance(schema, dict):
                defs[f"{nsid}#output"] = (nsid, schema)
        compiler = _Compiler(defs)
        self._compiler = compiler
        self._records: dict[str, tuple[str, Validator]] = {}
        for name, (_, d) in defs.items():  # compile all data defs now, so bad lexicons fail at load
            if d.get("type") in _KINDS or d.get("type") == "record":
                compiler.ref(name)
            if d.get("type") == "record":
                key = d.get("key", "any")
                if key not in _KEY_CHECKS and not str(key).startswith("literal:"):
                    raise ValueError(f"{name}: unsupported record key type {key!r}")
                self._records[name] = (key, compiler.ref(name))
        self.documents: Mapping[str, Mapping[str, Any]] = docs

    @classmethod
    def load(cls, *roots: Path) -> LexiconSet:
        """Load every lexicon ``*.json`` under ``roots`` (paths mirror NSIDs: ``fm/plyr/track.json``).
        Raises LexiconsMissing, naming the path, for a root that is not a folder or holds no lexicon."""
        docs: list[dict[str, Any]] = []
        for root in roots:
            if not Path(root).is_dir():
                raise LexiconsMissing(f"lexicon folder {root} does not exist (a non-editable install without "
                                      "its package data?)")
            found = [d for p in sorted(Path(root).rglob("*.json"))
                     if isinstance(d := _read_json(p), dict) and "lexicon" in d]
            if not found:
                raise LexiconsMissing(f"lexicon folder {root} holds no lexicon documents")
            docs.extend(found)
        return cls(docs)

    def compile(self, schema: Schema, nsid: str) -> Validator:
        """A validator for an inline schema of document ``nsid`` (its ``#refs`` resolve there); raises
        ValueError for unsupported types or unresolvable refs. Errors read ``": …"`` or ``"path: …"``."""
        return self._compiler.compile(schema, nsid)

    @property
    def collections(self) -> frozenset[str]:
        return frozenset(self._records)

    def record_key_type(self, collection: str) -> str | None:
        """The lexicon's ``key`` (``tid``, ``literal:self``, ``nsid``, ``any``), None if unknown."""
        entry = self._records.get(collection)
        return entry[0] if entry else None

    def validate_record(self, collection: str, rkey: str, record: object) -> str | None:
        """None if ``record`` is a valid ``collection`` record stored under ``rkey``, else why not."""
        entry = self._records.get(collection)
        if entry is None:
            return "unknown collection"
        key, check = entry
        if type(record) is not dict:
            return "record must be an object, got " + _tname(record)
        if (rtype := record.get("$type")) != collection:
            if rtype is None:
                return "record has no $type"
            return f"$type {_q(rtype)} does not match collection {_q(collection)}"
        if key.startswith("literal:"):
            if rkey != key[8:]:
                return f"rkey {_q(rkey)} is not {_q(key[8:])} ({key})"
        elif not syntax.is_record_key(rkey) or not _KEY_CHECKS[key](rkey):
            return f"rkey {_q(rkey)} is not a valid {'record key' if key == 'any' else key}"
        try:
            err = check(record)
        except RecursionError:
            return "record nested too deeply"
        return None if err is None else err[2:] if err.startswith(": ") else err


    def validate_output(self, nsid: str, value: object) -> str | None:
        """None if ``value`` is a valid output of the query ``nsid``, else why not."""
        try:
            check = self._compiler.ref(f"{nsid}#output")
        except (KeyError, ValueError):
            return f"no output schema for {nsid}"
        err = check(value)
        return None if err is None else err[2:] if err.startswith(": ") else err


@functools.cache
def default_lexicons() -> LexiconSet:
    """The repo's ``lexicons/`` directory, loaded once per process."""
    return LexiconSet.load(LEXICON_DIR)
