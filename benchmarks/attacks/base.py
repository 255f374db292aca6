"""The attack protocol: one class per attack, explicit parameters with units, seeded.

An attack takes a marked :class:`~provenance.core.audio.Audio` (float32 ``(channels, frames)``,
rate in Hz) and a ``numpy.random.Generator`` and returns the attacked audio. Attacks that move
audio in time (crop, cut, insert, splice, speed, stretch, sample dropping) also map the *marked
spans* of their input onto their output, so the harness can score the localization the detector
reports (:meth:`Attack.run` returns both).

Attacks that need a second clip (mixing, insertion, splicing) take it from an
:class:`AttackContext`; without one they use a deterministic signal drawn from the rng.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, ClassVar

import numpy as np
from scipy.signal import resample_poly

from provenance.core.audio import Audio
from provenance.core.errors import InputError

PRIMARY = "primary"
"""Label of spans marked with the payload under test."""
OTHER = "other"
"""Label of spans marked with another payload (the second file of a splice)."""


@dataclass(frozen=True)
class MarkedSpan:
    """A time span, seconds, that carries a watermark with the payload named by ``label``."""

    start_s: float
    end_s: float
    label: str = PRIMARY

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


@dataclass(frozen=True)
class TimePiece:
    """A stretch of the input that survives into the output.

    Input time ``t`` in ``[in_start_s, in_end_s)`` lands at output time
    ``out_start_s + (t - in_start_s) * scale`` (``scale`` < 1 when the audio is played faster).
    """

    in_start_s: float
    in_end_s: float
    out_start_s: float
    scale: float = 1.0


def map_spans(
    spans: tuple[MarkedSpan, ...], pieces: list[TimePiece], out_duration_s: float
) -> tuple[MarkedSpan, ...]:
    """Map marked input spans through surviving pieces to output time, merging neighbours.

    Spans shorter than 1 ms after mapping are dropped.
    """
    mapped: list[MarkedSpan] = []
    for span in spans:
        for p in pieces:
            a = max(span.start_s, p.in_start_s)
            b = min(span.end_s, p.in_end_s)
            if b <= a:
                continue
            oa = p.out_start_s + (a - p.in_start_s) * p.scale
            ob = p.out_start_s + (b - p.in_start_s) * p.scale
            oa, ob = max(0.0, oa), min(out_duration_s, ob)
            if ob - oa > 1e-3:
                mapped.append(MarkedSpan(oa, ob, span.label))
    return merge_spans(mapped)


def merge_spans(spans: list[MarkedSpan] | tuple[MarkedSpan, ...], gap_s: float = 1e-3) -> tuple[MarkedSpan, ...]:
    """Sort spans and merge those of the same label that touch (within ``gap_s`` seconds)."""
    out: list[MarkedSpan] = []
    for s in sorted(spans, key=lambda s: (s.start_s, s.label)):
        if out and out[-1].label == s.label and s.start_s <= out[-1].end_s + gap_s:
            out[-1] = MarkedSpan(out[-1].start_s, max(out[-1].end_s, s.end_s), s.label)
        else:
            out.append(s)
    return tuple(out)


@dataclass
class AttackContext:
    """What an attack may need beyond the audio it attacks.

    ``other_clip``: an unmarked second clip (mixing, insertion). ``other_marked``: a second clip
    marked by the same watermarker with another payload (splicing of two marked files).
    ``marked_spans``: where the input carries the mark (default: all of it, labelled primary).
    ``block_s``: the watermarker's block length, seconds (for offsets by a fraction of a block).
    """

    other_clip: Audio | None = None
    other_marked: Audio | None = None
    marked_spans: tuple[MarkedSpan, ...] | None = None
    other_marked_spans: tuple[MarkedSpan, ...] | None = None
    block_s: float = 1.0

    def spans_for(self, audio: Audio) -> tuple[MarkedSpan, ...]:
        if self.marked_spans is not None:
            return self.marked_spans
        return (MarkedSpan(0.0, audio.duration_s, PRIMARY),)

    def other_spans(self) -> tuple[MarkedSpan, ...]:
        if self.other_marked_spans is not None:
            return self.other_marked_spans
        if self.other_marked is None:
            return ()
        return (MarkedSpan(0.0, self.other_marked.duration_s, OTHER),)


@dataclass
class AttackOutput:
    """The attacked audio, where the mark now is (output seconds), and the random choices made."""

    audio: Audio
    marked_spans: tuple[MarkedSpan, ...]
    details: dict[str, Any] = field(default_factory=dict)


_RANGES: tuple[tuple[str, float, float, str], ...] = (
    # (name, or name suffix starting with "_"; lowest; highest; the requirement in words)
    ("bits", 1, 32, "1 to 32 bits"),
    ("gain", 0, 1000, "a gain factor of 0 to 1000 (x1 keeps the level)"),
    ("order", 1, 32, "a filter order of 1 to 32"),
    ("pieces", 1, 1000, "1 to 1000 pieces"),
    ("ratio", 1, 1000, "a compression ratio of 1 (none) to 1000"),
    ("semitones", -48, 48, "-48 to 48 semitones"),
    ("percent", -99, 1000, "-99 to 1000 percent"),
    ("quality", -1, 10, "a Vorbis quality of -1 to 10"),
    ("room_size", 0, 1, "0 to 1"),
    ("damping", 0, 1, "0 to 1"),
    ("width", 0, 1, "0 to 1"),
    ("_fraction", 0, 1, "a fraction of 0 to 1"),
    ("offset_fs", -1, 1, "-1 to 1 (a share of full scale)"),
    ("_db", -200, 200, "-200 to 200 dB"),
    ("_hz", 1e-3, 1e7, "above 0 Hz"),
    ("_kbps", 1e-3, 1e5, "above 0 kbps"),
    ("_ms", 0, 1e7, "0 ms or more"),
    ("_s", 0, 1e7, "0 s or more"),
)


def _out_of_range(name: str, value: float) -> str | None:
    """What the attack parameter ``name`` must be, when ``value`` is not that (else None)."""
    if not np.isfinite(value):
        return "a finite number"
    for key, lo, hi, requirement in _RANGES:
        if name == key or (key.startswith("_") and name.endswith(key)):
            return None if lo <= value <= hi else requirement
    return None


MIN_ATTACK_S = 0.1
"""The shortest audio an attack takes, seconds (a watermark trial's audio lasts seconds)."""


@dataclass(frozen=True, kw_only=True)
class Attack:
    """Base of every attack. Subclasses add their parameters as fields with units in the names.

    Subclasses that keep time override :meth:`transform`; those that move audio in time
    override :meth:`_run` and map the marked spans.
    """

    name: str
    kind: ClassVar[str] = "signal"
    """Category: ``codec``, ``signal``, ``time``, ``mixing`` or ``cascade``."""
    changes_time: ClassVar[bool] = False
    warps_time: ClassVar[bool] = False
    """True when the attack changes tempo or pitch: the mark is then off the file's own timeline
    and can only be read after a search over warps."""
    changes_channels: ClassVar[bool] = False
    changes_rate: ClassVar[bool] = False
    uses_other_marked: ClassVar[bool] = False
    """True when the attack needs ``AttackContext.other_marked`` (a second marked file)."""
    requires: ClassVar[tuple[str, ...]] = ()
    """Import names of the optional packages the attack needs (see ``benchmarks.requirements``)."""

    def __post_init__(self) -> None:
        """Refuse parameters no attack can mean (:class:`InputError` naming the attack and the
        field): an attack list asking for 0-bit requantization or noise at -500 dB SNR ran, and
        its rows measured nothing a user would cite."""
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            # a list's items by the list's name and unit: an EQ band at -100 Hz was skipped silently
            for item in value if isinstance(value, (tuple, list)) else (value,):
                if isinstance(item, bool) or not isinstance(item, (int, float)):
                    continue
                requirement = _out_of_range(f.name, float(item))
                if requirement:
                    raise InputError(f"attack {self.name!r}: {f.name} must be {requirement}, got {value!r}")

    def apply(self, audio: Audio, rng: np.random.Generator, context: AttackContext | None = None) -> Audio:
        """Attack ``audio``; same rate and channel count unless the class says otherwise."""
        return self.run(audio, rng, context).audio

    def run(
        self, audio: Audio, rng: np.random.Generator, context: AttackContext | None = None
    ) -> AttackOutput:
        """Attack ``audio`` and map the marked spans of the input to output time.

        :class:`InputError` for audio shorter than :data:`MIN_ATTACK_S`: the filters' padding
        (scipy's ``filtfilt``) failed with a ValueError there, and the time stretchers returned
        no samples at all."""
        if audio.duration_s < MIN_ATTACK_S:
            raise InputError(f"attack {self.name!r} needs at least {MIN_ATTACK_S:g} s of audio, got "
                             f"{audio.frames} samples ({audio.duration_s:.4f} s)")
        ctx = context or AttackContext()
        return self._run(audio, rng, ctx, ctx.spans_for(audio))

    def _run(
        self, audio: Audio, rng: np.random.Generator, ctx: AttackContext, spans: tuple[MarkedSpan, ...]
    ) -> AttackOutput:
        out = self.transform(audio, rng, ctx)
        dur = out.duration_s
        clipped = tuple(
            MarkedSpan(s.start_s, min(s.end_s, dur), s.label) for s in spans if s.start_s < dur
        )
        return AttackOutput(out, clipped)

    def transform(self, audio: Audio, rng: np.random.Generator, ctx: AttackContext) -> Audio:
        raise NotImplementedError(f"{type(self).__name__} must implement transform() or _run()")

    def params(self) -> dict[str, Any]:
        """The parameters as plain JSON-able values, with the class name under ``type``."""
        d: dict[str, Any] = {"type": type(self).__name__}
        for f in dataclasses.fields(self):
            if f.name == "name":
                continue
            v = getattr(self, f.name)
            if isinstance(v, tuple) and v and isinstance(v[0], Attack):
                v = [{"name": a.name, **a.params()} for a in v]
            d[f.name] = v
        return d


@dataclass(frozen=True, kw_only=True)
class NoAttack(Attack):
    """The identity: the reference trial every benchmark runs first."""

    kind: ClassVar[str] = "none"

    def transform(self, audio: Audio, rng: np.random.Generator, ctx: AttackContext) -> Audio:
        return audio.with_samples(audio.samples.copy())


# --- helpers shared by the attack modules --------------------------------------------------


def resample(x: np.ndarray, rate_from_hz: int, rate_to_hz: int) -> np.ndarray:
    """Polyphase resampling (scipy ``resample_poly``, Kaiser window) along the last axis."""
    if rate_from_hz == rate_to_hz:
        return x.astype(np.float32, copy=True)
    frac = Fraction(int(rate_to_hz), int(rate_from_hz))
    return resample_poly(x, frac.numerator, frac.denominator, axis=-1).astype(np.float32)


def fit_length(x: np.ndarray, frames: int) -> np.ndarray:
    """Trim or zero-pad ``(channels, n)`` to exactly ``frames`` samples."""
    if x.shape[-1] >= frames:
        return np.ascontiguousarray(x[..., :frames])
    pad = np.zeros(x.shape[:-1] + (frames - x.shape[-1],), dtype=x.dtype)
    return np.concatenate([x, pad], axis=-1)


def power(x: np.ndarray) -> float:
    """Mean power over all channels and samples (full scale = 1.0)."""
    return float(np.mean(np.square(x, dtype=np.float64))) if x.size else 0.0


SILENCE_POWER_FLOOR = 10 ** (-70 / 10)
"""Signal power assumed for (near) digital silence when scaling noise to an SNR: -70 dBFS."""


def match_channels(x: np.ndarray, channels: int) -> np.ndarray:
    """Map ``(c, n)`` to ``(channels, n)``: duplicate mono, downmix extra channels to the mean."""
    c = x.shape[0]
    if c == channels:
        return x
    if c == 1:
        return np.repeat(x, channels, axis=0)
    mono = x.mean(axis=0, keepdims=True)
    if channels == 1:
        return mono
    out = np.repeat(mono, channels, axis=0)
    k = min(c, channels)
    out[:k] = x[:k]
    return out


def synthetic_clip(rng: np.random.Generator, rate_hz: int, channels: int, frames: int) -> np.ndarray:
    """A deterministic stand-in for 'another clip': harmonic tones over pink noise, ~-20 dBFS RMS."""
    t = np.arange(frames) / rate_hz
    x = np.zeros(frames)
    for _ in range(4):
        f0 = rng.uniform(110.0, 880.0)
        amp = rng.uniform(0.2, 1.0)
        env = 0.5 * (1 + np.sin(2 * np.pi * rng.uniform(0.2, 2.0) * t + rng.uniform(0, 2 * np.pi)))
        for h in range(1, 5):
            if f0 * h < rate_hz / 2:
                x += amp / h * env * np.sin(2 * np.pi * f0 * h * t + rng.uniform(0, 2 * np.pi))
    x += 0.5 * pink_noise(rng, frames) * np.std(x)
    x *= 0.1 / (np.sqrt(np.mean(x**2)) + 1e-12)
    return np.repeat(x[np.newaxis, :], channels, axis=0).astype(np.float32)


def pink_noise(rng: np.random.Generator, frames: int, channels: int | None = None) -> np.ndarray:
    """Unit-variance pink (1/f power) noise, shaped in the frequency domain."""
    shape = (frames,) if channels is None else (channels, frames)
    white = rng.standard_normal(shape)
    spec = np.fft.rfft(white, axis=-1)
    f = np.arange(spec.shape[-1], dtype=np.float64)
    f[0] = 1.0
    spec /= np.sqrt(f)
    spec[..., 0] = 0.0
    y = np.fft.irfft(spec, n=frames, axis=-1)
    y /= np.std(y, axis=-1, keepdims=True) + 1e-12
    return y


def other_audio(ctx: AttackContext, like: Audio, frames: int, rng: np.random.Generator, *, marked: bool = False) -> np.ndarray:
    """``frames`` samples of the context's other clip at ``like``'s rate and channels (looped if short)."""
    src = ctx.other_marked if marked else ctx.other_clip
    if src is None:
        return synthetic_clip(rng, like.sample_rate, like.channels, frames)
    x = resample(src.samples, src.sample_rate, like.sample_rate)
    x = match_channels(x, like.channels)
    if x.shape[1] == 0:
        return np.zeros((like.channels, frames), np.float32)
    reps = int(np.ceil(frames / x.shape[1]))
    if reps > 1:
        x = np.tile(x, (1, reps))
    return np.ascontiguousarray(x[:, :frames], dtype=np.float32)
