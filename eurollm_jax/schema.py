"""Typed, validated config sections: one mechanism for every job's settings.

A section is a frozen dataclass deriving from ``Section``; its fields and defaults are the
one definition of that part of the schema. ``Section.from_mapping(values, path)`` builds
it from a dict or an ml_collections ``ConfigDict`` (what config files and
``--config.section.field=value`` overrides produce), coercing values to the field types
and failing with an error that names the field (``train.batch_size: expected int, got
'eight'``); an unknown key is an error that names the nearest valid key. Each section
checks its own values in ``check()``; cross-section checks live in the job's config.
``to_dict()`` gives plain values back (JSON, ConfigDict defaults for config files).

Field types understood: int, float, bool, str, tuple[...] (from lists), dict (from
ConfigDicts), ``X | None``, and nested ``Section`` types.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from typing import Any, Mapping


class ConfigError(ValueError):
    """A config value that cannot work; the message names the field and how to fix it."""


def plain(value: Any) -> Any:
    """ConfigDicts, mappings, sections -> plain dicts (JSON-ready). Tuples stay tuples: a
    ConfigDict default must be a tuple for ``--config.x='(a, b)'`` overrides to work."""
    if hasattr(value, "to_dict"):
        value = value.to_dict()
    if isinstance(value, Section):
        return value.to_dict()
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return tuple(plain(v) for v in value)
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def nearest_key(key: str, valid) -> str:
    """'; did you mean "x"?' for the closest valid key, or ''."""
    close = difflib.get_close_matches(key, list(valid), n=1, cutoff=0.6)
    return f'; did you mean "{close[0]}"?' if close else ""


def _coerce(value: Any, tp: Any, path: str) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, path)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(errors[0] if errors else f"{path}: bad value {value!r}")
    if isinstance(tp, type) and issubclass(tp, Section):
        return tp.from_mapping(value, path)
    if tp is Any:
        return plain(value)
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0"):
            return value.lower() in ("true", "1")
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        raise ConfigError(f"{path}: expected true/false, got {value!r}")
    if tp is int:
        if isinstance(value, bool):
            raise ConfigError(f"{path}: expected an integer, got {value!r}")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value)
            except ValueError:
                pass
        raise ConfigError(f"{path}: expected an integer, got {value!r}")
    if tp is float:
        if isinstance(value, bool):
            raise ConfigError(f"{path}: expected a number, got {value!r}")
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{path}: expected a number, got {value!r}") from None
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{path}: expected a string, got {value!r}")
        return value
    if origin is tuple:
        args = typing.get_args(tp)
        if isinstance(value, str):
            value = [value] if value else []
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{path}: expected a list, got {value!r}")
        item = args[0] if args else Any
        return tuple(_coerce(v, item, f"{path}[{i}]") for i, v in enumerate(value))
    if tp is dict or origin is dict:
        value = plain(value)
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: expected a mapping, got {value!r}")
        return value
    return value


@dataclasses.dataclass(frozen=True)
class Section:
    """Base class of config sections (see the module docstring)."""

    @classmethod
    def from_mapping(cls, values: Any = None, path: str = ""):
        values = {} if values is None else plain(values)
        if not isinstance(values, Mapping):
            raise ConfigError(f"{path or cls.__name__}: expected a section, got {values!r}")
        hints = typing.get_type_hints(cls)
        fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
        unknown = [k for k in values if k not in fields]
        if unknown:
            k = unknown[0]
            raise ConfigError(
                f"{path + '.' if path else ''}{k}: unknown key{nearest_key(k, fields)} "
                f"(valid keys: {', '.join(sorted(fields))})"
            )
        kwargs = {}
        for name in fields:
            if name in values:
                kwargs[name] = _coerce(values[name], hints[name], f"{path}.{name}" if path else name)
        try:
            section = cls(**kwargs)
        except ConfigError:
            raise
        except (TypeError, ValueError) as e:
            raise ConfigError(f"{path or cls.__name__}: {e}") from e
        section.check(path or cls.__name__)
        return section

    def check(self, path: str) -> None:
        """Raise ConfigError naming ``path.field`` for a value that cannot work."""

    def to_dict(self) -> dict:
        out = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            out[f.name] = value.to_dict() if isinstance(value, Section) else plain(value)
        return out

    def require(self, path: str, ok: bool, field: str, message: str) -> None:
        if not ok:
            raise ConfigError(f"{path}.{field}: {message}")

    def require_choice(self, path: str, field: str, choices) -> None:
        """``field`` must be one of ``choices``; the error names the nearest one."""
        value = getattr(self, field)
        self.require(path, value in choices, field, f"{value!r} is not one of "
                     f"{', '.join(map(str, choices))}{nearest_key(str(value), choices)}")
