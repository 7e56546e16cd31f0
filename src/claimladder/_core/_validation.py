"""One mechanism, one message shape for argument constraints."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any

__all__ = ["did_you_mean", "check_option", "check_probability", "check_positive_int"]


def did_you_mean(value: str, options: Iterable[str]) -> str:
    """Return ``" Did you mean 'x'?"`` for the closest option, or ``""``."""
    matches = difflib.get_close_matches(str(value), [str(o) for o in options], n=1, cutoff=0.6)
    return f" Did you mean {matches[0]!r}?" if matches else ""


def _param_error(param: str, owner: str, expected: str, got: Any, hint: str = "") -> ValueError:
    return ValueError(
        f"The {param!r} parameter of {owner} must be {expected}. Got {got!r} instead.{hint}"
    )


def check_option(value: Any, options: Iterable[str], *, param: str, owner: str) -> str:
    """Validate that ``value`` is one of ``options``; suggest the closest on error."""
    options = tuple(options)
    if value not in options:
        quoted = ", ".join(repr(o) for o in options)
        raise _param_error(param, owner, f"one of {quoted}", value, did_you_mean(value, options))
    return value


def check_probability(value: Any, *, param: str, owner: str) -> float:
    """Validate a float in the open interval (0, 1)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1:
        raise _param_error(param, owner, "a float in (0, 1)", value)
    return float(value)


def check_positive_int(value: Any, *, param: str, owner: str, minimum: int = 1) -> int:
    """Validate an integer >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, (int,)) and not (
        hasattr(value, "__index__")
    ):
        raise _param_error(param, owner, f"an int >= {minimum}", value)
    if int(value) < minimum:
        raise _param_error(param, owner, f"an int >= {minimum}", value)
    return int(value)
