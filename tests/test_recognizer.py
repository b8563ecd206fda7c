"""The back-translation judge: its outputs, CTC decoding, saving, input checks and a tiny training run."""

from __future__ import annotations

import math

import pytest
import torch
from safetensors.torch import save_file

from evaluation.judge.recognizer import SignRecognizer
from evaluation.judge.training import shift_augment, train_recognizer
from text2sign.scales import recognizer_data_config

VOCABULARY = ("A", "B", "C")


def _recognizer(seed: int = 0) -> SignRecognizer:
    torch.manual_seed(seed)
    return SignRecognizer(VOCABULARY, image_size=16, num_frames=4, num_keypoints=10, width=32).eval()


def test_outputs_have_the_documented_shapes_and_ranges():
    model = _recognizer()
    output = model(torch.rand(2, 3, 4, 16, 16) * 2 - 1)
    assert output.log_probs.shape == (2, 4, len(VOCABULARY) + 1)
    assert torch.allclose(output.log_probs.exp().sum(-1), torch.ones(2, 4))
    assert output.keypoints.shape == (2, 4, 10, 2)
    assert 0 <= output.keypoints.min() and output.keypoints.max() <= 1
    assert output.features.shape == (2, 64)


def test_a_judge_says_whether_it_reads_glosses_keypoints_or_both():
    assert _recognizer().reads == "glosses,keypoints"
    assert SignRecognizer(VOCABULARY, image_size=16, num_frames=4, num_keypoints=0, width=32).reads == "glosses"
    assert SignRecognizer((), image_size=16, num_frames=4, num_keypoints=10, width=32).reads == "keypoints"


def _log_probs(classes: list[int]) -> torch.Tensor:
    """log_probs [1, T, V+1] whose best class at frame t is classes[t]."""
    return torch.nn.functional.one_hot(torch.tensor([classes]), len(VOCABULARY) + 1).float().log_softmax(-1)


def test_greedy_decoding_collapses_repeats_then_drops_blanks():
    model = _recognizer()
    # class 0 is the blank; class i is VOCABULARY[i - 1]
    assert model.glosses_from_log_probs(_log_probs([1, 1, 2, 2, 3])) == [("A", "B", "C")]
    assert model.glosses_from_log_probs(_log_probs([1, 0, 1, 1, 0])) == [("A", "A")]  # a blank splits a repeat
    assert model.glosses_from_log_probs(_log_probs([0, 0, 0])) == [()]


def test_save_and_load_round_trip_gives_identical_outputs(tmp_path):
    model = _recognizer()
    path = tmp_path / "recognizer.safetensors"
    model.save(path)
    loaded = SignRecognizer.load(path)
    assert loaded.spec == model.spec and not loaded.training
    video = torch.rand(2, 3, 4, 16, 16) * 2 - 1
    original, reloaded = model(video), loaded(video)
    for name in ("log_probs", "keypoints", "features"):
        assert torch.equal(getattr(original, name), getattr(reloaded, name)), name


def test_loading_a_file_that_is_not_a_recognizer_says_so(tmp_path):
    path = tmp_path / "other.safetensors"
    save_file({"weight": torch.zeros(2)}, str(path))
    with pytest.raises(ValueError, match="not a saved SignRecognizer"):
        SignRecognizer.load(path)


def test_videos_of_another_size_or_length_are_refused_with_the_fix():
    model = _recognizer()
    with pytest.raises(ValueError, match=r"16x16 pixels, 4 frames.*\[2, 3, 8, 16, 16\].*Render or resample"):
        model(torch.zeros(2, 3, 8, 16, 16))
    with pytest.raises(ValueError, match=r"\[1, 3, 4, 32, 32\]"):
        model.decode(torch.zeros(1, 3, 4, 32, 32))


def test_shift_augmentation_moves_keypoints_with_the_pixels():
    video = torch.zeros(1, 3, 2, 16, 16)
    video[..., 5, 7] = 1.0  # a dot at x=7, y=5 in every frame
    keypoints = torch.tensor([[[[7.5 / 16, 5.5 / 16, 1.0]]] * 2])  # [1, T=2, K=1, 3], the dot's centre, seen
    shifted, moved = shift_augment(video, keypoints, max_shift=2, generator=torch.Generator().manual_seed(3))
    y, x = (shifted[0, 0, 0] == 1.0).nonzero()[0].tolist()
    assert moved[0, 0, 0].tolist() == pytest.approx([(x + 0.5) / 16, (y + 0.5) / 16, 1.0])
    assert torch.equal(shifted[:, :, 0], shifted[:, :, 1])  # the whole clip moves as one


def _tiny_run(seed: int) -> tuple[SignRecognizer, dict[str, float], list[tuple[int, dict[str, float]]]]:
    logged: list[tuple[int, dict[str, float]]] = []
    model, metrics = train_recognizer(
        recognizer_data_config("tiny"), epochs=4, batch_size=4, lr=3e-3, seed=seed, width=32,
        log_every=1, progress=False, log=lambda values, step: logged.append((step, values)),
    )
    return model, metrics, logged


@pytest.fixture(scope="module")
def tiny_run():
    return _tiny_run(seed=0)


def test_a_tiny_training_run_reports_finite_metrics_and_its_loss_falls(tiny_run):
    _, metrics, logged = tiny_run
    assert set(metrics) == {
        "recognizer/val_wer", "recognizer/test_wer", "recognizer/test_bleu4", "recognizer/test_keypoint_mje"
    }
    assert all(math.isfinite(value) for value in metrics.values())
    losses = [values["recognizer/loss"] for _, values in logged if "recognizer/loss" in values]
    assert len(losses) == 16  # 4 epochs of 16 clips in batches of 4, logged every step
    assert {"recognizer/ctc_loss", "recognizer/keypoint_loss"} <= set(logged[0][1])
    assert len([values for _, values in logged if "recognizer/val_wer" in values]) == 4
    assert sum(losses[-4:]) < sum(losses[:4])


def test_training_is_determined_by_the_seed(tiny_run):
    model, metrics, _ = tiny_run
    again, metrics_again, _ = _tiny_run(seed=0)
    assert metrics_again == metrics
    for (name, tensor), other in zip(model.state_dict().items(), again.state_dict().values()):
        assert torch.equal(tensor, other), name
    different, _, _ = _tiny_run(seed=1)
    assert not torch.equal(next(iter(model.parameters())), next(iter(different.parameters())))


def test_the_small_judge_learns_every_kind_of_signer_though_small_trains_on_one():
    # The judge of `small` also reads `medium`'s videos, whose signers vary; `small` itself draws one signer.
    from text2sign.config import DataConfig
    from text2sign.scales import SCALES

    assert SCALES["small"]["data.signer_variation"] == 0.0
    judge_data = recognizer_data_config("small")
    assert judge_data.signer_variation == DataConfig().signer_variation == 1.0
    assert (judge_data.image_size, judge_data.num_frames) == (SCALES["small"]["data.image_size"], SCALES["small"]["data.num_frames"])


def test_a_judge_on_fewer_clips_than_its_scale_takes_the_scale_s_steps_over_more_epochs():
    logged: list[tuple[int, dict[str, float]]] = []
    train_recognizer(recognizer_data_config("tiny"), epochs=1, min_steps=10, batch_size=4, lr=3e-3, seed=0, width=16,
                     log_every=1, progress=False, log=lambda values, step: logged.append((step, values)))
    steps = [step for step, values in logged if "recognizer/loss" in values]
    validations = [step for step, values in logged if "recognizer/val_wer" in values]
    assert steps == list(range(1, 13))  # 16 clips in batches of 4: 3 epochs of 4 steps reach 10
    assert len(validations) == 3  # one after each epoch


def test_the_judge_takes_its_scale_s_synthetic_steps_unless_epochs_are_given():
    from mlproject.train_recognizer import judge_steps
    from text2sign.scales import RECOGNIZER_SCALES

    assert judge_steps(RECOGNIZER_SCALES["small"], "") == 6 * (8000 // 16)
    assert judge_steps(RECOGNIZER_SCALES["small"], "3") == 0


def _judge_set_up(learn_from: str, drawings: int = 1):
    from evaluation.judge.training import set_up_judge

    return set_up_judge(recognizer_data_config("tiny"), epochs=1, min_steps=0, batch_size=4, lr=1e-3, seed=0,
                        learn_from=learn_from, width=16, keypoint_weight=10.0, weight_decay=0.01, grad_clip=1.0,
                        device="cpu", drawings=drawings)


def test_a_judge_that_learns_every_split_is_shown_the_held_out_clips_and_one_that_learns_train_is_not():
    from text2sign.data import build_dataset

    splits = {split: build_dataset(recognizer_data_config("tiny"), split) for split in ("train", "val", "test")}
    held_out = set(splits["val"].texts) | set(splits["test"].texts)
    for learn_from, expected in (("train", ("train",)), ("all", ("train", "val", "test"))):
        learned = _judge_set_up(learn_from).loader.dataset
        texts = {learned[i]["text"] for i in range(len(learned))}
        assert len(learned) == sum(len(splits[split]) for split in expected)
        assert (held_out <= texts) == (learn_from == "all")
        assert not held_out & texts or learn_from == "all"


def test_a_judge_asked_to_learn_from_an_unknown_set_of_splits_is_refused_naming_the_choices():
    with pytest.raises(ValueError, match="learn_from must be one of train, all"):
        _judge_set_up("everything")
    from mlproject.train_recognizer import main

    with pytest.raises(SystemExit) as exit_:
        main(["--learn-from", "everything"])
    assert exit_.value.code == 2


def test_a_judge_that_learns_every_split_can_learn_each_clip_on_other_signers_and_one_that_learns_train_cannot(capsys):
    once, twice = _judge_set_up("all").loader.dataset, _judge_set_up("all", drawings=2).loader.dataset
    assert len(twice) == 2 * len(once)
    assert twice[0]["text"] == once[0]["text"] and twice[0]["video"].equal(once[0]["video"])  # the first drawing: as before
    # A second drawing of the corpus: other signers (and, for the synthetic corpus, other sentences).
    assert not any(twice[len(once) + i]["video"].equal(once[i]["video"]) for i in range(len(once)))
    with pytest.raises(ValueError, match="only when it learns every split"):
        _judge_set_up("train", drawings=2)
    from mlproject.train_recognizer import main

    assert main(["--learn-from", "train", "--drawings", "2"]) == 2
    assert "add -P learn_from=all" in capsys.readouterr().err


def test_a_judge_that_learned_every_split_is_described_so_wherever_its_readings_are_logged():
    from types import SimpleNamespace

    from mlproject.registry.recognizer_registry import describe

    apart = SimpleNamespace(name="text2sign-recognizer-fingerspelling", version="2", tags={"learned_from": "train"})
    instrument = SimpleNamespace(name="text2sign-recognizer-fingerspelling", version="3", tags={"learned_from": "all"})
    older = SimpleNamespace(name="text2sign-recognizer-synthetic", version="1", tags={})
    assert describe(apart) == "text2sign-recognizer-fingerspelling version 2"
    assert describe(older) == "text2sign-recognizer-synthetic version 1"
    assert describe(instrument).startswith("text2sign-recognizer-fingerspelling version 3 (learned every split")
    assert "clips it learned" in describe(instrument)
