"""Kept for registered models logged before the layout of issue 30: moved to `mlproject/registry/integrity.py`.

A registered version is its code (MLflow models-from-code), stored with it when it was logged, and the
`generator_model.py`/`recognizer_model.py` of those versions run `from mlproject.integrity import
check_unchanged` when they load. This module keeps them loading; new code imports `mlproject.registry.integrity`.
"""

from mlproject.registry.integrity import SHA256_KEY, TamperedModelError, check_unchanged, sha256_of

__all__ = ["SHA256_KEY", "TamperedModelError", "check_unchanged", "sha256_of"]
