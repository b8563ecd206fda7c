"""The denoising networks. They know nothing of the noise schedule (that is `text2sign.diffusion`)."""

from text2sign.models.unet3d import UNet3D

__all__ = ["UNet3D"]
