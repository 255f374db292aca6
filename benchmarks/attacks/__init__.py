"""Attacks on watermarked audio: one class per attack, parameters with units, seeded, by name.

>>> from benchmarks.attacks import get_attack
>>> out = get_attack("mp3_64k").apply(audio, numpy.random.default_rng(0))
"""

from benchmarks.attacks.base import (
    OTHER,
    PRIMARY,
    Attack,
    AttackContext,
    AttackOutput,
    MarkedSpan,
    NoAttack,
    TimePiece,
    map_spans,
)
from benchmarks.attacks.registry import (
    ATTACK_TYPES,
    ISSUE2_ATTACKS,
    QUICK_ATTACKS,
    attack_from_dict,
    get_attack,
    list_attacks,
    load_attack_list,
    parse_attacks,
    register,
)

__all__ = [
    "ATTACK_TYPES", "ISSUE2_ATTACKS", "OTHER", "PRIMARY", "QUICK_ATTACKS", "Attack", "AttackContext",
    "AttackOutput", "MarkedSpan", "NoAttack", "TimePiece", "attack_from_dict", "get_attack", "list_attacks",
    "load_attack_list", "map_spans", "parse_attacks", "register",
]
