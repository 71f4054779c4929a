"""ESPnet's ASRTask with fairseq's initialisation of the CTC output layer.

fairseq's ``wav2vec_ctc`` projects the encoder output with its ``Linear`` helper: xavier-uniform
weight, zero bias (dinosr_spec.md section 3). ESPnet's ``CTC`` builds ``ctc_lo`` as a plain
``torch.nn.Linear`` (PyTorch's default kaiming-uniform weight and a random bias). ``DinoSRASRTask``
re-initialises ``ctc_lo`` the fairseq way for ``encoder: dinosr`` models, unless ``--init`` asks
for an ESPnet initialisation of the whole model. Everything else is ESPnet's ``ASRTask``.
"""
from __future__ import annotations

import argparse

import torch
from espnet2.tasks.asr import ASRTask


def initialize_ctc_output(linear: torch.nn.Linear) -> None:
    """fairseq ``Linear``: ``xavier_uniform_`` weight, zero bias."""
    torch.nn.init.xavier_uniform_(linear.weight)
    if linear.bias is not None:
        torch.nn.init.zeros_(linear.bias)


class DinoSRASRTask(ASRTask):
    @classmethod
    def build_model(cls, args: argparse.Namespace):
        model = super().build_model(args)
        ctc = getattr(model, "ctc", None)
        if args.encoder == "dinosr" and getattr(args, "init", None) is None and ctc is not None:
            initialize_ctc_output(ctc.ctc_lo)
        return model
