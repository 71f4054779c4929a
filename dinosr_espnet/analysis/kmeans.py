"""Offline k-means in torch: the baseline DinoSR's online codebooks are compared with.

k-means++ initialisation followed by a few Lloyd iterations, seeded (a ``torch.Generator``), with
distances computed in chunks so that a million frames x 256 centroids fits in memory.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch


def _squared_distances(points: torch.Tensor, centroids: torch.Tensor) -> torch.Tensor:
    """||x - c||^2 for points ``[N, D]`` and centroids ``[V, D]`` -> ``[N, V]`` (fp32, clamped at 0)."""
    distances = (points.pow(2).sum(1, keepdim=True) + centroids.pow(2).sum(1)[None, :]
                 - 2.0 * points @ centroids.T)
    return distances.clamp_min_(0.0)


def assign(points: torch.Tensor, centroids: torch.Tensor, chunk_size: int = 65536) -> torch.Tensor:
    """Index of the nearest centroid for every point (ties -> lowest index).

    Args:
        points: ``[N, D]``; centroids: ``[V, D]``.
    Returns:
        LongTensor ``[N]``.
    """
    centroids = centroids.float()
    pieces = [_squared_distances(points[start:start + chunk_size].float(), centroids).argmin(1)
              for start in range(0, points.shape[0], chunk_size)]
    return torch.cat(pieces) if pieces else torch.zeros(0, dtype=torch.long)


def kmeans_plus_plus(points: torch.Tensor, num_clusters: int, generator: torch.Generator) -> torch.Tensor:
    """k-means++ seeding: each next centroid drawn with probability proportional to D(x)^2.

    Returns centroids ``[num_clusters, D]``; points ``[N, D]`` with N >= num_clusters.
    """
    num_points = points.shape[0]
    first = torch.randint(num_points, (1,), generator=generator).item()
    centroids = [points[first]]
    closest = _squared_distances(points, points[first:first + 1]).squeeze(1)
    for _ in range(1, num_clusters):
        total = closest.sum()
        if total <= 0:  # fewer distinct points than clusters: duplicate an existing point
            index = torch.randint(num_points, (1,), generator=generator).item()
        else:
            index = torch.multinomial(closest / total, 1, generator=generator).item()
        centroids.append(points[index])
        closest = torch.minimum(closest, _squared_distances(points, points[index:index + 1]).squeeze(1))
    return torch.stack(centroids)


@dataclass
class KMeansResult:
    centroids: torch.Tensor  # [V, D]
    inertia: float  # mean squared distance of the points to their centroid after the last iteration
    iterations: int


def fit_kmeans(points: torch.Tensor, num_clusters: int = 256, iterations: int = 10, seed: int = 0,
               init_max_points: int = 20000) -> KMeansResult:
    """Cluster ``points [N, D]`` into ``num_clusters`` centroids (seeded, deterministic on one device).

    k-means++ runs on at most ``init_max_points`` randomly chosen points (it is O(N V)); Lloyd iterations use
    all points. An empty cluster keeps its previous centroid. Stops early when assignments stop changing.
    """
    points = points.float()
    if points.ndim != 2:
        raise ValueError(f"points must be [N, D]; got shape {tuple(points.shape)}")
    if points.shape[0] < num_clusters:
        raise ValueError(f"k-means with {num_clusters} clusters needs at least as many points; got {points.shape[0]}")
    generator = torch.Generator(device="cpu").manual_seed(seed)
    init_points = points
    if points.shape[0] > init_max_points:
        init_points = points[torch.randperm(points.shape[0], generator=generator)[:init_max_points]]
    centroids = kmeans_plus_plus(init_points, num_clusters, generator)
    previous = None
    iteration = 0
    for iteration in range(1, iterations + 1):
        labels = assign(points, centroids)
        sums = torch.zeros_like(centroids).index_add_(0, labels, points)
        counts = torch.bincount(labels, minlength=num_clusters).to(points.dtype)
        nonempty = counts > 0
        centroids = torch.where(nonempty[:, None], sums / counts.clamp_min(1.0)[:, None], centroids)
        if previous is not None and torch.equal(previous, labels):
            break
        previous = labels
    labels = assign(points, centroids)
    inertia = (points - centroids[labels]).pow(2).sum(1).mean().item()
    return KMeansResult(centroids=centroids, inertia=inertia, iterations=iteration)
