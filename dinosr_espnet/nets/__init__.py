"""Pure PyTorch DinoSR building blocks. Nothing here imports ESPnet."""
