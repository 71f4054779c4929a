"""Offline k-means baseline."""
import torch

from dinosr_espnet.analysis.kmeans import assign, fit_kmeans


def _blobs(seed: int):
    generator = torch.Generator().manual_seed(seed)
    centres = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [10.0, 10.0]])
    labels = torch.arange(4).repeat_interleave(100)
    return centres[labels] + 0.1 * torch.randn(400, 2, generator=generator), labels


def test_kmeans_recovers_separated_blobs():
    points, labels = _blobs(0)
    result = fit_kmeans(points, num_clusters=4, iterations=10, seed=0)
    predicted = assign(points, result.centroids)
    # Every true blob maps to exactly one cluster and vice versa.
    pairs = set(zip(labels.tolist(), predicted.tolist()))
    assert len(pairs) == 4 and len({p for _, p in pairs}) == 4
    assert result.inertia < 0.1


def test_kmeans_is_deterministic_for_a_seed():
    points, _ = _blobs(1)
    first = fit_kmeans(points, num_clusters=8, seed=3).centroids
    second = fit_kmeans(points, num_clusters=8, seed=3).centroids
    assert torch.equal(first, second)
