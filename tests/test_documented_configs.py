"""Every documented training and study command's config is valid at the scale it names, on a corpus of the
kind it names. The documented-commands test runs each command at `tiny`, which cannot see a setting that only
breaks at `small` or `medium` (`small`'s one synthetic signer once stopped every real-corpus run); this checks
the configs themselves, in a second, without training."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from mlproject.config_from_params import resolve_config
from tests.corpus_builders import make_folder, make_phoenix
from tests.how2sign_fixtures import make_how2sign_keypoints
from tests.test_documented_commands import documented_commands

BUILDERS = {"phoenix2014t": make_phoenix, "how2sign": make_how2sign_keypoints, "folder": make_folder}
DEFAULTS = {"ablation": "baseline", "scale": "small", "seed": "0", "epochs": "", "data": "synthetic", "overrides": ""}


def parameters(command: str) -> tuple[str, dict[str, str]] | None:
    """(entry point, its parameters) of a documented `train` or `study` command, else None."""
    words = shlex.split(command)
    if words[:2] == ["mlflow", "run"] and "-e" in words:
        entry = words[words.index("-e") + 1]
        given = dict(words[i + 1].split("=", 1) for i, w in enumerate(words[:-1]) if w == "-P")
    elif len(words) > 2 and words[1] == "-m" and words[2] in ("mlproject.train", "mlproject.study"):
        entry = words[2].removeprefix("mlproject.")
        given = {words[i].removeprefix("--").replace("-", "_"): words[i + 1]
                 for i in range(3, len(words) - 1) if words[i].startswith("--")}
    else:
        return None
    return (entry, given) if entry in ("train", "study") else None


def on_fixture(data: str, folder: Path) -> str:
    """The corpus spec with its path replaced by a small corpus of the same kind in its published layout."""
    kind, _, _ = data.partition(":")
    return f"{kind}:{BUILDERS[kind](folder / kind)}" if kind in BUILDERS else data


def documented_runs() -> list[tuple[str, str, dict[str, str]]]:
    found = []
    for doc, command in documented_commands():
        parsed = parameters(command)
        if parsed is not None:
            found.append((doc, command, *parsed))
    return found


@pytest.mark.parametrize("doc, command, entry, given", documented_runs(), ids=lambda v: v if isinstance(v, str) else "")
def test_a_documented_run_has_a_valid_config_at_its_own_scale(doc, command, entry, given, tmp_path):
    settings = {**DEFAULTS, **given}
    data = on_fixture(re.sub(r"^data\.name=", "", settings["data"]), tmp_path)
    ablations = settings.get("ablations", "baseline,text_finetuned,no_ema").split(",") if entry == "study" else [
        settings["ablation"]]
    for ablation in ablations:
        resolve_config(ablation, settings["scale"], int(settings["seed"]), settings["epochs"], data,
                       settings["overrides"])


def test_documented_runs_include_a_real_corpus_at_a_cpu_scale():
    real = [given for _, _, _, given in documented_runs() if ":" in given.get("data", "")]
    assert real and any(g.get("scale", "small") in ("small", "medium") for g in real)


def test_small_s_one_synthetic_signer_is_not_applied_to_a_real_corpus(tmp_path):
    corpus = make_phoenix(tmp_path / "PHOENIX-2014-T")
    assert resolve_config("baseline", "small").data.signer_variation == 0.0
    assert resolve_config("baseline", "small", data=f"phoenix2014t:{corpus}").data.signer_variation == 1.0
