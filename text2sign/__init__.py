"""text2sign: a text-to-sign-language video diffusion model. The library; it knows nothing of MLflow.

Read in this order: config.py (what a run is), data/ (the corpus), text_encoder.py, models/ (the
network), diffusion.py (the process), pipeline.py (sampling), training/ (the loop, in training/trainer.py).
"""

__version__ = "0.1.0"
