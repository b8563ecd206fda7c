"""The model registry: registering the generator (`generator_registry.py`) and the recognizer
(`recognizer_registry.py`), the code each is logged as (`generator_model.py`, `recognizer_model.py`: MLflow
models-from-code) and the SHA-256 check of their weights (`integrity.py`).
"""
