"""What the MLflow UI shows as a description: a training run's page, a study run's page, a model version.

A run's description is its tag `mlflow.note.content` (Markdown). A training run's says what it is (the
ablation and what it changes, the data, the scale and seed) and, once there are any, its headline numbers;
it is written when the run starts, again when training ends and again after each evaluation, when the
registered model version of the run gets the same text.
"""

from __future__ import annotations

NOTE = "mlflow.note.content"
# MLflow stores a tag value of up to 8000 characters; a description longer than this is cut at a line.
_NOTE_LIMIT = 7500

# (metric, how it is shown, which way is better): the numbers a reader compares runs by.
HEADLINE = (
    ("eval/fsd", "FSD", "lower"),
    ("eval/fvd", "FVD", "lower"),
    ("eval/backtranslation_wer", "back-translation WER", "lower"),
    ("eval/backtranslation_bleu4", "back-translation BLEU-4", "higher"),
    ("eval/steer_gap", "steer gap (shuffled - true text WER)", "higher"),
    ("eval/temporal_consistency", "temporal consistency (SSIM)", "closer to the real videos'"),
    ("eval/temporal_consistency_real", "temporal consistency of the real videos", "reference"),
    ("eval/lpips", "LPIPS", "lower"),
    ("val/loss", "val loss (last epoch)", "lower"),
    ("summary/train_time_s", "train time (s)", "lower"),
    ("summary/steps", "optimizer steps", ""),
)


def training_run(tags: dict[str, str], metrics: dict[str, float], ablation_summary: str = "") -> str:
    """Markdown: the ablation, data, scale, seed, and the headline metrics the run has so far."""
    ablation = tags.get("ablation", "?")
    lines = [f"**{ablation}**" + (f": {ablation_summary}" if ablation_summary else ""), "",
             f"- data: `{tags.get('dataset', '?')}`" + (f" ({tags['data/samples']})" if "data/samples" in tags else ""),
             f"- scale: `{tags.get('scale', '?')}`, seed {tags.get('seed', '?')}"]
    if "study" in tags:
        lines.append(f"- study: `{tags['study']}`")
    if "registry/model" in tags:
        lines.append(f"- registered as `{tags['registry/model']}`")
    shown = [(label, metrics[key], better) for key, label, better in HEADLINE if key in metrics]
    if shown:
        lines += ["", "| metric | value | better |", "| --- | --- | --- |"]
        lines += [f"| {label} | {value:.4g} | {better} |" for label, value, better in shown]
    if not any(key.startswith("eval/") for key in metrics):
        lines += ["", "Not evaluated yet (`mlflow run . -e evaluate -P run_id=<this run> --env-manager local`)."]
    return fit("\n".join(lines))


def study_run(table_markdown: str, champion: str | None, analysis_run_id: str) -> str:
    """Markdown: the study's comparison table, as `analyze` last computed it."""
    head = [f"**Comparison** (by analysis run `{analysis_run_id}`; the full report is among its artifacts).", ""]
    tail = ["", champion] if champion else []
    return fit("\n".join([*head, table_markdown.strip(), *tail]))


def fit(text: str) -> str:
    """`text` cut at the last whole line that fits in a tag, saying so."""
    if len(text) <= _NOTE_LIMIT:
        return text
    cut = text[: _NOTE_LIMIT - 80].rsplit("\n", 1)[0]
    return cut + "\n\n(cut here to fit MLflow's description limit)"


def refresh_after_evaluation(client, run_id: str) -> None:
    """Rewrite the run's description from what it now holds, and give its registered version the same."""
    from ablations import ablation_summary
    from text2sign.config import ConfigError

    run = client.get_run(run_id)
    tags, metrics = run.data.tags, run.data.metrics
    try:
        summary = ablation_summary(tags.get("ablation", ""))
    except ConfigError:  # an ablation file given by path on another machine
        summary = ""
    text = training_run(tags, metrics, summary)
    client.set_tag(run_id, NOTE, text)
    model = tags.get("registry/model")
    if model and "/" in model:
        name, version = model.rsplit("/", 1)
        client.update_model_version(name, version, description=text)
