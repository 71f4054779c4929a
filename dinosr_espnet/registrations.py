"""The list of what this project registers in ESPnet, in one place.

Each line names the ESPnet registry, the YAML name and our class (resolved lazily, only when
ESPnet itself is imported). Add a line here when a new class must be selectable from ESPnet.
"""
from dinosr_espnet.registry import add_registration  # noqa: F401

add_registration("espnet2.tasks.asr", "encoder_choices", "dinosr", "dinosr_espnet.asr.encoder:DinoSREncoder")
add_registration("espnet2.tasks.abs_task", "scheduler_classes", "fairseq_tristage", "dinosr_espnet.tasks.scheduler:TriStageLR")
