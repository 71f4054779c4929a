"""Online codebooks: K codebooks of V codewords kept as EMA running sums and counts (spec 1.2 steps 9, 11; 1.3).

Codeword ``e_v = sum_v / count_v``. Everything here runs in fp32 without gradient, also under autocast.

Two opt-in remedies for dead codewords, not in the paper or the official code (both off by default,
which is the official behaviour: a codeword that is never nearest never moves):

- ``reseed_after = N > 0``: a codeword that was nearest to no target for N consecutive codebook
  updates is re-seeded to a random target row of the current batch (count reset to 1).
  (``reseed_unused_``, called right after ``update``.)
- ``init_from_targets``: before the first training assignment, every codeword is set to a distinct
  random target row of that batch instead of the random instance-normalised init.
  (``initialize_from_targets_``, called before ``assign``.)

Under torch.distributed the random rows are drawn on rank 0 and broadcast, and the unused counter is
driven by the all-reduced counts, so every rank keeps the same codebooks.

One EMA step per *optimizer* step: the (all-reduced) statistics of every micro-batch of a step are
summed with ``accumulate`` and applied once by ``apply_accumulated`` (``DinoSRModel.on_optimizer_step``).
Assignments inside a step therefore all see the codebook as it was at the start of the step, and
``G`` processes x ``a`` accumulated micro-batches update it exactly as ``G * a`` processes would
(fairseq updates once per forward, so with ``update_freq a`` it takes ``a`` EMA steps of 1/a of the
statistics each: effective decay ~tau^a, spec pitfall 2).
"""
from typing import Optional, Tuple

import torch
from torch import Tensor, nn
from torch import distributed as dist
from torch.nn import functional as F


def distributed_sum_(tensor: Tensor) -> Tensor:
    """all_reduce(SUM) in place when torch.distributed is initialised; identity otherwise."""
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def distributed_broadcast_(tensor: Tensor, source: int = 0) -> Tensor:
    """broadcast from rank ``source`` in place when torch.distributed is initialised; identity otherwise."""
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        dist.broadcast(tensor, src=source)
    return tensor


def _is_rank_zero() -> bool:
    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0


def random_rows(rows: Tensor, number: int) -> Optional[Tensor]:
    """``number`` random rows of ``rows`` ``[N, D]`` (distinct while N allows), or None when N = 0.

    Uses the global torch RNG of ``rows``' device, so a seeded run is repeatable.
    """
    if rows.size(0) == 0:
        return None
    if rows.size(0) >= number:
        picked = torch.randperm(rows.size(0), device=rows.device)[:number]
    else:
        picked = torch.randint(rows.size(0), (number,), device=rows.device)
    return rows[picked]


class OnlineCodebooks(nn.Module):
    """Buffers ``sums`` ``[K, V, D]`` and ``counts`` ``[K, V]`` (fp32, checkpointed, never optimised)."""

    def __init__(self, num_codebooks: int, codebook_size: int, dim: int, decay: float = 0.9,
                 reseed_after: int = 0, init_from_targets: bool = False) -> None:
        super().__init__()
        self.decay = decay
        if reseed_after < 0:
            raise ValueError(f"reseed_after must be >= 0 (0 = off), got {reseed_after}")
        self.reseed_after = reseed_after
        self.init_from_targets = init_from_targets
        # randn(K, D, V) instance-normalised over V (each (k, d) row: zero mean, unit variance over codewords).
        initial = torch.randn(num_codebooks, dim, codebook_size)
        if not initial.is_meta:  # (a meta-device model only needs shapes)
            initial = F.instance_norm(initial)
        initial = initial.transpose(1, 2).contiguous()
        self.register_buffer("sums", initial.float())
        self.register_buffer("counts", torch.ones(num_codebooks, codebook_size, dtype=torch.float32))
        # Remedy state only when a remedy is on, so the official state dict keeps {sums, counts}.
        if reseed_after > 0:
            # codebook updates since each codeword was last nearest to a target (checkpointed: exact resume)
            self.register_buffer("updates_unused", torch.zeros(num_codebooks, codebook_size, dtype=torch.long))
        if init_from_targets:
            self.register_buffer("initialized_from_targets", torch.zeros((), dtype=torch.bool))
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

    # --- opt-in dead-codeword remedies (module docstring); no-ops with the official defaults ---

    @torch.no_grad()
    def initialize_from_targets_(self, targets: Tensor) -> bool:
        """Once, with ``init_from_targets``: codewords <- distinct random rows of ``targets`` ``[K, N, D]``.

        Counts are reset to 1 (codeword = that row). Rank 0's rows are broadcast. Returns True when it
        initialised now (the flag is checkpointed, so a resumed run does not initialise again).
        """
        if not self.init_from_targets or bool(self.initialized_from_targets):
            return False
        with torch.autocast(device_type=targets.device.type, enabled=False):
            values = self.codewords().clone()                                  # [K, V, D]
            if _is_rank_zero():
                for index in range(self.num_codebooks):
                    rows = random_rows(targets[index].float(), self.codebook_size)
                    if rows is not None:
                        values[index] = rows
            distributed_broadcast_(values)
            self.sums.copy_(values)
            self.counts.fill_(1.0)
        self.initialized_from_targets.fill_(True)
        return True

    @torch.no_grad()
    def reseed_unused_(self, count: Tensor, targets: Tensor) -> int:
        """With ``reseed_after = N``, after an EMA step on ``count`` ``[K, V]``: re-seed dead codewords.

        ``count`` must be the statistics of the step just applied, summed over every process (as
        ``batch_statistics`` returns them), so each rank advances the same counter. A codeword with
        ``count == 0`` in N consecutive steps gets ``sum = `` a random row of ``targets[k]`` ``[K, N', D]``
        (rank 0's draw, broadcast), ``count = 1`` and its counter reset. Returns the number re-seeded.
        """
        if self.reseed_after <= 0:
            return 0
        used = count > 0
        self.updates_unused.copy_(torch.where(used, torch.zeros_like(self.updates_unused), self.updates_unused + 1))
        dead = self.updates_unused >= self.reseed_after                         # [K, V], equal on every rank
        number_dead = int(dead.sum())
        if number_dead == 0:
            return 0
        with torch.autocast(device_type=targets.device.type, enabled=False):
            values = self.codewords()[dead]                                    # [number_dead, D], rank-0 fallback
            if _is_rank_zero():
                start = 0
                for index, per_codebook in enumerate(dead.sum(dim=-1).tolist()):
                    if per_codebook:
                        rows = random_rows(targets[index].float(), per_codebook)
                        if rows is not None:
                            values[start:start + per_codebook] = rows
                        start += per_codebook
            distributed_broadcast_(values)
            self.sums[dead] = values
            self.counts[dead] = 1.0
        self.updates_unused[dead] = 0
        return number_dead

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
