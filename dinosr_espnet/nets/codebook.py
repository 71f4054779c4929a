"""Online codebooks: K codebooks of V codewords kept as EMA running sums and counts (spec 1.2 steps 9, 11; 1.3).

Codeword ``e_v = sum_v / count_v``. Everything here runs in fp32 without gradient, also under autocast.

One EMA step per *optimizer* step: the (all-reduced) statistics of every micro-batch of a step are
summed with ``accumulate`` and applied once by ``apply_accumulated`` (``DinoSRModel.on_optimizer_step``).
Assignments inside a step therefore all see the codebook as it was at the start of the step, and
``G`` processes x ``a`` accumulated micro-batches update it exactly as ``G * a`` processes would
(fairseq updates once per forward, so with ``update_freq a`` it takes ``a`` EMA steps of 1/a of the
statistics each: effective decay ~tau^a, spec pitfall 2).
"""
from typing import Tuple

import torch
from torch import Tensor, nn
from torch import distributed as dist
from torch.nn import functional as F


def distributed_sum_(tensor: Tensor) -> Tensor:
    """all_reduce(SUM) in place when torch.distributed is initialised; identity otherwise."""
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


class OnlineCodebooks(nn.Module):
    """Buffers ``sums`` ``[K, V, D]`` and ``counts`` ``[K, V]`` (fp32, checkpointed, never optimised)."""

    def __init__(self, num_codebooks: int, codebook_size: int, dim: int, decay: float = 0.9) -> None:
        super().__init__()
        self.decay = decay
        # randn(K, D, V) instance-normalised over V (each (k, d) row: zero mean, unit variance over codewords).
        initial = torch.randn(num_codebooks, dim, codebook_size)
        if not initial.is_meta:  # (a meta-device model only needs shapes)
            initial = F.instance_norm(initial)
        initial = initial.transpose(1, 2).contiguous()
        self.register_buffer("sums", initial.float())
        self.register_buffer("counts", torch.ones(num_codebooks, codebook_size, dtype=torch.float32))
        # Statistics of the micro-batches of the current optimizer step, not yet applied. Not
        # checkpointed: ESPnet saves between optimizer steps, when they are empty.
        self.register_buffer("accumulated_memory", torch.zeros_like(initial, dtype=torch.float32),
                             persistent=False)
        self.register_buffer("accumulated_count", torch.zeros(num_codebooks, codebook_size, dtype=torch.float32),
                             persistent=False)

    @property
    def num_codebooks(self) -> int:
        return self.sums.size(0)

    @property
    def codebook_size(self) -> int:
        return self.sums.size(1)

    def codewords(self) -> Tensor:
        """``[K, V, D]`` current codewords (running sum / running count)."""
        return self.sums / self.counts.unsqueeze(-1)

    @torch.no_grad()
    def assign(self, targets: Tensor) -> Tensor:
        """Nearest codeword by squared L2 (ties -> first index).

        ``targets`` ``[K, N, D]`` -> indices ``[K, N]`` (long).
        """
        with torch.autocast(device_type=targets.device.type, enabled=False):
            targets = targets.float()
            codewords = self.codewords()
            distances = (targets.pow(2).sum(-1, keepdim=True) + codewords.pow(2).sum(-1).unsqueeze(1)
                         - 2.0 * torch.bmm(targets, codewords.transpose(1, 2)))
            return distances.argmin(dim=-1)

    @torch.no_grad()
    def batch_statistics(self, targets: Tensor, indices: Tensor, synchronize: bool = True) -> Tuple[Tensor, Tensor]:
        """Per codeword ``memory`` ``[K, V, D]`` (sum of assigned targets) and ``count`` ``[K, V]``,
        summed over every process when ``synchronize`` and torch.distributed is initialised."""
        with torch.autocast(device_type=targets.device.type, enabled=False):
            one_hot = F.one_hot(indices, self.codebook_size).float()          # [K, N, V]
            memory = torch.bmm(one_hot.transpose(1, 2), targets.float())      # [K, V, D]
            count = one_hot.sum(dim=1)                                        # [K, V]
            if synchronize:
                distributed_sum_(memory)
                distributed_sum_(count)
        return memory, count

    @torch.no_grad()
    def update(self, memory: Tensor, count: Tensor) -> None:
        """EMA step on codewords used in this batch: sum <- tau*sum + (1-tau)*memory, count likewise."""
        used = count > 0
        decay = self.decay
        new_sums = decay * self.sums + (1.0 - decay) * memory.to(self.sums.dtype)
        new_counts = decay * self.counts + (1.0 - decay) * count.to(self.counts.dtype)
        self.sums.copy_(torch.where(used.unsqueeze(-1), new_sums, self.sums))
        self.counts.copy_(torch.where(used, new_counts, self.counts))

    @torch.no_grad()
    def accumulate(self, memory: Tensor, count: Tensor) -> None:
        """Add one micro-batch's (already all-reduced) ``memory`` ``[K, V, D]`` and ``count`` ``[K, V]``."""
        self.accumulated_memory.add_(memory.to(self.accumulated_memory.dtype))
        self.accumulated_count.add_(count.to(self.accumulated_count.dtype))

    @torch.no_grad()
    def apply_accumulated(self) -> None:
        """One EMA step (``update``) on the sum of the accumulated statistics, then forget them."""
        if bool((self.accumulated_count > 0).any()):
            self.update(self.accumulated_memory, self.accumulated_count)
        self.discard_accumulated()

    @torch.no_grad()
    def discard_accumulated(self) -> None:
        """Forget the accumulated statistics (a step that was skipped, e.g. on inf/NaN gradients)."""
        self.accumulated_memory.zero_()
        self.accumulated_count.zero_()
