"""The metrics, one idea per file: FVD (`fvd/`, with its I3D in `i3d.py`, `i3d_weights.py`, `tf_resize.py`),
the Fréchet distance (`frechet.py`), LPIPS and ST-LPIPS, temporal consistency, WER and BLEU-4
(`text_metrics.py`), the pose metrics (`pose.py`), steering (`steering.py`, `pose_steering.py`) and where
pretrained weights come from (`weights.py`).
"""
