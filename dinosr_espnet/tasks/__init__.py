"""ESPnet AbsTask subclasses (DinoSR pre-training), their collate functions, and the trainer and
checkpoint scopes (``trainer.py``, ``checkpoint.py``) that pre-training and fine-tuning share."""
