"""Generators: the Generator protocol, the built-in one, external commands, entry-point plug-ins."""

from v2a_core.generators.base import SEED_LIMIT, GenerationRequest, Generator, StageProgress
from v2a_core.generators.builtin import BuiltinGenerator
from v2a_core.generators.external import ExternalCommandGenerator
from v2a_core.generators.registry import ENTRY_POINT_GROUP, available, load_generator

__all__ = [
    "ENTRY_POINT_GROUP",
    "BuiltinGenerator",
    "ExternalCommandGenerator",
    "SEED_LIMIT",
    "GenerationRequest",
    "Generator",
    "StageProgress",
    "available",
    "load_generator",
]
