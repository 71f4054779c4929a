"""ESPnet AbsTask subclasses (DinoSR pre-training) and their collate functions."""
