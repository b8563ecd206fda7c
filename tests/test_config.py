"""Config resolution, ablation loading and validation: every bad input gets a message with the fix."""

from __future__ import annotations

import dataclasses
import json

import pytest

from ablations import known_ablations, load_ablation
from mlproject.config_from_params import resolve_config, run_name
from text2sign.config import Config, ConfigError, apply_overrides, flatten, from_dict, parse_overrides, to_json, validate
from text2sign.scales import SCALES


def test_the_three_starting_ablations_exist_and_differ_from_baseline_as_described():
    assert {"baseline", "text_finetuned", "no_ema"} <= set(known_ablations())
    base = resolve_config("baseline", "tiny")
    finetuned = resolve_config("text_finetuned", "tiny")
    no_ema = resolve_config("no_ema", "tiny")
    assert base.text.freeze and base.ema.enabled
    assert not finetuned.text.freeze and finetuned.ema.enabled
    assert finetuned.text.lr != finetuned.train.lr
    assert no_ema.text.freeze and not no_ema.ema.enabled
    diff = {k for k, v in flatten(finetuned).items() if flatten(base)[k] != v}
    assert diff == {"text.freeze"}  # text.lr is the baseline's default already; it only matters when trained


def test_full_scale_matches_the_study_settings():
    config = resolve_config("baseline", "full")
    assert (config.data.image_size, config.data.num_frames) == (64, 16)
    assert config.model.channels == 96 and config.model.transformer_depth == 2
    assert (config.train.batch_size, config.train.grad_accum, config.train.lr) == (2, 8, 5e-5)
    assert (config.train.max_steps, config.train.validations, config.train.checkpoint_every) == (66450, 150, 5)
    assert (config.ema.decay, config.ema.update_every) == (0.9999, 10)


def test_medium_scale_has_small_clips_and_network_and_trains_sixteen_times_as_long_on_varied_signers():
    from text2sign.training.trainer import total_steps

    small, medium = resolve_config("baseline", "small"), resolve_config("baseline", "medium")
    assert medium.data.image_size == small.data.image_size and medium.data.num_frames == small.data.num_frames
    def network(model):  # the planner's first phase is how the network trains, not what it is
        return dataclasses.replace(model, pose_plan_steps=0, pose_plan_captions=0)

    assert network(medium.model) == network(small.model)  # so the small judge reads medium's videos
    assert (medium.model.pose_plan_captions, medium.model.pose_plan_steps) == (32768, 8000)
    assert total_steps(medium, medium.data.train_size) == 16 * total_steps(small, small.data.train_size) == 2048
    assert (small.train.lr, medium.train.lr) == (2e-3, 5e-4)  # small's half-length run learns at four times the rate
    assert (small.data.signer_variation, medium.data.signer_variation) == (0.0, 1.0)


def test_large_scale_has_the_seed_study_s_clips_on_one_signer_with_fingers_and_a_network_a_cpu_can_train():
    large, full = resolve_config("baseline", "large"), resolve_config("baseline", "full")
    assert (large.data.image_size, large.data.num_frames) == (full.data.image_size, full.data.num_frames) == (64, 16)
    assert large.data.finger_keypoints and large.data.signer_variation == 0.0 and large.model.pose_plan
    # Attention only at the coarsest level (16x16 = 256 tokens): at 32x32 it made a step 17 times small's.
    assert large.model.channel_mult == (1, 2, 2) and large.model.attention_levels == (2,)
    assert large.data.test_size == 128  # the evaluation set
    assert large.train.batch_size * large.train.grad_accum == 4


def test_large_on_a_real_corpus_keeps_the_corpus_s_signers_and_keypoints(tmp_path):
    from tests.corpus_builders import make_phoenix

    corpus = make_phoenix(tmp_path / "PHOENIX-2014-T")
    config = resolve_config("pixel_only", "large", data=f"phoenix2014t:{corpus}")
    assert config.data.signer_variation == 1.0 and not config.data.finger_keypoints
    assert config.model.pose_plan_captions == 0


def test_every_scale_validates():
    for scale in SCALES:
        validate(resolve_config("baseline", scale))


def test_a_user_ablation_file_can_be_passed_by_path(tmp_path):
    path = tmp_path / "wide.py"
    path.write_text('"""Wider UNet."""\noverrides = {"model.channels": 32}\n')
    assert resolve_config(str(path), "tiny").model.channels == 32
    assert run_name(str(path), "tiny", 3) == "wide-tiny-s3"


def test_command_line_overrides_are_typed_and_win_over_ablation_and_scale():
    config = resolve_config("no_ema", "tiny", overrides="train.lr=1e-4 model.channel_mult=1,2 ema.enabled=true")
    assert config.train.lr == 1e-4 and config.model.channel_mult == (1, 2) and config.ema.enabled is True


def test_epochs_given_replace_the_scale_s_steps_and_with_max_steps_the_first_reached_ends_the_run():
    from text2sign.training.state import total_steps

    assert total_steps(resolve_config("baseline", "tiny"), 16) == 8  # tiny's budget: 2 epochs of 16 clips, batch 4
    for config in (resolve_config("baseline", "tiny", epochs="5"),
                   resolve_config("baseline", "tiny", overrides="train.epochs=5")):
        assert (config.train.epochs, config.train.max_steps) == (5, 0) and total_steps(config, 16) == 20
    both = resolve_config("baseline", "tiny", epochs="5", overrides="train.max_steps=10")
    assert total_steps(both, 16) == 10 and total_steps(both, 4) == 5
    assert total_steps(resolve_config("baseline", "tiny", overrides="train.max_steps=50"), 4) == 50


def test_a_run_without_epochs_or_steps_is_refused_with_the_fix():
    with pytest.raises(ConfigError, match="train.max_steps: 0 is not allowed; it must be at least 1 when train.epochs"):
        resolve_config("baseline", "tiny", overrides="train.max_steps=0")


def test_config_round_trips_through_json():
    config = resolve_config("text_finetuned", "small")
    assert from_dict(json.loads(to_json(config))) == config


def test_unknown_ablation_lists_the_known_ones():
    with pytest.raises(ConfigError, match="baseline.*no_ema.*text_finetuned"):
        load_ablation("nope")


def test_unknown_scale_lists_the_known_ones():
    with pytest.raises(ConfigError, match="tiny, small, medium, large, full"):
        resolve_config("baseline", "huge")


def test_unknown_key_names_the_key():
    with pytest.raises(ConfigError, match="'train.learning_rate'.*Known keys"):
        resolve_config("baseline", "tiny", overrides="train.learning_rate=1e-4")


@pytest.mark.parametrize(
    "override, message",
    [
        ("train.lr=abc", "train.lr: got 'abc', expected a number"),
        ("model.channels=1.5", "model.channels: got '1.5', expected an integer"),
        ("ema.enabled=maybe", "ema.enabled: got 'maybe', expected true or false"),
        ("diffusion.sampler=euler", "diffusion.sampler: got 'euler', expected one of 'ddim', 'dpmsolver\\+\\+'"),
        ("data.on_error=ignore", "data.on_error: got 'ignore', expected one of 'raise', 'skip'"),
    ],
)
def test_wrong_type_names_the_key_and_the_expected_type(override, message):
    with pytest.raises(ConfigError, match=message):
        resolve_config("baseline", "tiny", overrides=override)


@pytest.mark.parametrize(
    "override, message",
    [
        ("train.lr=0", "train.lr: 0.0 is not allowed; it must be a positive number"),
        ("train.lr=-1e-4", "train.lr: -0.0001 is not allowed"),
        ("ema.decay=1.0", "ema.decay: 1.0 is not allowed; it must be strictly between 0 and 1"),
        ("ema.decay=0", "ema.decay: 0.0 is not allowed"),
        ("data.image_size=17", "data.image_size: 17 is not allowed; it must be divisible by 2"),
        ("data.num_frames=1", "data.num_frames: 1 is not allowed; it must be at least 2"),
        ("diffusion.text_dropout=0", "diffusion.text_dropout: 0.0 is not allowed"),
        ("data.name=phoenix2014t:/no/such/corpus", "data.name: /no/such/corpus .* is not a folder; phoenix2014t:PATH needs"),
        ("data.name=phonix:/data", "data.name: unknown corpus 'phonix:/data'; expected synthetic, phoenix2014t:PATH"),
    ],
)
def test_impossible_values_name_the_key_and_the_allowed_values(override, message):
    with pytest.raises(ConfigError, match=message):
        resolve_config("baseline", "tiny", overrides=override)


def test_malformed_override_pair_shows_the_expected_form():
    with pytest.raises(ConfigError, match="key=value"):
        parse_overrides("train.lr")


def test_ablation_file_without_overrides_is_rejected(tmp_path):
    path = tmp_path / "broken.py"
    path.write_text("x = 1\n")
    with pytest.raises(ConfigError, match="must define `overrides"):
        load_ablation(str(path))


def test_flatten_spells_each_value_one_way():
    flat = flatten(apply_overrides(Config(), {"model.channel_mult": "1,2"}))
    assert flat["model.channel_mult"] == "1,2" and flat["train.lr"] == 5e-5


# The switches removed after c1d5b11, at their old defaults, as an old run's config.json holds them.
REMOVED_SWITCHES_OFF = {
    "model": {"pooled_text": False, "frame_aware_cross_attention": False, "frame_plan": False, "frame_plan_depth": 2},
    "diffusion": {"min_snr_gamma": 0.0, "timestep_sampling": "uniform", "timestep_mean": 0.0, "timestep_std": 1.0},
}


def old_config_json(config: Config, **changed: object) -> dict:
    """`config` as a run at c1d5b11 wrote it, the removed switches at their defaults unless `changed` (dotted keys) says."""
    raw = json.loads(to_json(config))
    for section, switches in REMOVED_SWITCHES_OFF.items():
        raw[section].update(switches)
    for key, value in changed.items():
        section, name = key.split(".")
        raw[section][name] = value
    return raw


def test_an_old_run_s_config_with_the_removed_switches_off_still_loads_with_a_note(caplog):
    config = resolve_config("baseline", "tiny")
    with caplog.at_level("WARNING", logger="text2sign.config"):
        assert from_dict(old_config_json(config)) == config
    notes = "\n".join(record.getMessage() for record in caplog.records)
    for section, switches in REMOVED_SWITCHES_OFF.items():
        for name in switches:
            assert f"{section}.{name}=" in notes and "dropped" in notes
    assert "model.pooled_text" not in flatten(config)


@pytest.mark.parametrize("key, value", [
    ("model.pooled_text", True),
    ("model.frame_aware_cross_attention", True),
    ("model.frame_plan", True),
    ("model.frame_plan_depth", 3),
    ("diffusion.min_snr_gamma", 5.0),
    ("diffusion.timestep_sampling", "logit_normal"),
    ("diffusion.timestep_mean", 0.5),
    ("diffusion.timestep_std", 2.0),
])
def test_an_old_run_s_config_with_a_removed_switch_on_is_refused_naming_the_commit_that_ran_it(key, value):
    raw = old_config_json(resolve_config("baseline", "tiny"), **{key: value})
    with pytest.raises(ConfigError, match=f"checkpoint step_8.pt: {key} is set to {value!r}, .* removed after commit "
                                          f"c1d5b11 .* check out c1d5b11"):
        from_dict(raw, source="checkpoint step_8.pt")


def test_an_override_of_a_removed_switch_is_dropped_when_off_and_refused_when_on(caplog):
    with caplog.at_level("WARNING", logger="text2sign.config"):
        config = resolve_config("baseline", "tiny", overrides="model.pooled_text=false diffusion.min_snr_gamma=0")
    assert config == resolve_config("baseline", "tiny")
    assert ("overrides: dropped model.pooled_text='false', diffusion.min_snr_gamma='0': switches removed after "
            "commit c1d5b11") in caplog.text
    with pytest.raises(ConfigError, match="overrides: model.pooled_text is set to 'true', but the switch was removed "
                                          "after commit c1d5b11"):
        resolve_config("baseline", "tiny", overrides="model.pooled_text=true")


def test_the_config_module_imports_nothing_of_text2sign_so_the_data_package_can_build_on_it():
    import ast

    import text2sign.config

    tree = ast.parse(open(text2sign.config.__file__).read())
    imported = [node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
    imported += [alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names]
    assert not [name for name in imported if name and name.startswith("text2sign")]


def test_an_evaluation_setting_left_unset_is_the_evaluated_run_s_own():
    from text2sign.config import DEFAULT_GUIDANCE_SWEEP, EvalSettings

    run = resolve_config("baseline", "small")
    own = EvalSettings(guidance_sweep=None).for_run(run)
    assert (own.num_videos, own.sampler, own.steps, own.guidance) == (
        run.data.test_size, run.diffusion.sampler, run.diffusion.sample_steps, run.diffusion.guidance_scale)
    assert own.guidance_sweep == DEFAULT_GUIDANCE_SWEEP and own.for_run(run) == own
    asked = EvalSettings(num_videos=5, sampler="ddim", steps=3, guidance=1.0).for_run(run)
    assert (asked.num_videos, asked.sampler, asked.steps, asked.guidance, asked.guidance_sweep) == (5, "ddim", 3, 1.0, ())
    no_dropout = resolve_config("baseline", "small", overrides="diffusion.text_dropout=0 diffusion.guidance_scale=1")
    assert EvalSettings(guidance_sweep=None).for_run(no_dropout).guidance_sweep == (1.0,)  # nothing to guide with
