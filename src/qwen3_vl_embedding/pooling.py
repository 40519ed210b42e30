"""Normalisation and Matryoshka (MRL) truncation: small pure functions on torch tensors."""
from __future__ import annotations

import torch

MIN_DIM = 64


def l2_normalize(x: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """Rows scaled to unit L2 norm (as torch.nn.functional.normalize)."""
    return x / x.norm(p=2, dim=-1, keepdim=True).clamp_min(eps)


def check_dim(dim: int | None, full: int) -> int:
    """`dim` validated against the model's size (MIN_DIM..full); None means full."""
    if dim is None:
        return full
    if isinstance(dim, bool) or not isinstance(dim, int) or not MIN_DIM <= dim <= full:
        raise ValueError(f"dim must be an integer from {MIN_DIM} to {full} (this model's size), got {dim!r}")
    return dim


def matryoshka(x: torch.Tensor, dim: int | None, normalize: bool = True) -> torch.Tensor:
    """The first `dim` components of each row, re-normalised when `normalize`."""
    if dim is not None and dim < x.shape[-1]:
        x = x[..., :dim]
    return l2_normalize(x) if normalize else x
