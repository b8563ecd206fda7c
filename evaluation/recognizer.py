"""Kept for registered recognizers logged before the layout of issue 30: moved to `evaluation/judge/recognizer.py`.

A registered version is its code (MLflow models-from-code), stored with it when it was logged, and the
`recognizer_model.py` of those versions runs `from evaluation.recognizer import SignRecognizer` when it
loads. This module keeps them loading; new code imports `evaluation.judge.recognizer`.
"""

from evaluation.judge.recognizer import SignRecognizer

__all__ = ["SignRecognizer"]
