"""Unit-quality metrics (HuBERT sec. IV-F definitions) on hand-made cases with known answers."""
import math

import numpy as np
import pytest

from dinosr_espnet.analysis.unit_metrics import (
    active_codewords, cluster_purity, code_perplexity, joint_counts, mutual_information,
    phone_normalized_mutual_information, phone_purity, unit_quality)


def test_one_to_one_units_are_perfect():
    rng = np.random.default_rng(0)
    phones = rng.integers(0, 5, size=2000)
    permutation = np.array([3, 0, 4, 1, 2])
    counts = joint_counts(phones, permutation[phones], num_phones=5, num_units=8)
    quality = unit_quality(counts)
    assert quality.phone_purity == pytest.approx(1.0)
    assert quality.cluster_purity == pytest.approx(1.0)
    assert quality.pnmi == pytest.approx(1.0)
    assert quality.active_codewords == 5
    assert quality.codebook_size == 8


def test_random_units_have_pnmi_near_zero():
    rng = np.random.default_rng(1)
    phones = rng.integers(0, 10, size=200000)
    units = rng.integers(0, 16, size=200000)
    counts = joint_counts(phones, units, 10, 16)
    assert phone_normalized_mutual_information(counts) < 0.01
    # Independent units predict the phone no better than its prior.
    assert phone_purity(counts) == pytest.approx(0.1, abs=0.01)


def test_hand_computed_example_matches_exactly():
    # phone x unit counts, 10 frames:      u0 u1 u2
    counts = np.array([[3, 1, 0],      # phone a
                       [0, 2, 0],      # phone b
                       [0, 0, 4]])     # phone c
    # phone purity = sum_u max_p p(p,u) = (3 + 2 + 4) / 10
    assert phone_purity(counts) == pytest.approx(0.9, abs=1e-15)
    # cluster purity = sum_p max_u p(p,u) = (3 + 2 + 4) / 10 as well (asymmetric cases: next test).
    assert cluster_purity(counts) == pytest.approx(0.9, abs=1e-15)
    p = counts / 10.0
    pp, pu = p.sum(1), p.sum(0)
    mi = sum(p[i, j] * math.log(p[i, j] / (pp[i] * pu[j])) for i in range(3) for j in range(3) if p[i, j] > 0)
    h_phone = -sum(x * math.log(x) for x in pp)
    assert mutual_information(counts) == pytest.approx(mi, rel=1e-12)
    assert phone_normalized_mutual_information(counts) == pytest.approx(mi / h_phone, rel=1e-12)
    assert code_perplexity(counts) == pytest.approx(math.exp(-sum(x * math.log(x) for x in pu)), rel=1e-12)


def test_purities_follow_hubert_definitions_not_swapped():
    # One phone split over two units: units are pure (phone purity 1) but the phone is not concentrated.
    counts = np.array([[5, 5, 0],
                       [0, 0, 10]])
    assert phone_purity(counts) == pytest.approx(1.0)
    assert cluster_purity(counts) == pytest.approx(0.5 * 0.5 + 0.5 * 1.0)
    # Two phones merged into one unit: the reverse.
    merged = counts.T
    assert phone_purity(merged) == pytest.approx(0.75)
    assert cluster_purity(merged) == pytest.approx(1.0)


def test_perplexity_and_active_count_of_uniform_usage():
    counts = np.zeros((2, 256), dtype=np.int64)
    counts[0, :64] = 7
    assert code_perplexity(counts) == pytest.approx(64.0)
    assert active_codewords(counts) == 64


def test_joint_counts_rejects_out_of_range_ids():
    with pytest.raises(ValueError, match="unit ids"):
        joint_counts(np.array([0, 1]), np.array([0, 9]), 2, 4)
    with pytest.raises(ValueError, match="differ in length"):
        joint_counts(np.array([0, 1]), np.array([0]), 2, 4)
