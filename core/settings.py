"""Settings both processes share, from environment variables only, checked at start.

Every setting has a range or a shape (`core.settings_checks`); `load_settings` turns a bad value into
`SettingsError`, one line per bad variable naming it and what is allowed, which the CLI prints
before exiting with status 2 (never a traceback, never a retry loop on a value that cannot work).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar, get_args, get_origin

from annotated_types import Ge, Gt, Le, Lt
from pydantic import AfterValidator, BeforeValidator, Field, ValidationError
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, SettingsConfigDict

from core.logs import LogFormat
from core.settings_checks import blank_is_none, check_database_url, lower, not_blank

LogLevel = Literal["debug", "info", "warning", "error", "critical"]
# Values never echoed in an error message.
SECRET: dict[str, Any] = {"secret": True}
_MAX_SHOWN = 60


class CoreSettings(BaseSettings):
    # No inf/nan anywhere: a timeout of "inf" or "nan" is never what someone meant.
    model_config = SettingsConfigDict(env_prefix="", extra="ignore", allow_inf_nan=False)

    database_url: Annotated[str | None, BeforeValidator(blank_is_none), AfterValidator(check_database_url)] = Field(
        default=None, description="Postgres URL; unset = embedded Postgres", json_schema_extra=SECRET)
    data_dir: Annotated[Path, BeforeValidator(not_blank)] = Field(default=Path("data"),
                                                                 validation_alias="APPVIEW_DATA_DIR")
    log_format: Annotated[LogFormat, BeforeValidator(lower)] = "auto"
    log_level: Annotated[LogLevel, BeforeValidator(lower)] = "info"
    # false where a separate job migrates (compose's `migrate` service, a Kubernetes Job): then every other
    # command only waits up to MIGRATE_WAIT_S for the schema to reach this build's head, and exits 2 if not.
    migrate_on_start: bool = True
    migrate_wait_s: float = Field(default=300.0, gt=0, le=86400)


class SettingsError(Exception):
    """Bad configuration: `str()` is one line per bad environment variable."""


S = TypeVar("S", bound=BaseSettings)


def load_settings(cls: type[S], **overrides: Any) -> S:
    """`cls()` from the environment (and `overrides`), or SettingsError naming each bad variable."""
    try:
        return cls(**overrides)
    except ValidationError as e:
        raise SettingsError("\n".join(describe_errors(cls, e))) from None


def env_name(cls: type[BaseSettings], field: str) -> str:
    info = cls.model_fields.get(field)
    alias = info.validation_alias if info is not None else None
    return alias.upper() if isinstance(alias, str) else field.upper()


def describe_errors(cls: type[BaseSettings], error: ValidationError) -> list[str]:
    lines: dict[str, str] = {}
    for err in error.errors(include_url=False):
        loc = err.get("loc") or ("?",)
        field = str(loc[0])
        info = cls.model_fields.get(field)
        name = env_name(cls, field)
        if name in lines:
            continue
        secret = info is not None and isinstance(info.json_schema_extra, dict) and \
            info.json_schema_extra.get("secret") is True
        value = "" if secret else f"={_shown(err.get('input'))}"
        if err.get("type") == "value_error":
            why = str(err.get("ctx", {}).get("error", err.get("msg", "")))
        else:
            why = f"must be {allowed(info)}" if info is not None else str(err.get("msg", ""))
        lines[name] = f"invalid setting {name}{value}: {why}"
    return list(lines.values())


def _shown(value: Any) -> str:
    text = repr(value if isinstance(value, str) else str(value))
    return text if len(text) <= _MAX_SHOWN else text[:_MAX_SHOWN] + "…'"


def allowed(info: FieldInfo) -> str:
    """What a field accepts, in words (from its type and its bounds)."""
    kind = _base_type(info.annotation)
    if get_origin(kind) is Literal:
        return "one of " + ", ".join(str(a) for a in get_args(kind))
    if kind is bool:
        return "true or false"
    bounds = [m for m in info.metadata if isinstance(m, Ge | Gt | Le | Lt)]
    for arg in get_args(info.annotation):  # Optional[Annotated[int, Field(ge=…)]]
        bounds += [m for m in getattr(arg, "__metadata__", ()) if isinstance(m, Ge | Gt | Le | Lt)]
        for m in getattr(arg, "__metadata__", ()):
            bounds += [x for x in getattr(m, "metadata", ()) if isinstance(x, Ge | Gt | Le | Lt)]
    words = {Ge: "≥", Gt: ">", Le: "≤", Lt: "<"}
    parts = [f"{words[type(b)]} {_num(_bound(b))}" for b in bounds]
    noun = "an integer" if kind is int else "a number" if kind is float else "a value"
    ge = next((_bound(b) for b in bounds if isinstance(b, Ge)), None)
    le = next((_bound(b) for b in bounds if isinstance(b, Le)), None)
    if kind is int and ge is not None and le is not None:
        text = f"an integer from {_num(ge)} to {_num(le)}"
    else:
        text = noun + (" " + " and ".join(parts) if parts else "")
    return text + (" (or empty for unset)" if _optional(info.annotation) else "")


def _bound(b: Ge | Gt | Le | Lt) -> Any:
    return b.ge if isinstance(b, Ge) else b.gt if isinstance(b, Gt) else b.le if isinstance(b, Le) else b.lt


def _num(x: Any) -> str:
    if isinstance(x, float) and math.isfinite(x) and x.is_integer():
        return str(int(x))
    return str(x)


def _optional(annotation: Any) -> bool:
    return type(None) in get_args(annotation)


def _base_type(annotation: Any) -> Any:
    if get_origin(annotation) is Annotated:
        return _base_type(get_args(annotation)[0])
    args = [a for a in get_args(annotation) if a is not type(None)]
    if args and type(None) in get_args(annotation):
        return _base_type(args[0])
    return annotation
