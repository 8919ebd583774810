"""The angular distance: the angle between two embeddings, in units of pi (0 to 1)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def angular_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``arccos(cos(a_i, b_i)) / pi``: a true metric on directions, unlike ``1 - cos``."""
    cosine = F.cosine_similarity(a, b, dim=1, eps=1e-12).clamp(-1.0, 1.0)
    return torch.arccos(cosine) / math.pi
