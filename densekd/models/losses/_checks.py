"""Build-time checks of loss and component settings.

Each check names the class, the config key, the value given and what is allowed, so a bad
setting fails when the model is built instead of as NaN losses or an unrelated error in the
first training step. Numbers are ``numbers.Real`` (Python and NumPy ints and floats, not
``bool``); a wrong type raises ``TypeError``, a number outside its range ``ValueError``.

Example::

    check_weight('ChannelWiseDivergence', 'loss_weight', loss_weight)
    check_positive('ChannelWiseDivergence', 'tau', tau, 'the softmax temperature')
"""
from __future__ import annotations

import difflib
import math
import numbers
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

__all__ = ['check_weight', 'check_positive', 'check_range', 'check_choice', 'check_keys']

T = TypeVar('T')


def _number(owner: str, key: str, value: Any, allowed: str) -> float:
    """``value`` as a float; ``TypeError`` if it is not a real number, ``ValueError`` if it
    is NaN or infinite."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f'{owner}: {key} must be {allowed}, got {value!r} '
                        f'({type(value).__name__})')
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f'{owner}: {key} must be {allowed}, got {value!r}')
    return number


def check_weight(owner: str, key: str, value: T) -> T:
    """Check a loss weight: a finite number >= 0 (0 switches the term off).

    Args:
        owner: the class whose setting it is, for the message.
        key: the config key, e.g. ``'loss_weight'``.
        value: the value given.

    Returns:
        ``value`` unchanged.

    Raises:
        TypeError: not a number (e.g. ``'ten'``).
        ValueError: NaN, infinite or negative.
    """
    allowed = 'a finite number >= 0'
    if _number(owner, key, value, allowed) < 0:
        raise ValueError(f'{owner}: {key} must be {allowed}, got {value!r}')
    return value


def check_positive(owner: str, key: str, value: T, what: str = '') -> T:
    """Check a finite number > 0 (a temperature, a scale).

    Args:
        owner: the class whose setting it is.
        key: the config key, e.g. ``'tau'``.
        value: the value given.
        what: what the setting is, added to the message (``'the softmax temperature'``).

    Returns:
        ``value`` unchanged.

    Raises:
        TypeError: not a number.
        ValueError: NaN, infinite, zero or negative.
    """
    allowed = 'a finite number > 0' + (f' ({what})' if what else '')
    if _number(owner, key, value, allowed) <= 0:
        raise ValueError(f'{owner}: {key} must be {allowed}, got {value!r}')
    return value


def check_range(owner: str, key: str, value: T, low: float, high: float,
                high_open: bool = False) -> T:
    """Check a finite number in ``[low, high]`` (``[low, high)`` with ``high_open``).

    Args:
        owner: the class whose setting it is.
        key: the config key, e.g. ``'mask_ratio'``.
        value: the value given.
        low: the smallest value allowed.
        high: the largest value allowed (excluded with ``high_open``).
        high_open: exclude ``high``.

    Returns:
        ``value`` unchanged.

    Raises:
        TypeError: not a number.
        ValueError: NaN, infinite or outside the range.
    """
    allowed = f'a number in [{low}, {high}{")" if high_open else "]"}'
    number = _number(owner, key, value, allowed)
    if not (low <= number and (number < high if high_open else number <= high)):
        raise ValueError(f'{owner}: {key} must be {allowed}, got {value!r}')
    return value


def check_choice(owner: str, key: str, value: T, choices: Iterable[Any]) -> T:
    """Check that ``value`` is one of ``choices`` (a reduction, a mode).

    Args:
        owner: the class whose setting it is.
        key: the config key, e.g. ``'reduction'``.
        value: the value given.
        choices: the values allowed.

    Returns:
        ``value`` unchanged.

    Raises:
        ValueError: ``value`` is not one of ``choices``.
    """
    choices = tuple(choices)
    if not any(value is c or (type(value) is type(c) and value == c) for c in choices):
        raise ValueError(f'{owner}: {key} must be one of {choices}, got {value!r}')
    return value


def check_keys(owner: str, key: str, cfg: Mapping[str, Any], allowed: Iterable[str]) -> None:
    """Check that a settings dict (``pca=dict(...)``) has only known keys.

    Args:
        owner: the class whose setting it is.
        key: the config key of the dict, e.g. ``'pca'``.
        cfg: the dict given.
        allowed: the keys it may have.

    Raises:
        ValueError: an unknown key, with the closest allowed spelling when there is one.
    """
    allowed = list(allowed)
    unknown = sorted(k for k in cfg if k not in allowed)
    if not unknown:
        return
    hints = ''.join(f"; {k!r}: did you mean {m[0]!r}?" for k in unknown
                    for m in [difflib.get_close_matches(str(k), allowed, n=1)] if m)
    raise ValueError(f'{owner}: unknown {key} keys {unknown}; allowed: {allowed}{hints}')
