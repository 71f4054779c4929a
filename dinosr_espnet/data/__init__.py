"""LibriSpeech / Libri-light preparation and the synthetic LibriSpeech-format corpus."""
