"""Checks of model hyperparameters, shared by every family: one-line :class:`ConfigError` naming model and key.

Every family checks all its hyperparameters when it is constructed (before any data is read or training starts),
so a bad value fails ``scsynth train`` and the workflow's config check at once, not at generation. No torch
import: the config check uses these without the training frameworks.

Numbers: ints and floats, or a string in scientific notation, because YAML 1.1 (PyYAML) reads ``1e-4`` (no dot)
as a string; other strings (``"ten"``, a quoted ``"0.1"``) and booleans are not numbers. Integers may also be
given as whole floats or such strings (``max_steps: 1e6``). Checked values are written back as ``int`` /
``float`` / ``bool``, so the rest of the code sees plain Python types.
"""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Collection, MutableMapping
from typing import Any

import numpy as np

from scsynth_core.errors import ConfigError

#: What YAML 1.1 leaves a string although it is a number: a mantissa with an exponent (``1e-4``, ``5E+3``).
_SCIENTIFIC = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)[eE][-+]?\d+")


def _real(value: Any) -> float | None:
    """``value`` as a float, or None where it is not a number (booleans and other strings are not)."""
    if isinstance(value, (bool, np.bool_)):
        return None
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, str) and _SCIENTIFIC.fullmatch(value.strip()):
        return float(value)
    return None


def _integer(value: Any) -> int | None:
    """``value`` as an int, or None where it is not a whole number."""
    if isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_)):
        return int(value)
    number = _real(value)
    return int(number) if number is not None and number.is_integer() else None


def _fail(model: str, key: str, expected: str, value: Any, also: Collection[str] = ()) -> ConfigError:
    words = "".join(f"{w!r} or " for w in also)
    return ConfigError(f"model '{model}': {key} must be {words}{expected}, got {value!r}")


def check_positive_int(
    model: str,
    params: MutableMapping[str, Any],
    key: str,
    *,
    minimum: int = 1,
    optional: bool = False,
    also: Collection[str] = (),
) -> None:
    """``params[key]`` must be an integer >= ``minimum`` (or None where ``optional``, or one of the words
    ``also``)."""
    value = params[key]
    if (optional and value is None) or (isinstance(value, str) and value in also):
        return
    number = _integer(value)
    if number is None or number < minimum:
        raise _fail(model, key, f"an integer >= {minimum}" + (" or null" if optional else ""), value, also)
    params[key] = number


def check_number(
    model: str,
    params: MutableMapping[str, Any],
    key: str,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
    optional: bool = False,
    also: Collection[str] = (),
) -> None:
    """``params[key]`` must be a finite number in the given range (open or closed ends; None where ``optional``,
    or one of the words ``also``)."""
    value = params[key]
    if (optional and value is None) or (isinstance(value, str) and value in also):
        return
    number = _real(value)
    below = low is not None and number is not None and (number <= low if low_open else number < low)
    above = high is not None and number is not None and (number >= high if high_open else number > high)
    if number is None or not math.isfinite(number) or below or above:
        if low is not None and high is not None:
            bounds = f" in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
        elif low is not None:
            bounds = f" {'>' if low_open else '>='} {low:g}"
        elif high is not None:
            bounds = f" {'<' if high_open else '<='} {high:g}"
        else:
            bounds = ""
        raise _fail(model, key, f"a number{bounds}" + (" or null" if optional else ""), value, also)
    params[key] = number


def check_int_list(
    model: str, params: MutableMapping[str, Any], key: str, *, minimum: int = 1, length: int | None = None
) -> None:
    """``params[key]`` must be a non-empty list (of ``length`` items, where given) of integers >= ``minimum``."""
    value = params[key]
    items = [_integer(v) for v in value] if isinstance(value, (list, tuple)) else []
    if not items or any(v is None or v < minimum for v in items) or (length is not None and len(items) != length):
        items_of = f"a list of {length}" if length is not None else "a non-empty list of"
        raise _fail(model, key, f"{items_of} integers >= {minimum}", value)
    params[key] = items


def check_widths(model: str, params: MutableMapping[str, Any], key: str) -> None:
    """Layer widths: a non-empty list of positive integers."""
    check_int_list(model, params, key)


def check_choice(model: str, params: MutableMapping[str, Any], key: str, options: Collection[str]) -> None:
    """``params[key]`` must be one of ``options``."""
    value = params[key]
    if not isinstance(value, str) or value not in options:
        raise _fail(model, key, f"one of {', '.join(options)}", value)


def check_flag(model: str, params: MutableMapping[str, Any], key: str) -> None:
    """``params[key]`` must be a boolean (YAML true/false)."""
    if not isinstance(params[key], (bool, np.bool_)):
        raise _fail(model, key, "true or false", params[key])
    params[key] = bool(params[key])
