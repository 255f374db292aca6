"""Edits in time: crop, offset, cut, insert, montage, splice, speed, time stretch, pitch shift, sample dropping.

Every attack here that moves audio in time maps the marked spans of its input onto its output
(:class:`~benchmarks.attacks.base.TimePiece`), so the harness can score localization.
Speed and stretch percentages are tempo changes: ``+5`` plays 5 % faster, so the output lasts
``1 / 1.05`` of the input.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import ClassVar

import numpy as np
from scipy.signal import resample_poly

from benchmarks.attacks.base import (
    OTHER,
    Attack,
    AttackContext,
    AttackOutput,
    MarkedSpan,
    TimePiece,
    fit_length,
    map_spans,
    other_audio,
)
from provenance.core.audio import Audio


@dataclass(frozen=True, kw_only=True)
class _TimeAttack(Attack):
    kind: ClassVar[str] = "time"
    changes_time: ClassVar[bool] = True


def _output(audio: Audio, y: np.ndarray, spans: tuple[MarkedSpan, ...], pieces: list[TimePiece], **details) -> AttackOutput:
    out = audio.with_samples(y)
    return AttackOutput(out, map_spans(spans, pieces, out.duration_s), details)


@dataclass(frozen=True, kw_only=True)
class Crop(_TimeAttack):
    """Keep one window of ``duration_s`` seconds at a random start. A clip no longer than that
    is returned whole, and the output's details say so (``unchanged``, ``note``): the trial
    measured no attack, and the report leaves it out of the attack's figures."""

    duration_s: float = 5.0

    def _run(
        self, audio: Audio, rng: np.random.Generator, ctx: AttackContext, spans: tuple[MarkedSpan, ...]
    ) -> AttackOutput:
        sr = audio.sample_rate
        n = int(round(self.duration_s * sr))
        if n >= audio.frames:
            note = f"clip of {audio.duration_s:.3f} s is not longer than the crop of {self.duration_s:g} s: unchanged"
            return _output(audio, audio.samples.copy(), spans, [TimePiece(0, audio.duration_s, 0)], start_s=0.0,
                           unchanged=True, note=note)
        start = int(rng.integers(0, audio.frames - n + 1))
        a = start / sr
        return _output(audio, audio.samples[:, start : start + n].copy(), spans,
                       [TimePiece(a, a + n / sr, 0.0)], start_s=a)


@dataclass(frozen=True, kw_only=True)
class Offset(_TimeAttack):
    """Shift by ``block_fraction`` of the watermarker's block (``AttackContext.block_s``):
    ``pad`` true prepends that much silence, false cuts that much from the start."""

    block_fraction: float = 0.5
    pad: bool = False

    def _run(
        self, audio: Audio, rng: np.random.Generator, ctx: AttackContext, spans: tuple[MarkedSpan, ...]
    ) -> AttackOutput:
        sr = audio.sample_rate
        k = int(round(self.block_fraction * ctx.block_s * sr))
        k = min(k, audio.frames - 1)
        if self.pad:
            y = np.concatenate([np.zeros((audio.channels, k), np.float32), audio.samples], axis=1)
            return _output(audio, y, spans, [TimePiece(0, audio.duration_s, k / sr)], offset_s=k / sr)
        return _output(audio, audio.samples[:, k:].copy(), spans,
                       [TimePiece(k / sr, audio.duration_s, 0.0)], offset_s=-k / sr)


@dataclass(frozen=True, kw_only=True)
class CutOut(_TimeAttack):
    """Remove ``duration_s`` seconds centred on the middle of the clip and join the rest."""

    duration_s: float = 1.0

    def _run(
        self, audio: Audio, rng: np.random.Generator, ctx: AttackContext, spans: tuple[MarkedSpan, ...]
    ) -> AttackOutput:
        sr = audio.sample_rate
        d = min(int(round(self.duration_s * sr)), audio.frames // 2)
        a = (audio.frames - d) // 2
        b = a + d
        y = np.concatenate([audio.samples[:, :a], audio.samples[:, b:]], axis=1)
        return _output(audio, y, spans, [TimePiece(0, a / sr, 0), TimePiece(b / sr, audio.duration_s, a / sr)],
                       cut_start_s=a / sr)


@dataclass(frozen=True, kw_only=True)
class Insert(_TimeAttack):
    """Insert ``duration_s`` seconds of another (unmarked) clip at a random point in the middle half."""

    duration_s: float = 2.0

    def _run(
        self, audio: Audio, rng: np.random.Generator, ctx: AttackContext, spans: tuple[MarkedSpan, ...]
    ) -> AttackOutput:
        sr = audio.sample_rate
        d = int(round(self.duration_s * sr))
        p = int(rng.integers(audio.frames // 4, max(audio.frames // 4 + 1, 3 * audio.frames // 4)))
        ins = other_audio(ctx, audio, d, rng)
        y = np.concatenate([audio.samples[:, :p], ins, audio.samples[:, p:]], axis=1)
        return _output(audio, y, spans,
                       [TimePiece(0, p / sr, 0), TimePiece(p / sr, audio.duration_s, (p + d) / sr)],
                       insert_at_s=p / sr)


@dataclass(frozen=True, kw_only=True)
class Montage(_TimeAttack):
    """Keep ``pieces`` excerpts of ``piece_s`` seconds, one at a random start in each of
    ``pieces`` equal parts of the clip, and join them in order: a video editor's cut-down.

    The excerpts are shorter than most watermarks' blocks, so none need carry a whole payload
    on its own. A clip shorter than ``pieces * piece_s`` is kept whole.
    """

    pieces: int = 3
    piece_s: float = 2.0

    def _run(
        self, audio: Audio, rng: np.random.Generator, ctx: AttackContext, spans: tuple[MarkedSpan, ...]
    ) -> AttackOutput:
        sr = audio.sample_rate
        n = int(round(self.piece_s * sr))
        part = audio.frames // self.pieces
        if n > part:
            return _output(audio, audio.samples.copy(), spans, [TimePiece(0, audio.duration_s, 0)], starts_s=[0.0])
        starts = [k * part + int(rng.integers(0, part - n + 1)) for k in range(self.pieces)]
        y = np.concatenate([audio.samples[:, s : s + n] for s in starts], axis=1)
        kept = [TimePiece(s / sr, (s + n) / sr, k * n / sr) for k, s in enumerate(starts)]
        return _output(audio, y, spans, kept, starts_s=[s / sr for s in starts])


@dataclass(frozen=True, kw_only=True)
class Splice(_TimeAttack):
    """Join the first ``first_fraction`` of this file to the rest taken from a second *marked* file
    (``AttackContext.other_marked``, another payload); the output keeps the input's length."""

    first_fraction: float = 0.6
    uses_other_marked: ClassVar[bool] = True

    def _run(
        self, audio: Audio, rng: np.random.Generator, ctx: AttackContext, spans: tuple[MarkedSpan, ...]
    ) -> AttackOutput:
        sr = audio.sample_rate
        a = int(round(self.first_fraction * audio.frames))
        rest = audio.frames - a
        other = other_audio(ctx, audio, audio.frames, rng, marked=True)
        y = np.concatenate([audio.samples[:, :a], other[:, a:]], axis=1)
        pieces = [TimePiece(0, a / sr, 0)]
        mapped = list(map_spans(spans, pieces, audio.duration_s))
        if ctx.other_marked is not None and rest > 0:
            other_spans = ctx.other_spans()
            if ctx.other_marked.duration_s >= audio.duration_s - 1e-6:
                mapped += map_spans(other_spans, [TimePiece(a / sr, audio.duration_s, a / sr)], audio.duration_s)
            else:  # looped: treat the whole spliced-in part as marked with the other payload
                mapped.append(MarkedSpan(a / sr, audio.duration_s, OTHER))
        return AttackOutput(audio.with_samples(y), tuple(sorted(mapped, key=lambda s: s.start_s)),
                            {"splice_at_s": a / sr})


SPEED_MAX_TERM = 20_000
"""Largest numerator or denominator of :class:`Speed`'s resampling ratio."""


@dataclass(frozen=True, kw_only=True)
class Speed(_TimeAttack):
    """Play ``percent`` faster (negative: slower); pitch follows, as with a changed playback rate.

    Done by polyphase resampling with the ratio ``1 / (1 + percent / 100)`` as a fraction whose
    terms are at most :data:`SPEED_MAX_TERM`: exact to 0.005 %, so a clock drift of 100 ppm
    (0.01 %) is 10000/10001 (a limit of 1000 made any change under 0.05 % the identity).
    """

    warps_time: ClassVar[bool] = True

    percent: float

    def _run(
        self, audio: Audio, rng: np.random.Generator, ctx: AttackContext, spans: tuple[MarkedSpan, ...]
    ) -> AttackOutput:
        ratio = (100 / (100 + Fraction(repr(float(self.percent))))).limit_denominator(SPEED_MAX_TERM)
        y = resample_poly(audio.samples, ratio.numerator, ratio.denominator, axis=-1)
        scale = float(ratio)
        return _output(audio, y, spans, [TimePiece(0, audio.duration_s, 0, scale)], ratio=scale)


@dataclass(frozen=True, kw_only=True)
class TimeStretch(_TimeAttack):
    """Change tempo by ``percent`` keeping the pitch (Rubber Band, through pedalboard.time_stretch)."""

    warps_time: ClassVar[bool] = True

    percent: float
    requires: ClassVar[tuple[str, ...]] = ("pedalboard",)

    def _run(
        self, audio: Audio, rng: np.random.Generator, ctx: AttackContext, spans: tuple[MarkedSpan, ...]
    ) -> AttackOutput:
        from pedalboard import time_stretch

        factor = 1.0 + self.percent / 100.0
        y = time_stretch(audio.samples, float(audio.sample_rate), stretch_factor=factor)
        scale = y.shape[1] / audio.frames
        return _output(audio, y, spans, [TimePiece(0, audio.duration_s, 0, scale)])


@dataclass(frozen=True, kw_only=True)
class PitchShift(Attack):
    """Shift pitch by ``semitones`` keeping duration (Rubber Band offline, pedalboard.time_stretch).

    With ``preserve_formants=False`` (the default, as in Rubber Band's command line, librosa and
    sox) the whole spectrum is scaled; with True the spectral envelope stays where it was and
    only the harmonics move, as pitch correction of a voice does. pedalboard's real-time
    ``PitchShift`` plugin misses the ratio by ~0.5 % at +-2 semitones; the offline stretcher is
    exact.
    """

    semitones: float
    preserve_formants: bool = False
    kind: ClassVar[str] = "time"
    warps_time: ClassVar[bool] = True
    requires: ClassVar[tuple[str, ...]] = ("pedalboard",)

    def transform(self, audio: Audio, rng: np.random.Generator, ctx: AttackContext) -> Audio:
        from pedalboard import time_stretch

        y = time_stretch(audio.samples, float(audio.sample_rate), stretch_factor=1.0,
                         pitch_shift_in_semitones=self.semitones,
                         preserve_formants=self.preserve_formants)
        return audio.with_samples(fit_length(y, audio.frames))


@dataclass(frozen=True, kw_only=True)
class SampleDrop(_TimeAttack):
    """Delete ``percent`` of the samples (all channels) at random positions, as lossy transports do.

    Localization is mapped with the mean rate; drops are uniform, so the error is a few samples.
    """

    percent: float = 0.1

    def _run(
        self, audio: Audio, rng: np.random.Generator, ctx: AttackContext, spans: tuple[MarkedSpan, ...]
    ) -> AttackOutput:
        k = int(round(audio.frames * self.percent / 100.0))
        drop = rng.choice(audio.frames, size=k, replace=False) if k else np.array([], dtype=np.int64)
        y = np.delete(audio.samples, drop, axis=1)
        scale = y.shape[1] / audio.frames
        return _output(audio, y, spans, [TimePiece(0, audio.duration_s, 0, scale)], dropped=k)
