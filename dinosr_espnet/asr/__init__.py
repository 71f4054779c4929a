"""ESPnet-facing adapters for ASR fine-tuning.

- ``encoder.py``: ``DinoSREncoder``, registered as ``encoder: dinosr`` in ESPnet's ASRTask.
- ``pretrained.py``: the student out of a pre-training ``model.pth`` + ``config.yaml``.
- ``update_counter.py``: optimizer-update counting for ``freeze_finetune_updates``.
- ``token_list.py``: the character CTC vocabulary (``write_char_token_list``).
"""
