"""Pose first, required: text -> keypoints -> video (model.pose_plan=true), refused on a corpus without keypoints.

The pose plan is already on by default wherever the corpus has keypoints (docs/keypoints.md); naming this
ablation makes it a requirement, so a run on a corpus without keypoints stops with an error instead of
training the pixel model (`pixel_only`). The planner is a small transformer that turns the caption into the
signer's keypoints in every frame, and the UNet draws the clip with that skeleton as extra input channels
(text2sign/models/pose_plan.py). The text still enters only through the text encoder.
"""

overrides = {
    "model.pose_plan": True,
}
