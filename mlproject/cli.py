"""Parsing entry-point parameters, which MLflow passes as strings, with errors that name the fix."""

from __future__ import annotations

import re

from text2sign.config import ConfigError

RUN_ID = re.compile(r"^[0-9a-f]{32}$")


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


def check_run_id(run_id: str) -> str:
    if not RUN_ID.match(run_id):
        raise ConfigError(f"run_id: {run_id!r} is not an MLflow run id (32 hex characters, as shown in the MLflow UI).")
    return run_id
