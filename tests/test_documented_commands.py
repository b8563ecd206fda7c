"""Every command in a ```bash block of README.md and docs/*.md runs, as written but at the `tiny` scale, so a
doc cannot drift from the code (`-P switches=none` had failed for months while the README showed it).

What is changed, and why, is all in `adapt`: the scale becomes `tiny`, whether given or left at its default
(a GPU-only command runs on the CPU), a study
gets one seed (and a second study launch resumes the first), a run at most 2 epochs and no evaluation after training outside the study (the
documented `-e evaluate` runs it), a bench 2 timed steps and `bench_ablations` 2 rounds of 1 (the path through the code is the same, the minutes are not), a corpus path becomes a small corpus in its published layout (How2Sign with its OpenPose JSON), a port becomes a free one, placeholders such as
`<run_id>` become the ids the earlier commands made. The install (`python3 -m venv ... pip install`) is
what CI itself runs first, and `python -m pytest` is this suite: those two are not run again here.
A data-parallel command runs 2 processes, with an accumulation they can share. Blocks marked ```sh
instead of ```bash are for a Slurm cluster, which this machine is not: tests/test_study_slurm.py runs
their code path through submitit's local executor.
"""

from __future__ import annotations

import itertools
import re
import shlex
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from tests.corpus_builders import make_phoenix
from tests.how2sign_fixtures import make_how2sign_keypoints
from tests.helpers import REPO, free_port, stop_process_group, subprocess_env
from mlproject.benchmark import SWITCH_KEYS

pytestmark = [pytest.mark.slow, pytest.mark.longest]

# docs/server.md stands up a team server (apt, a PostgreSQL admin, secrets from the environment):
# tests/test_team_server.py runs that path on a throwaway cluster instead. Pages in subfolders (docs/results/)
# are covered too: a results page gives the command that reproduces it.
# The results pages last: they rebuild what the other pages' commands made (a study, its export).
DOCS = [REPO / "README.md", *sorted(p for p in (REPO / "docs").glob("*.md") if p.name != "server.md"),
        *sorted((REPO / "docs").glob("*/**/*.md"))]
SCALED = ("train", "study", "train_recognizer", "bench", "bench_ablations")  # the entry points with a scale parameter
# .ci/run also makes the keypoint extractor's environment (docs/keypoints.md).
NOT_RUN_AGAIN = ("python -m pytest", "python3 -m venv", "pip install", "python -m text2sign.data setup-extractor")


def documented_commands() -> list[tuple[str, str]]:
    """(file, command) for each line of each ```bash block, comments cut, `a && b` split in two."""
    found = []
    for doc in DOCS:
        for block in re.findall(r"^```bash\n(.*?)^```", doc.read_text(), flags=re.S | re.M):
            for line in block.splitlines():
                command = line.split("  #")[0].strip()
                for part in (p.strip() for p in command.split(" && ")):
                    if part and not part.startswith(NOT_RUN_AGAIN) and not part.startswith(". .venv"):
                        found.append((doc.name, part))
    return found


def adapt(command: str, ids: dict[str, str], corpora: dict[str, Path], port: int, folder: Path) -> list[str]:
    """The command as this test runs it: tiny, on the CPU, short, with real ids, paths and ports.

    `mlflow run` starts its entry point in the project folder, so a relative `output=` (the results page's
    `output=docs/results/medium`) would write into this checkout: it goes under the test's folder instead.
    """
    for placeholder, value in ids.items():
        command = command.replace(placeholder, value)
    words = shlex.split(command)
    # `NAME=value command`: a store of its own for that command, kept under the test's folder.
    settings = [re.sub(r"^(MLFLOW_TRACKING_URI=sqlite:///)([^/].*)$", lambda m: f"{m.group(1)}{folder / m.group(2)}", w)
                for w in itertools.takewhile(_is_assignment, words)]
    words = words[len(settings):]
    if words[0] == "python":
        words[0] = sys.executable
    if words[:2] == ["mlflow", "run"]:
        words[2] = str(REPO) if words[2] == "." else words[2]
    adapted: list[str] = []
    for word in words:
        adapted.append(adapt_word(word, adapted[-1] if adapted else "", ids, corpora, port, folder))
    # A second study launch (the results page's, after docs/studies.md's) resumes the first: it then trains only
    # the children the first lacks, through the path a page's resume command takes, instead of a whole study again.
    launches_a_study = words[:2] == ["mlflow", "run"] and "-e" in words and words[words.index("-e") + 1] == "study"
    if launches_a_study and "<study run id>" in ids and not settings and not any(w.startswith("resume=") for w in adapted):
        adapted += ["-P", f"resume={ids['<study run id>']}"]
    return [*settings, *shortened(adapted)]


def adapt_word(word: str, previous: str, ids: dict[str, str], corpora: dict[str, Path], port: int, folder: Path) -> str:
    """One word of a command as this test runs it (`previous`: the word before it, for `--scale small`)."""
    word = re.sub(r"^(scale=|--scale=?)(small|medium|full)$", r"\1tiny", word)
    word = re.sub(r"^(small|medium|full)$", "tiny", word) if previous == "--scale" else word
    word = re.sub(r"^seeds=\d+$", "seeds=1", word)
    word = re.sub(r"^epochs=(\d+)$", lambda m: f"epochs={min(int(m.group(1)), 2)}", word)
    word = word.replace("device=cuda", "device=cpu")
    word = re.sub(r"/data/PHOENIX-2014-T-release-v3/PHOENIX-2014-T", str(corpora["phoenix2014t"]), word)
    word = re.sub(r"how2sign:/data/how2sign", f"how2sign:{corpora['how2sign']}", word)
    word = word.replace("5001", str(port)).replace("localhost:", "127.0.0.1:")
    # A results page imports, resumes and exports its committed study: here, the study the pages before it
    # made and exported.
    word = re.sub(r"^(folder|export)=docs/results/.*$", lambda m: f"{m.group(1)}=study-export", word)
    word = re.sub(r"^(study|resume)=[0-9a-f]{32}$", lambda m: f"{m.group(1)}={ids.get('<study run id>', '')}", word)
    word = re.sub(r"^(output|folder|export)=([^/].*)$", lambda m: f"{m.group(1)}={folder / m.group(2)}", word)
    word = re.sub(r"^nproc_per_node=\d+$", "nproc_per_node=2", word)
    return "2" if previous == "--nproc-per-node" else word


def shortened(adapted: list[str]) -> list[str]:
    """What each entry point is given to run in seconds here: the scale `tiny`, few steps, no evaluation twice."""
    entry_point = adapted[adapted.index("-e") + 1] if adapted[:2] == ["mlflow", "run"] else ""
    # A command that leaves the scale at its default (`small`: minutes) runs at `tiny` too.
    if entry_point in SCALED and not any(w.startswith("scale=") for w in adapted):
        adapted += ["-P", "scale=tiny"]
    if adapted[1:3] == ["-m", "mlproject.train"] and "--scale" not in adapted:
        adapted += ["--scale", "tiny"]
    if any(w in ("nproc_per_node=2", "--nproc-per-node") for w in adapted) and not any("overrides" in w for w in adapted):
        shared = "train.batch_size=2 train.grad_accum=2"
        adapted += ["-P", f"overrides={shared}"] if entry_point else ["--overrides", shared]
    if entry_point == "bench":
        adapted += ["-P", "steps=2", "-P", "warmup_steps=1", "-P", "sample_videos=1"]  # seconds, not minutes
        if not any(w.startswith("switches=") for w in adapted):
            # Every switch but `compile`: inductor's first C++ build of the tiny UNet took 200 of this test's
            # 1,070 s on 2 cores. test_trainer.py checks that train.compile sends every step through torch.compile.
            adapted += ["-P", f"switches={','.join(k for k in SWITCH_KEYS if k != 'compile')}"]
    if entry_point == "bench_ablations":  # 2 rounds of 1 step, in place of any given: MLflow refuses a repeated -P
        short = {"rounds": "2", "steps_per_round": "1", "warmup_steps": "1"}
        kept: list[str] = []
        for word in adapted:
            if kept[-1:] == ["-P"] and word.split("=")[0] in short:
                kept.pop()
            else:
                kept.append(word)
        adapted = kept + [w for name, value in short.items() for w in ("-P", f"{name}={value}")]
    if adapted[1:3] == ["-m", "mlproject.bench_ablations"]:
        adapted += ["--rounds", "2", "--steps-per-round", "1", "--warmup-steps", "1"]  # argparse: the last one counts
    # Evaluation is run by the documented `-e evaluate` command and by the study (whose champion needs it),
    # not again after every training run.
    if entry_point == "train" and not any(w.startswith("evaluate=") for w in adapted):
        adapted += ["-P", "evaluate=false"]
    if adapted[1:3] == ["-m", "mlproject.train"] and "--evaluate" not in adapted:
        adapted += ["--evaluate", "false"]
    return adapted


def test_every_documented_command_runs_at_tiny_scale(tmp_path):
    commands = documented_commands()
    assert len(commands) >= 15, commands  # the parser still finds the blocks
    env = subprocess_env(tmp_path)
    env["TEXT2SIGN_KEYPOINTS"] = str(tmp_path / "keypoints")  # what the documented extraction writes
    corpora = {"phoenix2014t": make_phoenix(tmp_path / "PHOENIX-2014-T"),
               "how2sign": make_how2sign_keypoints(tmp_path / "how2sign", sizes={"train": 4, "val": 2, "test": 2})}
    client = MlflowClient(env["MLFLOW_TRACKING_URI"])
    ids: dict[str, str] = {}
    port = free_port()
    server = None
    seen, timings = set(), []
    untracked_before = _untracked_in_checkout()
    try:
        for doc, command in commands:
            if command in seen:  # shown in the README and in docs/: run once
                continue
            seen.add(command)
            args = adapt(command, ids, corpora, port, tmp_path)
            if _same_run(args) in seen:  # e.g. `-P scale=medium` and the default, both `tiny` here
                continue
            seen.add(_same_run(args))
            start = time.monotonic()
            if args[:2] in (["mlflow", "ui"], ["mlflow", "models"]):
                server = _serve(args, port, tmp_path, env)
                if args[1] == "ui":  # nothing more to ask it; the model server answers the `curl` that follows
                    stop_process_group(server)
                    server = None
                continue
            settings = dict(word.split("=", 1) for word in itertools.takewhile(_is_assignment, args))
            args = args[len(settings):]
            out = subprocess.run(args, cwd=tmp_path, env={**env, **settings}, capture_output=True, text=True, timeout=900)
            timings.append((round(time.monotonic() - start), command))
            assert out.returncode == 0, f"{doc}: {command}\n{shlex.join(args)}\n{out.stdout[-2000:]}\n{out.stderr[-3000:]}"
            if args[0] == "curl":
                assert '"gif_base64"' in out.stdout, out.stdout[-500:]
                stop_process_group(server)  # it has answered what the README asks of it
                server = None
            _note_ids(client, ids, tmp_path)
    finally:
        if server is not None:
            stop_process_group(server)
    print("\n".join(f"{seconds:5d} s  {command}" for seconds, command in timings))
    # A documented command run here must not leave files in the checkout (they would be committed by mistake).
    assert _untracked_in_checkout() <= untracked_before, _untracked_in_checkout() - untracked_before


def _is_assignment(word: str) -> bool:
    """`NAME=value` before a command: an environment variable for that command alone."""
    return re.match(r"^[A-Z_][A-Z0-9_]*=", word) is not None


def _untracked_in_checkout() -> set[str]:
    """Files git does not know and does not ignore; empty where the checkout is not a git repository."""
    out = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=REPO,
                         capture_output=True, text=True)
    return {line[3:] for line in out.stdout.splitlines() if line.startswith("??")}


def _same_run(args: list[str]) -> tuple[str, ...]:
    """An adapted command up to the order of its `-P` parameters: two that differ only there run the same."""
    params = sorted(args[i + 1] for i, word in enumerate(args[:-1]) if word == "-P")
    rest = [w for i, w in enumerate(args) if w != "-P" and (i == 0 or args[i - 1] != "-P")]
    return (*rest, *params)


def _serve(args: list[str], port: int, folder: Path, env: dict[str, str]) -> subprocess.Popen:
    """Start `mlflow ui` or `mlflow models serve` on 127.0.0.1:`port`; return once it answers."""
    command = [sys.executable, "-m", *args, *([] if "--port" in args else ["--port", str(port)]), "--host", "127.0.0.1"]
    server = subprocess.Popen(command, cwd=folder, env={**env, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        _wait_for(f"http://127.0.0.1:{port}/{'health' if args[1] == 'ui' else 'ping'}", 240)
    except OSError:
        stop_process_group(server)
        raise
    return server


def _note_ids(client: MlflowClient, ids: dict[str, str], folder: Path) -> None:
    """The ids later commands name: the first finished training run whose checkpoints are in `folder`/outputs
    (`mlflow run .` trains in the project folder, `python -m` in `folder`, where the resume example looks),
    the first study."""
    experiments = [e.experiment_id for e in client.search_experiments()]
    if not experiments:
        return
    if "<run_id>" not in ids:
        runs = client.search_runs(experiments, "tags.ablation = 'baseline' and attributes.status = 'FINISHED'",
                                  order_by=["attributes.start_time ASC"])
        local = [r for r in runs if (folder / "outputs" / r.info.run_id / "checkpoints").is_dir()]
        if local:
            ids["<run_id>"] = local[0].info.run_id
    if "<study run id>" not in ids:
        studies = client.search_runs(experiments, "tags.role = 'study'", max_results=1)
        if studies:
            ids["<study run id>"] = studies[0].info.run_id


def _wait_for(url: str, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
