"""ESPnet's ``--<name>_conf`` command-line values are parsed without constructing Python objects.

ESPnet's ``NestedDictAction`` (every ``--encoder_conf``, ``--optim_conf``, ... option) parses
``key=value`` with ``yaml.load(Loader=yaml.Loader)``, whose ``!!python/object/apply:`` tags call
arbitrary functions, and a whole-dict value with ``eval``. ``safe_conf_options()`` makes the
commands of this project (``bin.asr_train``, ``bin.dinosr_train``) parse them with
``yaml.safe_load`` and ``ast.literal_eval``: plain values, lists and mappings behave as before;
a tag that would construct an object is an error.
"""
from __future__ import annotations

import argparse
import ast
import types

import yaml


def _safe_load(stream, Loader=None):  # noqa: N803  (the signature ESPnet calls)
    try:
        return yaml.safe_load(stream)
    except yaml.YAMLError as error:  # argparse turns this into one usage error line
        raise argparse.ArgumentError(None, f"--*_conf value {stream!r} is not plain YAML (objects are "
                                           f"not constructed): {str(error).splitlines()[0]}") from None


def _literal_eval(source, globals_=None, locals_=None):
    return ast.literal_eval(source)


def safe_conf_options() -> None:
    """Idempotent: switch ESPnet's ``NestedDictAction`` to safe parsing for this process."""
    from espnet2.utils import nested_dict_action

    safe_yaml = types.SimpleNamespace(load=_safe_load, safe_load=yaml.safe_load, Loader=yaml.SafeLoader,
                                      YAMLError=yaml.YAMLError)
    nested_dict_action.yaml = safe_yaml
    # a module global shadows the builtin for the module's own `eval(...)` calls
    nested_dict_action.eval = _literal_eval
