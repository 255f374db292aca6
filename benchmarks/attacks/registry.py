"""Every configured attack, by name; parsing of attack lists from the CLI and from TOML files.

Names say the parameter: ``mp3_64k`` (kbps), ``lowpass_6k`` (Hz), ``noise_white_20db`` (SNR dB),
``speed_+5%`` (tempo percent), ``pitch_-1st`` (semitones), ``crop_5s`` (seconds).

A TOML attack list holds registered names and/or new instances::

    attacks = ["mp3_64k", "speed_+5%"]

    [[attack]]
    type = "Lowpass"        # class name in benchmarks.attacks
    name = "lowpass_5k"
    cutoff_hz = 5000

    [[attack]]
    type = "Cascade"
    name = "mp3_then_noise"
    steps = ["mp3_64k", "noise_white_30db"]
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

from benchmarks.attacks.base import Attack, NoAttack
from benchmarks.attacks.cascades import Cascade
from benchmarks.attacks.codecs import Aac, Mp3, Opus, Vorbis
from benchmarks.attacks.dynamics import Compress, DcOffset, PolarityInversion, StereoToMono, Volume
from benchmarks.attacks.filters import Bandpass, Echo, Highpass, Lowpass, ParametricEq, Resample, RoomReverb
from benchmarks.attacks.mixing import MixOther, ReRecording
from benchmarks.attacks.noise import PinkNoise, Requantize, WhiteNoise
from benchmarks.attacks.time import (
    Crop,
    CutOut,
    Insert,
    Montage,
    Offset,
    PitchShift,
    SampleDrop,
    Speed,
    Splice,
    TimeStretch,
)
from provenance.core.errors import ConfigError, InputError

ATTACK_TYPES: dict[str, type[Attack]] = {
    cls.__name__: cls
    for cls in (
        NoAttack, Mp3, Aac, Opus, Vorbis, Lowpass, Highpass, Bandpass, ParametricEq, Resample, Echo, RoomReverb,
        WhiteNoise, PinkNoise, Requantize, Volume, Compress, PolarityInversion, DcOffset, StereoToMono,
        Crop, Offset, CutOut, Insert, Montage, Splice, Speed, TimeStretch, PitchShift, SampleDrop,
        MixOther, ReRecording, Cascade,
    )
}
"""Attack classes by class name (for TOML lists)."""


def _pct(p: float) -> str:
    return f"{p:+g}%"


def _default_attacks() -> list[Attack]:
    a: list[Attack] = [NoAttack(name="none")]
    # codecs
    a += [Mp3(name=f"mp3_{k}k", bitrate_kbps=k) for k in (320, 128, 64, 32)]
    a += [Aac(name=f"aac_{k}k", bitrate_kbps=k) for k in (128, 96, 64)]
    a += [Opus(name=f"opus_{k}k", bitrate_kbps=k) for k in (64, 48, 32, 16)]
    a += [Vorbis(name="vorbis_q2", quality=2.0)]
    # signal
    a += [Resample(name=n, target_rate_hz=r) for n, r in
          (("resample_8k", 8000), ("resample_16k", 16000), ("resample_22k", 22050))]
    a += [Lowpass(name="lowpass_3.5k", cutoff_hz=3500.0), Lowpass(name="lowpass_6k", cutoff_hz=6000.0)]
    a += [Highpass(name="highpass_500", cutoff_hz=500.0)]
    a += [Bandpass(name="bandpass_300_3400", low_hz=300.0, high_hz=3400.0)]
    a += [ParametricEq(name="eq_+6db", gain_db=6.0), ParametricEq(name="eq_-6db", gain_db=-6.0)]
    a += [Requantize(name="requant_8bit", bits=8)]
    for snr in (30, 20, 10):
        a += [WhiteNoise(name=f"noise_white_{snr}db", snr_db=float(snr))]
    for snr in (30, 20, 10):
        a += [PinkNoise(name=f"noise_pink_{snr}db", snr_db=float(snr))]
    a += [Volume(name="volume_x0.1", gain=0.1), Volume(name="volume_x0.25", gain=0.25),
          Volume(name="volume_x4_clip", gain=4.0, clip=True)]
    a += [Compress(name="compress")]
    a += [Echo(name="echo_100ms", delay_s=0.1, gain_db=-6.0)]
    a += [RoomReverb(name="reverb_room")]
    a += [PolarityInversion(name="polarity_invert"), DcOffset(name="dc_offset", offset_fs=0.05)]
    a += [StereoToMono(name="stereo_to_mono")]
    # time
    a += [Crop(name="crop_5s", duration_s=5.0)]
    a += [Offset(name="offset_trim_0.5blk", block_fraction=0.5),
          Offset(name="offset_trim_0.37blk", block_fraction=0.37),
          Offset(name="offset_pad_0.25blk", block_fraction=0.25, pad=True)]
    a += [CutOut(name="cut_1s", duration_s=1.0)]
    a += [Insert(name="insert_2s", duration_s=2.0)]
    a += [Montage(name="montage_3x2s", pieces=3, piece_s=2.0)]
    a += [Splice(name="splice_marked", first_fraction=0.6)]
    a += [Speed(name=f"speed_{_pct(p)}", percent=float(p)) for p in (5, -5, 10, -10)]
    a += [TimeStretch(name=f"stretch_{_pct(p)}", percent=float(p)) for p in (5, -5, 10, -10)]
    a += [PitchShift(name=f"pitch_{s:+d}st", semitones=float(s)) for s in (1, -1, 2, -2)]
    a += [PitchShift(name=f"pitch_formants_{s:+d}st", semitones=float(s), preserve_formants=True)
          for s in (1, -1)]
    a += [SampleDrop(name="drop_samples_0.1%", percent=0.1)]
    # mixing
    a += [MixOther(name="mix_-10db", level_db=-10.0), MixOther(name="mix_0db", level_db=0.0)]
    a += [ReRecording(name="rerecord")]
    # cascades
    by = {x.name: x for x in a}
    a += [Cascade(name="cascade_mp3_128k_aac_64k", steps=(by["mp3_128k"], by["aac_64k"]))]
    a += [Cascade(name="cascade_mp3_64k_resample_22k_noise_30db",
                  steps=(by["mp3_64k"], by["resample_22k"], by["noise_white_30db"]))]
    a += [Cascade(name="cascade_speed_+5%_aac_64k", steps=(by["speed_+5%"], by["aac_64k"]))]
    return a


_REGISTRY: dict[str, Attack] = {}


def register(attack: Attack, *, replace: bool = False) -> Attack:
    """Add ``attack`` under its name (an error if the name is taken, unless ``replace``)."""
    if attack.name in _REGISTRY and not replace:
        raise ConfigError(f"an attack named {attack.name!r} is already registered")
    _REGISTRY[attack.name] = attack
    return attack


for _a in _default_attacks():
    register(_a)

QUICK_ATTACKS: tuple[str, ...] = ("mp3_64k", "aac_96k", "noise_white_20db", "crop_5s", "speed_+5%")
"""The attacks of ``--quick`` runs (CI): one per family that matters most."""

ISSUE2_ATTACKS: tuple[str, ...] = (
    "mp3_128k", "mp3_64k", "aac_96k", "opus_48k", "resample_16k", "noise_white_20db",
    "lowpass_6k", "volume_x0.25", "volume_x4_clip", "crop_5s", "stereo_to_mono",
)
"""The robustness list of the first watermark issue (acceptance item 2)."""


def get_attack(name: str) -> Attack:
    """The registered attack called ``name``; :class:`InputError` listing close names otherwise."""
    if not isinstance(name, str):
        raise InputError(f"an attack is named by a string, got {type(name).__name__}")
    try:
        return _REGISTRY[name]
    except KeyError:
        import difflib

        # names are lower case: MP3_64K is mp3_64k, which difflib alone ranks far off
        same = [n for n in _REGISTRY if n.lower() == name.lower()]
        close = same or difflib.get_close_matches(name.lower(), list(_REGISTRY), n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else " (`foleyseal bench attacks` lists them)"
        raise InputError(f"unknown attack {name!r}{hint}") from None


def list_attacks(kind: str | None = None) -> list[str]:
    """Names of all registered attacks, in registration order, optionally of one ``kind``
    (``none`` is the identity reference)."""
    return [n for n, a in _REGISTRY.items() if kind is None or a.kind == kind]


def parse_attacks(spec: str) -> list[Attack]:
    """Attacks from a comma-separated list of names (``"mp3_64k,speed_+5%"``); ``all`` = every one."""
    if not isinstance(spec, str):
        raise InputError(f"attacks are given as comma-separated names in a string, got {type(spec).__name__}")
    names = [s.strip() for s in spec.split(",") if s.strip()]
    if not names:
        raise InputError("empty attack list")
    if names == ["all"]:
        return [_REGISTRY[n] for n in list_attacks()]
    return _unique([get_attack(n) for n in names], "--attacks")


def _unique(attacks: list[Attack], where: str) -> list[Attack]:
    """``attacks``, refusing a name given twice: trials are keyed by attack name, so a second
    attack under one name would be counted as the first (or the first twice)."""
    seen: set[str] = set()
    for a in attacks:
        if a.name in seen:
            raise ConfigError(f"{where}: attack {a.name!r} is listed twice")
        seen.add(a.name)
    return attacks


def _check_fields(cls: type[Attack], values: dict[str, Any], where: str) -> None:
    """Each parameter in ``values`` (a TOML table's, for an attack of type ``cls``) has its
    declared type (a TOML string is no number). Checked before the attack is made, whose
    ``__post_init__`` checks the values each unit allows: compared first, "64k" gave Python's
    "'<=' not supported between instances of 'float' and 'str'"."""
    import dataclasses
    import math
    import typing

    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.name not in values:
            continue  # its default; an unknown key is refused when the attack is made
        v, t = values[f.name], hints.get(f.name)
        if t is float:
            ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
        elif t is int:
            ok = isinstance(v, int) and not isinstance(v, bool)
        elif t in (str, bool):
            ok = isinstance(v, t)
        else:
            continue
        if not ok:
            what = {float: "a finite number", int: "a whole number", str: "a string", bool: "true or false"}[t]
            raise ConfigError(f"{where}: attack {values.get('name')!r}: {f.name} must be {what}, got {v!r}")


def _try_on_noise(attack: Attack, where: str) -> None:
    """Run ``attack`` on 2 s of seeded stereo noise at 44.1 kHz: a parameter that makes it fail
    or return no audio is refused before a run, not found in every trial's error."""
    import importlib.util

    import numpy as np

    from provenance.core.audio import Audio

    if any(importlib.util.find_spec(m) is None for m in attack.requires):
        return  # the run itself reports what is missing
    noise = np.random.default_rng(0).standard_normal((2, 88_200)).astype(np.float32) * np.float32(0.1)
    try:
        out = attack.run(Audio(noise, 44_100), np.random.default_rng(0)).audio
    except Exception as exc:
        raise ConfigError(
            f"{where}: attack {attack.name!r} fails on 2 s of test noise: {type(exc).__name__}: {exc}"
        ) from None
    if out.frames == 0 or not np.isfinite(out.samples).all():
        raise ConfigError(f"{where}: attack {attack.name!r} turns 2 s of test noise into no usable audio")


def attack_from_dict(d: dict[str, Any], *, where: str = "attack list") -> Attack:
    """Build one attack from a TOML table with ``type``, ``name`` and the class's parameters,
    checked (types, units) and tried once on test noise."""
    if not isinstance(d, dict):
        raise ConfigError(f"{where}: an attack must be a table ([[attack]] or {{ type = ..., name = ... }}), got {d!r}")
    d = dict(d)
    type_name = d.pop("type", None)
    if type_name not in ATTACK_TYPES:
        raise ConfigError(f"{where}: unknown attack type {type_name!r}; known: {', '.join(sorted(ATTACK_TYPES))}")
    name = d.get("name")
    if not isinstance(name, str) or not name.strip() or any(c in name for c in ",|"):
        # commas separate --attacks; bars separate the columns of the summary's tables
        raise ConfigError(f"{where}: attack of type {type_name} needs a name (a non-empty string without , or |)")
    if name in _REGISTRY:
        raise ConfigError(f"{where}: {name!r} is the name of a registered attack; give this {type_name} another name")
    if type_name == "Cascade":
        steps = d.get("steps", ())
        if not isinstance(steps, list) or not steps:
            raise ConfigError(f"{where}: cascade {name!r} needs a non-empty list of steps")
        try:
            d["steps"] = tuple(get_attack(s) if isinstance(s, str) else attack_from_dict(s, where=where) for s in steps)
        except InputError as exc:
            raise ConfigError(f"{where}: cascade {name!r}: {exc.message}") from None
    for k, v in list(d.items()):
        if isinstance(v, list):
            d[k] = tuple(v)
    _check_fields(ATTACK_TYPES[type_name], d, where)
    try:
        attack = ATTACK_TYPES[type_name](**d)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: bad parameters for {type_name}: {exc}") from None
    except InputError as exc:  # a value no attack can mean (Attack.__post_init__)
        raise ConfigError(f"{where}: {exc.message}") from None
    _try_on_noise(attack, where)
    return attack


def load_attack_list(path: str | Path) -> list[Attack]:
    """Attacks named (``attacks = [...]``) and/or defined (``[[attack]]`` tables) in a TOML file."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError("attack list not found", path=path) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"not a valid TOML attack list: {exc}", path=path) from None
    unknown = sorted(set(data) - {"attacks", "attack"})
    if unknown:
        # a typo (``atacks = [...]``) dropped its attacks without a word
        raise ConfigError(f"unknown key(s) {unknown} in the attack list; it holds `attacks = [...]` "
                          "and [[attack]] tables", path=path)
    names, tables = data.get("attacks", []), data.get("attack", [])
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ConfigError("`attacks` must be a list of attack names, e.g. attacks = [\"mp3_64k\"]", path=path)
    if not isinstance(tables, list):
        raise ConfigError("attacks are defined in [[attack]] tables (double brackets), not [attack]", path=path)
    out: list[Attack] = []
    for n in names:
        try:
            out.append(get_attack(n))
        except InputError as exc:
            raise ConfigError(exc.message, path=path) from None
    for table in tables:
        out.append(attack_from_dict(table, where=str(path)))
    if not out:
        raise ConfigError("attack list names no attacks (expected `attacks = [...]` or [[attack]] tables)", path=path)
    return _unique(out, str(path))
