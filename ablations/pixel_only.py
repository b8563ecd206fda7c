"""The pixel model alone: no pose plan, the text reaches the UNet only through cross-attention.

On the synthetic corpus the baseline plans the signer's keypoints from the text first (model.pose_plan, on
wherever the corpus has keypoints); this is the model without that plan, the one the seed study trained, so
a study can show what the plan does. On a corpus without keypoints it is the baseline.
"""

overrides = {
    "model.pose_plan": False,
}
