"""ESPnet-facing adapters for ASR fine-tuning (the DinoSR encoder)."""
