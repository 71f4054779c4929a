"""DinoSR: self-distillation with online clustering (spec 1.2 steps 9-12).

Deliberate differences from the official fairseq code (everything else follows it):

- The teacher EMA step and the update counter advance once per *optimizer* step
  (``on_optimizer_step``), not once per forward, so gradient accumulation emulates more GPUs.
- Padding: padded frames are re-zeroed before every positional-convolution block and excluded from
  the teacher's instance norm, so batch composition never changes a result (pre-training in fairseq
  crops instead of padding, so this only matters for padded batches).
- The front-end freeze at ``freeze_teacher_step`` runs the CNN/LayerNorm/projection without gradient
  (and restores them to their value at the freeze) instead of re-loading a saved state dict.
- Stats: ``ema_decay`` is reported as is (fairseq logs it multiplied by 1000).
- Codebooks are registered buffers (checkpointed, moved with the module), still fp32 and EMA-only.
- Opt-in, off by default (official): dead-codeword remedies ``codebook_reseed_after`` and
  ``codebook_init_from_targets`` (``codebook.py``); with one on, ``reseeded_codewords`` is logged.
- The codebooks take their EMA step once per optimizer step, on the statistics summed over the
  micro-batches of that step (fairseq: once per forward), so every assignment of a step uses the
  codebook as it was at the start of the step, as ``G * a`` GPUs would without accumulation.
"""
from typing import Dict, List, Optional

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from dinosr_espnet.nets.codebook import OnlineCodebooks, distributed_sum_
from dinosr_espnet.nets.config import DinoSRConfig
from dinosr_espnet.nets.self_distillation import SelfDistillationModel, SSLOutput
from dinosr_espnet.nets.speech_encoder import SpeechEncoderOutput


def perplexity(distribution_sum: Tensor) -> Tensor:
    """``exp(entropy)`` of each row of (unnormalised) ``[K, V]`` sums; ``[K]``."""
    probabilities = distribution_sum / distribution_sum.sum(dim=-1, keepdim=True).clamp(min=1e-12)
    entropy = -(probabilities * torch.log(probabilities.clamp(min=1e-12))).sum(dim=-1)
    return torch.exp(entropy)


class DinoSRModel(SelfDistillationModel):
    """Student + EMA teacher + K online codebooks + K linear heads on the student's last layer.

    Attributes: ``student`` (SpeechEncoder), ``teacher`` (EMATeacher), ``codebooks`` (OnlineCodebooks),
    ``heads`` (K x Linear(D, V)). Loss = mean over heads of the cross-entropy at masked frames,
    targets = nearest codeword (pre-update codebook) of each instance-normed teacher layer.
    """

    freezes_teacher = True

    def __init__(self, config: DinoSRConfig) -> None:
        super().__init__(config)
        num_codebooks = config.average_top_k_layers
        self.codebooks = OnlineCodebooks(num_codebooks, config.codebook_size, config.encoder_embed_dim,
                                         decay=config.codebook_decay,
                                         reseed_after=config.codebook_reseed_after,
                                         init_from_targets=config.codebook_init_from_targets)
        self.heads = nn.ModuleList(nn.Linear(config.encoder_embed_dim, config.codebook_size)
                                   for _ in range(num_codebooks))
        self._reseed_targets: Optional[Tensor] = None   # [K, N, D] targets for codebook_reseed_after
        self.last_reseeded = 0                          # codewords re-seeded at the last optimizer step

    def compute_loss(self, student_output: SpeechEncoderOutput, time_mask: Tensor,
                     targets: List[Tensor]) -> SSLOutput:
        num_masked = int(time_mask.sum())
        masked_targets = torch.stack([target[time_mask] for target in targets])    # [K, N, D] fp32
        if self.training:
            self.codebooks.initialize_from_targets_(masked_targets)                # opt-in, once; else no-op
        codeword_indices = self.codebooks.assign(masked_targets)                   # [K, N], pre-update
        student_masked = student_output.x[time_mask]                               # [N, D] final layer only
        log_probs = torch.stack([F.log_softmax(head(student_masked).float(), dim=-1)
                                 for head in self.heads])                          # [K, N, V] fp32
        if num_masked > 0:
            loss = F.nll_loss(log_probs.reshape(-1, log_probs.size(-1)), codeword_indices.reshape(-1))
        else:
            loss = log_probs.sum() * 0.0
        synchronize = self.training
        memory, count = self.codebooks.batch_statistics(masked_targets, codeword_indices, synchronize=synchronize)
        if self.training and self.config.codebook_decay < 1.0:
            self.codebooks.accumulate(memory, count)  # applied once, in on_optimizer_step
            if self.codebooks.reseed_after > 0:
                self._reseed_targets = masked_targets.detach()                     # the step's last micro-batch
        stats = self._statistics(loss, log_probs, count, synchronize)
        if self.codebooks.reseed_after > 0:
            stats["reseeded_codewords"] = float(self.last_reseeded)                # at the previous step
        return SSLOutput(loss=loss, num_masked=num_masked, stats=stats)

    @torch.no_grad()
    def on_optimizer_step(self) -> None:
        """Teacher EMA / counter / freeze (``SelfDistillationModel``), then one codebook EMA step on the
        statistics accumulated since the previous optimizer step."""
        super().on_optimizer_step()
        step_count = self.codebooks.accumulated_count.clone() if self.codebooks.reseed_after > 0 else None
        self.codebooks.apply_accumulated()
        if step_count is not None and self._reseed_targets is not None and bool((step_count > 0).any()):
            # opt-in remedy: N counts optimizer steps; new rows come from the step's last micro-batch
            self.last_reseeded = self.codebooks.reseed_unused_(step_count, self._reseed_targets)
            self._reseed_targets = None

    def discard_accumulated(self) -> None:
        self.codebooks.discard_accumulated()

    @torch.no_grad()
    def _statistics(self, loss: Tensor, log_probs: Tensor, count: Tensor, synchronize: bool) -> Dict[str, float]:
        prediction_sum = log_probs.detach().exp().sum(dim=1)                       # [K, V]
        if synchronize:
            distributed_sum_(prediction_sum)
        active = (count > 0).sum(dim=-1).float()                                   # [K]
        stats = {
            "loss": float(loss.detach()),
            "target_ppl": float(perplexity(count).mean()),
            "pred_ppl": float(perplexity(prediction_sum).mean()),
            "active_codewords": float(active.mean()),
        }
        for index, value in enumerate(active.tolist()):
            stats[f"active_codewords_{index}"] = value
        return stats
