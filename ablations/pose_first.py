"""Pose first: text -> keypoints -> video (model.pose_plan); needs a corpus with keypoints (the synthetic one).

The baseline's pixel model, with a pose planner in front: a small transformer turns the caption into the
signer's keypoints in every frame, and the UNet draws the clip with that skeleton as extra input channels
(text2sign/models/pose_plan.py). The text still enters only through the text encoder, and the UNet keeps its
cross-attention to it. Everything else is the baseline's, so the two compare in one study.
"""

overrides = {
    "model.pose_plan": True,
}
