"""Quality of discrete speech units against frame-level phone labels.

Definitions follow HuBERT (Hsu et al. 2021, sec. IV-F), which DinoSR's unit analysis reuses. With
``p(phone, unit)`` the joint distribution estimated from aligned frame counts:

- phone purity   = E_unit [ max_phone p(phone | unit) ] = sum_unit max_phone p(phone, unit)
  (how well one unit predicts one phone; averaged over units weighted by how often they occur);
- cluster purity = E_phone [ max_unit p(unit | phone) ] = sum_phone max_unit p(phone, unit)
  (how concentrated each phone is on one unit);
- PNMI           = I(phone; unit) / H(phone)
  (fraction of the phone entropy that knowing the unit removes);
- code perplexity = exp(H(unit)) with H the entropy of the unit marginal (nats);
- active codewords = number of units with at least one frame.

Everything is numpy and vectorised; only the joint count matrix ``[phone, unit]`` is needed.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Dict

import numpy as np


def joint_counts(phones: np.ndarray, units: np.ndarray, num_phones: int, num_units: int) -> np.ndarray:
    """Count frames per (phone, unit) pair.

    Args:
        phones: integer phone ids, shape ``[frame]``, values in ``[0, num_phones)``.
        units: integer unit ids, shape ``[frame]``, values in ``[0, num_units)``.
    Returns:
        int64 counts, shape ``[num_phones, num_units]``.
    """
    phones = np.asarray(phones, dtype=np.int64).reshape(-1)
    units = np.asarray(units, dtype=np.int64).reshape(-1)
    if phones.shape != units.shape:
        raise ValueError(f"phones ({phones.shape[0]} frames) and units ({units.shape[0]} frames) differ in length")
    if phones.size and (phones.min() < 0 or phones.max() >= num_phones):
        raise ValueError(f"phone ids must lie in [0, {num_phones}); got [{phones.min()}, {phones.max()}]")
    if units.size and (units.min() < 0 or units.max() >= num_units):
        raise ValueError(f"unit ids must lie in [0, {num_units}); got [{units.min()}, {units.max()}]")
    flat = np.bincount(phones * num_units + units, minlength=num_phones * num_units)
    return flat.reshape(num_phones, num_units)


def _joint_probability(counts: np.ndarray) -> np.ndarray:
    counts = np.asarray(counts, dtype=np.float64)
    if counts.ndim != 2:
        raise ValueError(f"joint counts must be a [phone, unit] matrix; got shape {counts.shape}")
    total = counts.sum()
    if total <= 0:
        raise ValueError("joint counts are empty: no aligned frames")
    return counts / total


def _entropy(probability: np.ndarray) -> float:
    """Entropy in nats of a distribution (zeros contribute nothing)."""
    nonzero = probability[probability > 0]
    return float(-(nonzero * np.log(nonzero)).sum())


def phone_purity(counts: np.ndarray) -> float:
    """E_unit[max_phone p(phone | unit)] from joint counts ``[phone, unit]``."""
    return float(_joint_probability(counts).max(axis=0).sum())


def cluster_purity(counts: np.ndarray) -> float:
    """E_phone[max_unit p(unit | phone)] from joint counts ``[phone, unit]``."""
    return float(_joint_probability(counts).max(axis=1).sum())


def mutual_information(counts: np.ndarray) -> float:
    """I(phone; unit) in nats from joint counts ``[phone, unit]``."""
    joint = _joint_probability(counts)
    phone_marginal = joint.sum(axis=1, keepdims=True)
    unit_marginal = joint.sum(axis=0, keepdims=True)
    nonzero = joint > 0
    ratio = joint[nonzero] / (phone_marginal @ unit_marginal)[nonzero]
    return float((joint[nonzero] * np.log(ratio)).sum())


def phone_normalized_mutual_information(counts: np.ndarray) -> float:
    """PNMI = I(phone; unit) / H(phone); 0 when there is a single phone (H = 0)."""
    phone_entropy = _entropy(_joint_probability(counts).sum(axis=1))
    if phone_entropy == 0.0:
        return 0.0
    return mutual_information(counts) / phone_entropy


def code_perplexity(counts: np.ndarray) -> float:
    """exp(entropy of the unit marginal); ``counts`` is ``[phone, unit]`` or per-unit counts ``[unit]``."""
    counts = np.asarray(counts, dtype=np.float64)
    unit_counts = counts.sum(axis=0) if counts.ndim == 2 else counts
    total = unit_counts.sum()
    if total <= 0:
        raise ValueError("unit counts are empty")
    return float(np.exp(_entropy(unit_counts / total)))


def active_codewords(counts: np.ndarray) -> int:
    """Number of units used at least once; ``counts`` is ``[phone, unit]`` or ``[unit]``."""
    counts = np.asarray(counts)
    unit_counts = counts.sum(axis=0) if counts.ndim == 2 else counts
    return int((unit_counts > 0).sum())


@dataclass(frozen=True)
class UnitQuality:
    """All unit metrics of one unit sequence against phones."""

    active_codewords: int
    codebook_size: int
    code_perplexity: float
    cluster_purity: float
    phone_purity: float
    pnmi: float
    num_frames: int

    def to_dict(self) -> Dict[str, float]:
        return asdict(self)


def unit_quality(counts: np.ndarray) -> UnitQuality:
    """Every metric from joint counts ``[phone, unit]`` (the unit axis length is the codebook size)."""
    counts = np.asarray(counts)
    return UnitQuality(
        active_codewords=active_codewords(counts),
        codebook_size=int(counts.shape[1]),
        code_perplexity=code_perplexity(counts),
        cluster_purity=cluster_purity(counts),
        phone_purity=phone_purity(counts),
        pnmi=phone_normalized_mutual_information(counts),
        num_frames=int(counts.sum()),
    )
