"""Ablations: one small file each, holding `overrides`, a dict of dotted config keys over the baseline.

Add one by dropping `ablations/my_idea.py` here (then `-P ablation=my_idea`), or pass the path of any
.py file (`-P ablation=/path/to/my_idea.py`). Its docstring is the one-line description shown in listings.
"""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path
from typing import Any

from text2sign.config import ConfigError

ABLATIONS_DIR = Path(__file__).resolve().parent


def known_ablations() -> list[str]:
    return sorted(p.stem for p in ABLATIONS_DIR.glob("*.py") if not p.stem.startswith("_"))


def ablation_path(name_or_path: str) -> Path:
    """Resolve an ablation name (a file in ablations/) or a path to a .py file."""
    if name_or_path.endswith(".py"):
        path = Path(name_or_path).expanduser().resolve()
        if not path.is_file():
            raise ConfigError(f"ablation: file {name_or_path!r} does not exist. Pass an existing .py file or one of: {', '.join(known_ablations())}.")
        return path
    if name_or_path not in known_ablations():
        raise ConfigError(
            f"ablation: unknown ablation {name_or_path!r}. Known ablations: {', '.join(known_ablations())} "
            f"(or pass the path of a .py file that defines `overrides`)."
        )
    return ABLATIONS_DIR / f"{name_or_path}.py"


def ablation_name(name_or_path: str) -> str:
    return ablation_path(name_or_path).stem


def ablation_summary(name_or_path: str) -> str:
    """The first line of the ablation file's docstring (read, not run), or "" when it has none."""
    doc = ast.get_docstring(ast.parse(ablation_path(name_or_path).read_text())) or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""


def load_ablation(name_or_path: str) -> dict[str, Any]:
    """The ablation's overrides of the baseline."""
    path = ablation_path(name_or_path)
    spec = importlib.util.spec_from_file_location(f"text2sign_ablation_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as error:  # a user's file: say which one broke and how
        raise ConfigError(f"ablation: {path} failed to load: {type(error).__name__}: {error}") from error
    overrides = getattr(module, "overrides", None)
    if not isinstance(overrides, dict):
        raise ConfigError(f"ablation: {path} must define `overrides = {{...}}`, a dict of dotted config keys (e.g. {{'ema.enabled': False}}).")
    return dict(overrides)
