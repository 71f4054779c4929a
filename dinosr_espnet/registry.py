"""Registration of this project's classes in ESPnet's own registries.

ESPnet builds its command-line parser from module-level ``ClassChoices`` objects (for example
``espnet2.tasks.asr.encoder_choices``) and from module-level dicts in
``espnet2.tasks.abs_task`` (``optim_classes``, ``scheduler_classes``). Adding an entry to those
objects before the parser is built is enough for ``--encoder dinosr`` or ``encoder: dinosr`` in
YAML to resolve to our class.

Importing ESPnet costs ~9 s, so ``import dinosr_espnet`` must not do it. Instead a meta-path
finder waits for the ESPnet modules that own a registry to finish importing, then registers.

Each registration is a ``Registration(module, attribute, key, target)`` where ``target`` is a
dotted path ``"package.module:Class"`` resolved only when ``module`` is imported.
"""
from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
from dataclasses import dataclass
from typing import Dict, List


@dataclass(frozen=True)
class Registration:
    module: str  # ESPnet module that owns the registry, e.g. "espnet2.tasks.asr"
    attribute: str  # a ClassChoices object or a plain dict in that module
    key: str  # the name users write in YAML (lower case: ClassChoices lower-cases keys)
    target: str  # "dinosr_espnet.asr.encoder:DinoSREncoder"


# The project's registrations. Later modules add theirs with `add_registration`.
REGISTRATIONS: List[Registration] = []
_done: Dict[Registration, bool] = {}


def add_registration(module: str, attribute: str, key: str, target: str) -> None:
    """Declare that ``target`` must appear under ``key`` in ``module.attribute``."""
    registration = Registration(module, attribute, key.lower(), target)
    if registration not in REGISTRATIONS:
        REGISTRATIONS.append(registration)
    if module in sys.modules and getattr(sys.modules[module], "__spec__", None) is not None:
        _apply_pending(module)


def _resolve(target: str):
    module_name, _, class_name = target.partition(":")
    return getattr(importlib.import_module(module_name), class_name)


def _registry_dict(owner, attribute: str) -> dict:
    registry = getattr(owner, attribute)
    # ClassChoices keeps its mapping in `.classes`; abs_task's optim/scheduler registries are dicts.
    return registry.classes if hasattr(registry, "classes") else registry


def _apply_pending(module_name: str) -> None:
    owner = sys.modules[module_name]
    if not hasattr(owner, "__dict__"):
        return
    for registration in REGISTRATIONS:
        if registration.module != module_name or _done.get(registration):
            continue
        if not hasattr(owner, registration.attribute):
            continue  # module still initialising; retried when it finishes
        _registry_dict(owner, registration.attribute)[registration.key] = _resolve(registration.target)
        _done[registration] = True


def register_now() -> None:
    """Import every ESPnet module that owns a registry we use and register (used by bin/)."""
    for module_name in sorted({r.module for r in REGISTRATIONS}):
        importlib.import_module(module_name)
        _apply_pending(module_name)


class _LoaderWrapper(importlib.abc.Loader):
    """Runs the real loader, then registers into the freshly executed module."""

    def __init__(self, loader):
        self._loader = loader

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        self._loader.exec_module(module)
        _apply_pending(module.__name__)

    def __getattr__(self, name):  # get_source, get_code, ... used by tracebacks and pytest
        return getattr(self._loader, name)


class _RegistrationFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path, target=None):
        if fullname not in {r.module for r in REGISTRATIONS}:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                if spec.loader is not None:
                    spec.loader = _LoaderWrapper(spec.loader)
                return spec
        return None


_FINDER = _RegistrationFinder()


def install_registration_hook() -> None:
    """Idempotent: put the finder first on sys.meta_path and register what is already imported."""
    from dinosr_espnet import registrations  # noqa: F401  (declares the project's entries)

    if _FINDER not in sys.meta_path:
        sys.meta_path.insert(0, _FINDER)
    for module_name in {r.module for r in REGISTRATIONS}:
        if module_name in sys.modules:
            _apply_pending(module_name)
