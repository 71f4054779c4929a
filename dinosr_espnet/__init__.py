"""dinosr-espnet: DinoSR (arXiv 2305.10005) as an ESPnet plug-in.

Importing this package is cheap: it does not import ESPnet. It arranges for this project's
classes to be added to ESPnet's module-level ``ClassChoices`` registries the moment ESPnet's
task modules are imported (or at once, if they already are), so that ``encoder: dinosr``
works in any ESPnet config built after ``import dinosr_espnet``. See ``registry.py``.
"""
from dinosr_espnet.registry import install_registration_hook

__version__ = "0.1.0"

install_registration_hook()
