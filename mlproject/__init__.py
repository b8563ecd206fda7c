"""MLflow glue: the entry points of the MLproject file, the MLflow tracker, checkpoints as artifacts.

All MLflow calls of the toolkit live in this package; `text2sign` reports through `text2sign.training.reporting`.
"""
