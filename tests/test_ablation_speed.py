"""Ablations side by side (`bench_ablations`): interleaved rounds of the real training step, ratios to the baseline."""

from __future__ import annotations

import itertools
import json
import subprocess

import pytest
import torch
from mlflow.tracking import MlflowClient

from mlproject import bench_ablations
from mlproject.ablation_speed import (SideBySideSettings, build, round_orders, t_interval, time_rounds, warm_up,
                                      with_reference)
from tests.helpers import REPO, mlflow_cli, subprocess_env


def test_t_interval_of_fixed_ratios_matches_the_t_table():
    mean, low, high = t_interval([1.1, 1.2, 1.3, 1.4])
    # s = 0.129099, n = 4, t(0.975, 3) = 3.182446 from the table: half-width 3.182446 * 0.129099 / 2.
    assert mean == pytest.approx(1.25)
    assert (low, high) == pytest.approx((1.25 - 0.205426, 1.25 + 0.205426), abs=1e-6)


def test_identical_ratios_have_an_interval_of_width_zero():
    assert t_interval([1.0, 1.0, 1.0]) == (1.0, 1.0, 1.0)


def test_rounds_rotate_the_order_and_each_ablation_follows_every_other_once_per_cycle():
    names = ["baseline", "text_finetuned", "no_ema", "pixel_only"]
    orders = round_orders(names, 8)
    assert all(sorted(order) == sorted(names) for order in orders)
    assert all(a != b for a, b in itertools.pairwise(orders))
    assert sorted(order[0] for order in orders[:4]) == sorted(names)  # each leads once per cycle of 4
    neighbours = [pair for order in orders[:4] for pair in itertools.pairwise(order)]
    assert sorted(neighbours) == sorted(itertools.permutations(names, 2))  # every ordered pair exactly once
    assert orders[4:] == orders[:4]


def test_with_an_odd_number_of_ablations_the_mirrored_rounds_balance_the_neighbours():
    names = ["baseline", "no_ema", "pixel_only"]
    neighbours = [pair for order in round_orders(names, 6) for pair in itertools.pairwise(order)]
    assert sorted(neighbours) == sorted(2 * list(itertools.permutations(names, 2)))


def test_the_baseline_is_measured_first_even_when_not_asked_for():
    assert with_reference(["no_ema", "baseline", "pixel_only"]) == ("baseline", "no_ema", "pixel_only")
    assert with_reference(["text_finetuned"]) == ("baseline", "text_finetuned")


@pytest.mark.parametrize("argv, message", [
    (["--ablations", "baseline,text_finetunde"], "unknown ablation 'text_finetunde'. Known ablations: baseline"),
    (["--rounds", "1"], "rounds: got 1; a 95% interval needs at least 2 rounds"),
    (["--steps-per-round", "0"], "steps_per_round: got 0; each round needs at least 1 step"),
    (["--ablations", "no_ema,no_ema"], "names one twice"),
    (["--device", "tpu"], "device: got 'tpu', expected cpu or cuda"),
    (["--scale", "full"], "scale=full on the CPU"),
])
def test_a_usage_error_exits_2_naming_the_fix(argv, message, capsys, tmp_path):
    assert bench_ablations.main([*argv, "--log", "false", "--output", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err, err
    assert not list(tmp_path.iterdir())  # refused before anything was measured or written


@pytest.fixture(scope="module")
def tiny_bench(tmp_path_factory):
    """The entry point at tiny scale, asked for two ablations (the baseline comes by itself), 3 rounds."""
    output = tmp_path_factory.mktemp("bench")
    argv = ["--ablations", "no_ema,pixel_only", "--scale", "tiny", "--rounds", "3", "--steps-per-round", "1",
            "--warmup-steps", "1", "--log", "false", "--output", str(output)]
    assert bench_ablations.main(argv) == 0
    return json.loads((output / "bench_ablations_tiny_cpu.json").read_text()), (output / "bench_ablations_tiny_cpu.md").read_text()


def test_the_baseline_over_itself_is_exactly_one_in_every_round(tiny_bench):
    figures, _ = tiny_bench
    baseline = next(t for t in figures["timings"] if t["name"] == "baseline")
    assert baseline["ratios"] == [1.0, 1.0, 1.0]
    assert (baseline["ratio_mean"], baseline["ratio_low"], baseline["ratio_high"]) == (1.0, 1.0, 1.0)


def test_every_requested_ablation_is_timed_in_every_round_and_tabled(tiny_bench):
    figures, table = tiny_bench
    assert [t["name"] for t in figures["timings"]] == ["baseline", "no_ema", "pixel_only"]
    for timing in figures["timings"]:
        assert len(timing["seconds_per_step"]) == len(timing["ratios"]) == 3
        assert all(seconds > 0 for seconds in timing["seconds_per_step"])
        assert timing["ratio_low"] <= timing["ratio_mean"] <= timing["ratio_high"]
        assert f"| {timing['name']} | " in table
    assert figures["orders"] == round_orders(["baseline", "no_ema", "pixel_only"], 3)
    assert [order[0] for order in figures["orders"]] == ["baseline", "no_ema", "pixel_only"]
    assert figures["cpu"] and figures["torch_threads"] == torch.get_num_threads()
    assert figures["cpu"] in table and "ratio to baseline" in table


def test_each_ablation_trains_what_its_config_says_over_the_timed_steps():
    """text_finetuned's encoder (and its EMA copy) learn, the baseline's cached encoder does not; the baseline's
    planner trains in the same step and pixel_only has none; no_ema makes no EMA update."""
    settings = SideBySideSettings(ablations=("baseline", "text_finetuned", "no_ema", "pixel_only"), scale="tiny",
                                  rounds=2, steps_per_round=1, warmup_steps=1)
    trainings, steps = build(settings)
    warm_up(trainings, steps, settings.warmup_steps)

    def snapshot(module):
        return [p.detach().clone() for p in module.parameters()]

    def changed(before, module):
        return [not torch.equal(a, b) for a, b in zip(before, module.parameters())]

    baseline, finetuned = trainings["baseline"], trainings["text_finetuned"]
    # The transformer's layers: its pooler and the word embeddings of words not in the captions get no gradient.
    layers = {name: trainings[name].model.text_encoder.transformer.encoder for name in ("baseline", "text_finetuned")}
    encoders = {name: snapshot(module) for name, module in layers.items()}
    ema_encoder = snapshot(finetuned.ema_model.text_encoder)
    planner = snapshot(baseline.model.unet.pose_planner)
    time_rounds(trainings, steps, settings)

    assert all(changed(encoders["text_finetuned"], layers["text_finetuned"]))
    assert any(changed(ema_encoder, finetuned.ema_model.text_encoder))
    assert not any(changed(encoders["baseline"], layers["baseline"]))
    assert all(changed(planner, baseline.model.unet.pose_planner))
    assert trainings["pixel_only"].model.unet.pose_planner is None
    assert trainings["no_ema"].ema_model is None
    assert baseline.position.ema_updates == baseline.position.step == settings.warmup_steps + 2
    assert {t.position.step for t in trainings.values()} == {settings.warmup_steps + 2}


@pytest.mark.slow
def test_bench_ablations_entry_point_logs_ratios_and_the_table(tmp_path):
    out = subprocess.run(
        [*mlflow_cli(), "run", str(REPO), "-e", "bench_ablations", "-P", "ablations=text_finetuned", "-P", "scale=tiny",
         "-P", "rounds=2", "-P", "steps_per_round=1", "-P", "warmup_steps=1", "-P", f"output={tmp_path / 'bench'}",
         "--env-manager", "local", "--experiment-name", "text2sign-bench"],
        cwd=tmp_path, env=subprocess_env(tmp_path), capture_output=True, text=True, timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "| text_finetuned | " in out.stdout
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    (run,) = client.search_runs([client.get_experiment_by_name("text2sign-bench").experiment_id])
    assert run.data.tags["bench"] == "ablations" and run.data.params["bench_ablations.ablations"] == "baseline,text_finetuned"
    assert run.data.metrics["bench_ablations/baseline/ratio"] == 1.0
    assert run.data.metrics["bench_ablations/text_finetuned/ratio_low"] <= run.data.metrics["bench_ablations/text_finetuned/ratio"]
    assert {a.path for a in client.list_artifacts(run.info.run_id)} == {"bench_ablations_tiny_cpu.json", "bench_ablations_tiny_cpu.md"}
