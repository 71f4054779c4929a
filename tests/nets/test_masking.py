import torch

from dinosr_espnet.nets.masking import compute_span_mask


def _runs(row):
    """Lengths of the maximal runs of True in a 1-D bool tensor."""
    runs, current = [], 0
    for value in row.tolist() + [False]:
        if value:
            current += 1
        elif current:
            runs.append(current)
            current = 0
    return runs


def test_masked_fraction_is_about_57_percent_at_500_frames():
    generator = torch.Generator().manual_seed(0)
    fractions = [compute_span_mask(1, 500, None, 0.8, 10, generator=generator).float().mean().item()
                 for _ in range(200)]
    assert abs(sum(fractions) / len(fractions) - 0.567) < 0.01


def test_spans_are_mask_length_long_and_may_overlap():
    generator = torch.Generator().manual_seed(1)
    mask = compute_span_mask(1, 500, None, 0.8, 10, require_same_masks=False, generator=generator)
    runs = _runs(mask[0])
    assert min(runs) >= 10
    assert max(runs) > 10  # overlapping spans merge into longer runs
    assert int(mask.sum()) < int(0.8 * 500)  # overlaps: fewer than num_mask * length frames


def test_number_of_spans_is_int_of_expected_plus_uniform():
    generator = torch.Generator().manual_seed(2)
    # mask_length 1: every span is one distinct frame, so the count is num_mask itself.
    counts = [int(compute_span_mask(1, 100, None, 0.105, 1, generator=generator).sum()) for _ in range(400)]
    assert set(counts) == {10, 11}
    assert abs(sum(counts) / len(counts) - 10.5) < 0.1


def test_min_masks_guarantees_one_span():
    mask = compute_span_mask(3, 50, None, 0.0001, 10, min_masks=1)
    assert (mask.sum(dim=1) == 10).all()


def test_same_number_of_masked_frames_per_utterance():
    padding = torch.zeros(4, 300, dtype=torch.bool)
    padding[1, 200:] = True
    padding[3, 120:] = True
    for seed in range(5):
        mask = compute_span_mask(4, 300, padding, 0.8, 10, generator=torch.Generator().manual_seed(seed))
        assert len(set(mask.sum(dim=1).tolist())) == 1


def test_padded_frames_are_never_masked():
    padding = torch.zeros(3, 200, dtype=torch.bool)
    padding[0, 150:] = True
    padding[2, 37:] = True
    for seed in range(10):
        mask = compute_span_mask(3, 200, padding, 0.8, 10, require_same_masks=False,
                                 generator=torch.Generator().manual_seed(seed))
        assert not (mask & padding).any()
        assert mask[2].any()


def test_generator_makes_masks_reproducible():
    first = compute_span_mask(2, 120, None, 0.8, 10, generator=torch.Generator().manual_seed(3))
    second = compute_span_mask(2, 120, None, 0.8, 10, generator=torch.Generator().manual_seed(3))
    assert torch.equal(first, second)


def test_under_padding_each_row_draws_its_span_count_from_its_own_length():
    """fairseq: with a padding mask, num_mask = int(p * valid_frames / L + U(0,1)) per row. Spans of
    one frame cannot overlap, so the masked count *is* the span count."""
    padding = torch.zeros(3, 100, dtype=torch.bool)
    padding[1, 40:] = True
    padding[2, 70:] = True
    for seed in range(20):
        generator = torch.Generator().manual_seed(seed)
        mask = compute_span_mask(3, 100, padding, mask_prob=0.3, mask_length=1, min_masks=1,
                                 require_same_masks=False, generator=generator)
        counts = mask.sum(dim=1).tolist()
        assert counts[0] in (30, 31) and counts[1] in (12, 13) and counts[2] in (21, 22), counts
        assert not (mask & padding).any()
