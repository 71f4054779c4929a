"""Span masking with the semantics of fairseq ``compute_mask_indices`` (static lengths).

Per utterance with ``T_i`` valid frames: ``num_mask = max(min_masks, int(mask_prob * T_i / mask_length + U(0,1)))``
span starts drawn without replacement from the first ``T_i - mask_length`` positions, each span covers
``mask_length`` frames, spans may overlap (so mask_prob 0.8, length 10 masks ~57% of frames). With
``require_same_masks`` every row is then randomly thinned to the batch's smallest masked count.
"""
from typing import Optional

import torch
from torch import Tensor


def _uniform(generator: Optional[torch.Generator]) -> float:
    return float(torch.rand((), generator=generator))


def compute_span_mask(batch: int, frames: int, padding_mask: Optional[Tensor], mask_prob: float,
                      mask_length: int, min_masks: int = 1, require_same_masks: bool = True,
                      generator: Optional[torch.Generator] = None) -> Tensor:
    """Boolean ``[batch, frames]`` mask, True = masked; never True on padded frames.

    ``padding_mask``: optional ``[batch, frames]``, True = padded frame. Computed on CPU.
    """
    mask = torch.zeros(batch, frames, dtype=torch.bool)
    if mask_prob <= 0 or frames == 0:
        return mask
    if padding_mask is not None:
        valid_frames = (~padding_mask.bool()).sum(dim=1).cpu().tolist()
    else:
        valid_frames = [frames] * batch
    shared_num_mask = max(min_masks, int(mask_prob * frames / float(mask_length) + _uniform(generator)))
    rows = []
    for index in range(batch):
        size = int(valid_frames[index])
        if padding_mask is not None:
            num_mask = max(min_masks, int(mask_prob * size / float(mask_length) + _uniform(generator)))
        else:
            num_mask = shared_num_mask
        span = mask_length if mask_length > 0 else min(mask_length, size - 1)
        min_length = span
        if size - min_length <= num_mask:
            min_length = size - num_mask - 1
        num_starts = size - min_length
        if size <= 0 or num_starts <= 0:
            rows.append(torch.zeros(0, dtype=torch.long))
            continue
        num_mask = min(num_mask, num_starts)
        starts = torch.randperm(num_starts, generator=generator)[:num_mask]
        indices = (starts[:, None] + torch.arange(span)[None, :]).reshape(-1)
        rows.append(torch.unique(indices[indices < size]))
    smallest = min(len(row) for row in rows)
    for index, row in enumerate(rows):
        if require_same_masks and len(row) > smallest:
            row = row[torch.randperm(len(row), generator=generator)[:smallest]]
        mask[index, row] = True
    return mask
