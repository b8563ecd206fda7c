"""Where and how training processes run: Slurm jobs for a study (`slurm.py`) and stopping on a signal at a
step boundary, with a checkpoint (`graceful_stop.py`).
"""
