"""Parsing entry-point parameters, which MLflow passes as strings, with errors that name the fix."""

from __future__ import annotations

from text2sign.config import ConfigError


def flag(name: str, text: str) -> bool:
    if text.lower() not in ("true", "false", "1", "0", "yes", "no"):
        raise ConfigError(f"{name}: got {text!r}, expected true or false.")
    return text.lower() in ("true", "1", "yes")


def non_negative_int(name: str, text: str) -> int:
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"{name}: got {text!r}, expected a non-negative integer.") from None
    if not value.is_integer() or value < 0:
        raise ConfigError(f"{name}: got {text!r}, expected a non-negative integer.")
    return int(value)


def optional_float(name: str, text: str) -> float | None:
    if text == "":
        return None
    try:
        return float(text)
    except ValueError:
        raise ConfigError(f"{name}: got {text!r}, expected a number.") from None

