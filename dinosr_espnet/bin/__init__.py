"""Command-line entry points, one module each: ``python -m dinosr_espnet.bin.NAME --help``."""
