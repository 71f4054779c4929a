"""data2vec (audio): regression to the average of the top-K instance-normed teacher layers."""
import math
from typing import List

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from dinosr_espnet.nets.config import DinoSRConfig
from dinosr_espnet.nets.self_distillation import SelfDistillationModel, SSLOutput
from dinosr_espnet.nets.speech_encoder import SpeechEncoderOutput


class Data2VecModel(SelfDistillationModel):
    """Same student/teacher/masking as DinoSR; ``final_proj`` (D -> D) regresses the averaged targets.

    Per masked frame: ``sum_d (x_d - y_d)^2`` (``loss_beta`` 0; smooth L1 with beta otherwise), scaled by
    ``loss_scale`` or ``1/sqrt(D)``; the loss is the mean over masked frames. No teacher freeze (data2vec
    has none).
    """

    freezes_teacher = False

    def __init__(self, config: DinoSRConfig) -> None:
        super().__init__(config)
        self.final_proj = nn.Linear(config.encoder_embed_dim, config.encoder_embed_dim)

    def compute_loss(self, student_output: SpeechEncoderOutput, time_mask: Tensor,
                     targets: List[Tensor]) -> SSLOutput:
        num_masked = int(time_mask.sum())
        target = (sum(targets) / len(targets))[time_mask]                          # [N, D] fp32
        prediction = self.final_proj(student_output.x[time_mask]).float()          # [N, D]
        if self.config.loss_beta == 0:
            per_frame = F.mse_loss(prediction, target, reduction="none").sum(dim=-1)
        else:
            per_frame = F.smooth_l1_loss(prediction, target, reduction="none",
                                         beta=self.config.loss_beta).sum(dim=-1)
        scale = self.config.loss_scale if self.config.loss_scale is not None else 1.0 / math.sqrt(target.size(-1))
        loss = per_frame.sum() * scale / max(num_masked, 1)
        with torch.no_grad():
            stats = {"loss": float(loss.detach()),
                     "target_var": float(target.var(dim=0).mean()) if num_masked > 1 else 0.0,
                     "pred_var": float(prediction.var(dim=0).mean()) if num_masked > 1 else 0.0}
        return SSLOutput(loss=loss, num_masked=num_masked, stats=stats)
