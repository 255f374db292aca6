"""The music bed: a chord progression per mood, voiced by synthesised instruments.

Tempo comes from the cue (the visual rhythm, folded to 70-150 BPM); the first mood in the
prompt picks key, progression and default instruments, further moods add their
instruments; instrument categories in the prompt are always voiced. A voice sounds as the
categories of :data:`VOICE_CATEGORIES`: when the negative prompt excludes one of them, the voice
is not played (a calm mood without its piano); a mood left with no voice is played on the first
allowed voice of :data:`FALLBACK_VOICES`, and with none allowed there is no music
(:func:`choose_voices` says which, for the cue sheet's notes). Notes are rendered once per
(voice, pitch, length) and reused, so a long bed costs little more than a short one.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy.signal import lfilter

from v2a_core.assets import bank_categories, load_sample
from v2a_core.render.dsp import (
    SR, add_at, bandpass, decay, fade_ends, lowpass, lowpass_inplace, pan_gains, resample_pitch, samples, sine,
)

_MINOR = {"i": (0, 3, 7), "iv": (5, 8, 12), "v": (7, 10, 14), "V": (7, 11, 14), "VI": (8, 12, 15),
          "VII": (10, 14, 17), "III": (3, 7, 10), "ii0": (2, 5, 8), "b2": (0, 1, 7), "tri": (0, 6, 12)}
_MAJOR = {"I": (0, 4, 7), "ii": (2, 5, 9), "iii": (4, 7, 11), "IV": (5, 9, 12), "V": (7, 11, 14),
          "vi": (9, 12, 16), "iv": (5, 8, 12)}


@dataclass(frozen=True)
class Mood:
    chords: tuple[tuple[int, ...], ...]
    beats_per_chord: int
    roots: tuple[int, ...]
    """MIDI notes to choose the key root from."""
    voices: tuple[str, ...]
    brightness_hz: float


MOODS: dict[str, Mood] = {
    "music.tension": Mood(tuple(_MINOR[c] for c in ("i", "i", "VI", "V")), 8, (45, 47, 50), ("pad", "bass_pulse", "strings"), 1400),
    "music.horror": Mood(tuple(_MINOR[c] for c in ("b2", "ii0", "i", "tri")), 16, (44, 45, 46), ("drone", "strings", "bells_sparse"), 1000),
    "music.calm": Mood(tuple(_MAJOR[c] for c in ("I", "V", "vi", "IV")), 8, (48, 50, 53), ("pad", "piano"), 2500),
    "music.happy": Mood(tuple(_MAJOR[c] for c in ("I", "IV", "V", "I")), 4, (48, 50, 52), ("guitar", "bass", "percussion"), 4000),
    "music.sad": Mood(tuple(_MINOR[c] for c in ("i", "VI", "iv", "V")), 8, (45, 48, 50), ("strings", "piano"), 2000),
    "music.epic": Mood(tuple(_MINOR[c] for c in ("i", "VI", "III", "VII")), 8, (45, 47, 50), ("strings", "bass", "toms", "choir"), 3000),
    "music.dreamy": Mood(tuple(_MAJOR[c] for c in ("I", "iii", "IV", "iv")), 8, (48, 51, 53), ("pad", "bells"), 3500),
}
INSTRUMENT_VOICES: dict[str, str] = {
    "instrument.piano": "piano",
    "instrument.strings": "strings",
    "instrument.pad": "pad",
    "instrument.percussion": "percussion",
    "instrument.bass": "bass",
    "instrument.bells": "bells",
    "instrument.guitar": "guitar",
    "instrument.choir": "choir",
}
#: voice -> the categories it sounds as: excluding any of them silences the voice. Percussion and
#: toms play the bank drums that ``impact.drum`` plays too.
VOICE_CATEGORIES: dict[str, tuple[str, ...]] = {
    "pad": ("instrument.pad",),
    "drone": ("instrument.pad",),
    "strings": ("instrument.strings",),
    "piano": ("instrument.piano",),
    "bells": ("instrument.bells",),
    "bells_sparse": ("instrument.bells",),
    "guitar": ("instrument.guitar",),
    "bass": ("instrument.bass",),
    "bass_pulse": ("instrument.bass",),
    "percussion": ("instrument.percussion", "impact.drum"),
    "toms": ("instrument.percussion", "impact.drum"),
    "choir": ("instrument.choir",),
}
#: Voices tried in order when every voice of the moods is excluded (harmony first, no drums alone).
FALLBACK_VOICES: tuple[str, ...] = ("pad", "strings", "piano", "guitar", "bells", "choir", "bass")


@dataclass(frozen=True)
class VoiceChoice:
    """The voices a music bed is played on, and what the negative prompt changed."""

    voices: tuple[str, ...]
    """Empty: no music at all (every voice is excluded)."""
    left_out: tuple[str, ...] = ()
    """Voices the categories asked for that were not played because they are excluded."""
    fallback: bool = False
    """True when ``voices`` replaces the moods' own, all of them excluded."""

    def note(self, categories: list[str]) -> str | None:
        """One line for the cue sheet when the negative prompt changed the music, else None."""
        what = ", ".join(c for c in categories if c.startswith("music.")) or "the music"
        if not self.voices:
            return f"{what}: no music; every voice it could be played on is excluded ({', '.join(self.left_out)})"
        if self.fallback:
            return (f"{what}: its voices ({', '.join(self.left_out)}) are excluded; "
                    f"played on {', '.join(self.voices)} instead")
        if self.left_out:
            return f"{what}: played without {', '.join(self.left_out)} (excluded)"
        return None


def _allowed(voice: str, excluded: frozenset[str]) -> bool:
    return not excluded.intersection(VOICE_CATEGORIES[voice])


def choose_voices(categories: list[str], excluded: frozenset[str] = frozenset()) -> VoiceChoice:
    """The voices for a bed of these mood/instrument categories: the instruments named, else the
    moods' own (no mood: calm's), without any voice that sounds as an ``excluded`` category."""
    moods = [c for c in categories if c in MOODS]
    wanted: list[str] = [INSTRUMENT_VOICES[c] for c in categories if c in INSTRUMENT_VOICES]
    if not wanted:
        for m in moods or ["music.calm"]:
            wanted += [v for v in MOODS[m].voices if v not in wanted]
    voices = tuple(v for v in wanted if _allowed(v, excluded))
    left_out = tuple(v for v in wanted if v not in voices)
    if voices or not left_out:
        return VoiceChoice(voices, left_out)
    fallback = next((v for v in FALLBACK_VOICES if _allowed(v, excluded)), None)
    return VoiceChoice((fallback,) if fallback else (), left_out, fallback=fallback is not None)


#: voice -> (level dB, pan)
_MIX = {
    "pad": (-6, 0.0), "drone": (-4, 0.0), "strings": (-5, 0.2), "piano": (-6, -0.25), "bells": (-10, 0.35),
    "bells_sparse": (-9, 0.3), "guitar": (-6, -0.3), "bass": (-5, 0.0), "bass_pulse": (-6, 0.0),
    "percussion": (-6, 0.0), "toms": (-5, 0.0), "choir": (-8, 0.0),
}


def _hz(midi: float) -> float:
    return 440.0 * 2 ** ((midi - 69) / 12)


@lru_cache(maxsize=8)
def _saw_table(harmonics: int) -> np.ndarray:
    ph = np.arange(4096) / 4096
    return sum(np.sin(2 * np.pi * k * ph) / k for k in range(1, harmonics + 1)).astype(np.float32) * 0.6


def _saw(freq: float | np.ndarray, n: int) -> np.ndarray:
    f = float(np.mean(freq))
    table = _saw_table(max(1, min(24, int(SR / 2 / max(f, 20)))))
    if np.isscalar(freq):
        phase = np.arange(n, dtype=np.float64) * (float(freq) / SR)
    else:
        phase = np.cumsum(np.asarray(freq, dtype=np.float64)) / SR
    # 4096-point table without interpolation: the error is far below the pad's own noise
    return table[((phase % 1.0) * 4096).astype(np.int32) & 4095]


def _env(n: int, attack_s: float, release_s: float) -> np.ndarray:
    env = np.ones(n, np.float32)
    a, r = min(n, samples(attack_s)), min(n, samples(release_s))
    if a:
        env[:a] = np.linspace(0, 1, a) ** 2
    if r:
        env[n - r :] *= np.linspace(1, 0, r) ** 2
    return env


@lru_cache(maxsize=512)
def _note(voice: str, midi: int, dur_ms: int, seed: int) -> np.ndarray:
    """One note of a voice (cached: notes repeat through a progression)."""
    rng = np.random.default_rng(seed)
    dur = dur_ms / 1000
    f = _hz(midi)
    if voice in ("pad", "drone"):
        n = samples(dur + 1.0)
        x = sum(_saw(f * d, n) for d in (0.996, 1.0, 1.004)) / 3
        x = lowpass(x, 900 if voice == "drone" else 1800) * _env(n, 0.8 if voice == "pad" else 2.0, 1.0)
    elif voice == "strings":
        n = samples(dur + 0.8)
        vib = f * (1 + 0.003 * np.sin(2 * np.pi * 5.5 * np.arange(n) / SR + rng.uniform(0, 6)))
        x = lowpass(_saw(vib, n), 2500) * _env(n, 0.5, 0.8)
    elif voice == "choir":
        n = samples(dur + 0.8)
        vib = f * (1 + 0.004 * np.sin(2 * np.pi * 5.0 * np.arange(n) / SR))
        src = _saw(vib, n)
        x = (bandpass(src, 650, 950) + 0.6 * bandpass(src, 1000, 1300)) * _env(n, 0.6, 0.8) * 2
    elif voice == "piano":
        n = samples(min(dur, 2.5) + 0.3)
        x = np.zeros(n, np.float32)
        for k in range(1, 8):
            fk = f * k * np.sqrt(1 + 0.0004 * k * k)
            if fk < SR * 0.45:
                x += sine(fk, n) * decay(n, 2.5 / k**0.7) / k**1.2
        x *= _env(n, 0.002, 0.2)
    elif voice in ("bells", "bells_sparse"):
        n = samples(2.5)
        x = sum(sine(f * 2 * r, n) * decay(n, 2.2 / (i + 1)) / (i + 1) for i, r in enumerate((1.0, 2.76, 5.4, 8.93)))
        x = x * _env(n, 0.002, 0.3)
    elif voice == "guitar":
        n = samples(min(dur, 2.0) + 0.2)
        period = SR / f
        d = int(period)
        burst = np.zeros(n)
        burst[:d] = rng.uniform(-1, 1, d)
        a = np.zeros(d + 2)
        a[0] = 1.0
        a[d] = -0.497
        a[d + 1] = -0.497  # Karplus-Strong: averaged, slightly lossy delay loop
        x = lfilter([1.0], a, burst).astype(np.float32) * _env(n, 0.001, 0.15)
    elif voice in ("bass", "bass_pulse"):
        n = samples(dur + 0.05)
        x = (sine(f, n) + 0.3 * sine(2 * f, n)) * _env(n, 0.015, 0.06)
    else:
        raise ValueError(voice)
    x = np.asarray(x, dtype=np.float32)
    return x / (np.max(np.abs(x)) + 1e-9)


def _drum(name: str, rng: np.random.Generator) -> np.ndarray:
    s = load_sample(name)
    return resample_pitch(s.samples, 2 ** (rng.uniform(-0.3, 0.3) / 12))


def render_music(
    categories: list[str], duration_s: float, tempo_bpm: float, rng: np.random.Generator, *, fade_s: float = 1.5,
    excluded: frozenset[str] = frozenset(), out: np.ndarray | None = None,
) -> np.ndarray:
    """(2, n) float32 music bed for the given mood/instrument categories (first mood leads),
    played on the voices of :func:`choose_voices` (silence when none is left); written into
    ``out`` (zeros of that shape) if given."""
    n = samples(duration_s)
    if out is None:
        out = np.zeros((2, n), np.float32)
    voices = choose_voices(categories, excluded).voices
    if n == 0 or not voices:
        return out
    moods = [c for c in categories if c in MOODS]
    lead = MOODS[moods[0]] if moods else MOODS["music.calm"]
    root = int(rng.choice(lead.roots))
    beat = 60.0 / max(40.0, min(200.0, tempo_bpm))
    chord_s = beat * lead.beats_per_chord
    seed = int(rng.integers(0, 2**31))
    drums = {k: v for k, v in zip(("kick", "snare", "hat"), ("drum_bass_soft", "drum_snare_soft", "drum_cymbal_closed"))}
    t = 0.0
    idx = 0
    while t < duration_s:
        chord = [root + iv for iv in lead.chords[idx % len(lead.chords)]]
        start = samples(t)
        for voice in voices:
            level, pan = _MIX[voice]
            gl, gr = pan_gains(pan)
            g = 10 ** (level / 20)
            notes: list[tuple[float, int, float]] = []  # (offset s, midi, length s)
            if voice in ("pad", "strings", "choir"):
                notes = [(0.0, m + 12, chord_s) for m in chord]
            elif voice == "drone":
                notes = [(0.0, chord[0], chord_s), (0.0, chord[0] + 7, chord_s)]
            elif voice == "piano":
                notes = [(b * beat, chord[b % 3] + 24, beat * 2) for b in range(lead.beats_per_chord)]
            elif voice == "bells":
                notes = [(b * beat / 2, chord[b % 3] + 24, beat) for b in range(lead.beats_per_chord * 2)]
            elif voice == "bells_sparse":
                notes = [(beat * lead.beats_per_chord / 2, chord[1] + 25, beat * 4)]
            elif voice == "guitar":
                notes = [(b * beat + k * 0.012, m + 12, beat * 1.5) for b in range(lead.beats_per_chord) for k, m in enumerate(chord)]
            elif voice == "bass":
                notes = [(b * beat, chord[0] - 12, beat * 0.9) for b in range(0, lead.beats_per_chord, 2)]
            elif voice == "bass_pulse":
                notes = [(b * beat / 2, chord[0] - 12, beat * 0.4) for b in range(lead.beats_per_chord * 2)]
            elif voice in ("percussion", "toms"):
                for b in range(lead.beats_per_chord):
                    at = start + samples(b * beat)
                    if voice == "toms":
                        if b % 2 == 0:
                            tom = _drum("drum_tom_lo_soft", rng)
                            add_at(out, np.stack([g * gl * tom, g * gr * tom]), at)
                        continue
                    name = drums["kick"] if b % 2 == 0 else drums["snare"]
                    hit = _drum(name, rng)
                    add_at(out, np.stack([g * gl * hit, g * gr * hit]), at)
                    hat = 0.5 * _drum(drums["hat"], rng)
                    add_at(out, np.stack([g * gl * hat, g * gr * hat]), at + samples(beat / 2))
                continue
            for off, midi, length in notes:
                x = _note(voice, int(midi), int(length * 1000), seed + int(midi))
                x = x * g * rng.uniform(0.85, 1.0)
                if voice in ("pad", "strings", "choir", "drone"):
                    # detune the two sides slightly apart: a wide, still image
                    add_at(out, np.stack([gl * x, gr * np.roll(x, 240)]), start + samples(off))
                else:
                    add_at(out, np.stack([gl * x, gr * x]), start + samples(off))
            if voice == "choir" and "ambi_choir" in bank_categories().get("instrument.choir", ()):
                s = load_sample("ambi_choir")
                swell = resample_pitch(s.samples, _hz(chord[0] + 12) / s.pitch_hz)
                add_at(out, np.stack([0.5 * g * swell, 0.5 * g * swell]), start)
        t += chord_s
        idx += 1
    if lead.brightness_hz < 4000:
        lowpass_inplace(out, lead.brightness_hz * 2.5)  # in place: a feature-length bed has no spare copy
    return fade_ends(out, fade_s, fade_s)
