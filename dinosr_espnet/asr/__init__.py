"""ESPnet-facing adapters for ASR fine-tuning.

- ``encoder.py``: ``DinoSREncoder``, registered as ``encoder: dinosr`` in ESPnet's ASRTask.
- ``pretrained.py``: the student out of a pre-training ``model.pth`` + ``config.yaml``.
- ``task.py``: ``DinoSRASRTask`` (``bin.asr_train``): ``--pretrained_model``, ``--trust_checkpoint``,
  self-contained fine-tuned ``config.yaml``, atomic and ordered checkpoints.
- ``update_counter.py``: optimizer-update counting for ``freeze_finetune_updates``.
- ``token_list.py``: the character CTC vocabulary (``write_char_token_list``).
"""
