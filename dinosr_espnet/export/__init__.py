"""Using DinoSR models outside this project: Hugging Face export, batched feature and unit extraction."""
