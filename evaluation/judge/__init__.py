"""The judge: the sign recognizer that reads generated videos back (`recognizer.py`) and its training
(`training.py`; the entry point is `mlproject/train_recognizer.py`).
"""
