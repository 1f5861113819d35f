"""Configuration values checked against the type annotations of the config dataclasses.

Every key of a config file, a flag or an override is checked here before anything runs, so a
wrong type is one clear error naming where the value came from, the key, the value and the type
wanted - never a ``TypeError`` from deep inside training. Decisions (docs/training.md):

- booleans are not integers (``epochs: true`` is refused), and integers are not booleans;
- a number key takes an integer too (it is stored as a float), but not NaN or infinity;
- a list-of-names key (``modalities``) takes a list or one comma-separated string
  (``structure,image``), so ``modalities: structure`` means ``[structure]``;
- ``null`` only where the annotation allows ``None``;
- config files are read with YAML 1.2's numbers: ``lr: 1e-3`` is a number (PyYAML's YAML 1.1
  rules would make it the string ``'1e-3'``, and then a type error).
"""

from __future__ import annotations

import math
import re
import types
import typing
from collections.abc import Callable
from typing import Any

import yaml

from roam_graph.data.errors import DataError, quote

#: How a value of each Python type is named to a user (YAML's words where they differ).
TYPE_NAMES: dict[type, str] = {bool: "a boolean", int: "an integer", float: "a number",
                               str: "a string", list: "a list", tuple: "a list",
                               dict: "a mapping", type(None): "null"}


class ConfigLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that also reads ``1e-3`` / ``5E4`` as floats (YAML 1.2)."""


ConfigLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"))


class _WrongType(Exception):
    pass


def _as_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _WrongType
    return value


def _as_float(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _WrongType
    if not math.isfinite(value):
        raise _WrongType
    return float(value)


def _as_bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise _WrongType
    return value


def _as_str(value: Any) -> str:
    if not isinstance(value, str):
        raise _WrongType
    return value


def _as_names(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [part.strip() for part in value.split(",")]
    if not isinstance(value, (list, tuple)) or \
            not all(isinstance(part, str) and part for part in value):
        raise _WrongType
    return tuple(value)


#: Annotation -> (what the user is told is expected, checker returning the stored value).
CHECKERS: dict[Any, tuple[str, Callable[[Any], Any]]] = {
    int: ("an integer", _as_int),
    float: ("a finite number", _as_float),
    bool: ("true or false", _as_bool),
    str: ("a string", _as_str),
    tuple[str, ...]: ("a list of names (or one comma-separated string)", _as_names),
}


def field_types(cls: type) -> dict[str, Any]:
    """The annotations of a config dataclass, resolved (they are strings under PEP 563)."""
    return typing.get_type_hints(cls)


def typed_value(value: Any, hint: Any, key: str, origin: str) -> Any:
    """``value`` as the annotation ``hint`` wants it stored, or a ``DataError`` such as
    ``bad.yaml [model]: dim must be an integer, got 'abc' (a string)``."""
    optional = typing.get_origin(hint) in (typing.Union, types.UnionType) and \
        type(None) in typing.get_args(hint)
    if optional:
        hint = next(arg for arg in typing.get_args(hint) if arg is not type(None))
        if value is None:
            return None
    expected, check = CHECKERS[hint]
    try:
        return check(value)
    except _WrongType:
        got = TYPE_NAMES.get(type(value), type(value).__name__)
        if isinstance(value, float) and not math.isfinite(value):
            got = "not finite"
        raise DataError(f"{origin}: {key} must be {expected}{' or null' if optional else ''}, "
                        f"got {quote(value)} ({got})") from None
