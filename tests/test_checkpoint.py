"""Checkpoints are written atomically, load safely, and a half-written file is never picked up."""

from __future__ import annotations

import pickle

import pytest
import torch

from text2sign.checkpoint import CheckpointError, checkpoint_name, latest_checkpoint, load_checkpoint, save_checkpoint


def test_round_trip_keeps_tensors_and_plain_values(tmp_path):
    state = {"model": {"w": torch.randn(3, 4)}, "step": 7, "generator": torch.Generator().manual_seed(1).get_state()}
    path = save_checkpoint(state, tmp_path / checkpoint_name(7))
    loaded = load_checkpoint(path)
    assert torch.equal(loaded["model"]["w"], state["model"]["w"]) and loaded["step"] == 7
    assert torch.equal(loaded["generator"], state["generator"])


def test_a_failed_write_leaves_the_previous_checkpoint_intact(tmp_path):
    path = save_checkpoint({"step": 1}, tmp_path / "step_00000001.pt")

    class Unsaveable:
        def __reduce__(self):
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        save_checkpoint({"step": 2, "bad": Unsaveable()}, path)
    assert load_checkpoint(path)["step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temp file left behind


def test_latest_ignores_temporary_and_foreign_files(tmp_path):
    save_checkpoint({"step": 5}, tmp_path / checkpoint_name(5))
    save_checkpoint({"step": 10}, tmp_path / checkpoint_name(10))
    (tmp_path / ".step_00000020.pt.abc.tmp").write_bytes(b"half")
    (tmp_path / "notes.txt").write_text("x")
    assert latest_checkpoint(tmp_path).name == checkpoint_name(10)
    assert latest_checkpoint(tmp_path / "missing") is None


class Payload:
    def __reduce__(self):
        return (print, ("pwned",))


def test_a_checkpoint_carrying_pickled_code_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    with path.open("wb") as handle:
        torch.save({"x": Payload()}, handle, pickle_module=pickle)
    with pytest.raises(CheckpointError, match="weights_only"):
        load_checkpoint(path)


def test_missing_or_corrupt_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="could not be read"):
        load_checkpoint(tmp_path / "junk.pt")
