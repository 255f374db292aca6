"""Typed records passed between the stages of the built-in generator.

Data flows one way::

    decode  -> VideoInfo + Frame stream
    analyze -> VisualAnalysis
    plan    -> CueSheet (with its Palette)
    render  -> Soundtrack (48 kHz stereo mix + one stem per layer)

Units: times in seconds (``*_s``), gains in dB (``*_db``), loudness in LUFS, pan in
[-1 (left), +1 (right)], screen positions normalised to [-1, +1] from the frame centre.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from provenance.core.audio import Audio

#: Layers of a soundtrack; each one becomes a stem.
LAYERS: tuple[str, ...] = ("events", "footsteps", "ambience", "texture", "music")


# --------------------------------------------------------------------------- decode
@dataclass(frozen=True)
class VideoInfo:
    """What the container says about a video (nothing here is trusted for timing)."""

    path: Path
    width: int
    """Coded width in pixels."""
    height: int
    """Coded height in pixels."""
    duration_s: float
    """Container duration, seconds (0.0 if unknown; the decoder's last frame time wins)."""
    frame_count: int
    """Frames the container claims (0 if unknown); informational only."""
    average_fps: float
    """Container's average frame rate; informational only, never used for timing."""
    codec: str
    has_audio: bool
    rotation_deg: int = 0
    """Display rotation, degrees; :func:`v2a_core.video.iter_frames` applies the rotation each
    decoded frame carries, so analysis always sees the picture upright (probe reports 0)."""
    start_s: float = 0.0
    """Where the video stream starts on the file's own timestamps, seconds (1.4 for an MPEG-TS,
    3600 for a clip cut from a recording): frame times, events and the soundtrack count from it."""


@dataclass(frozen=True)
class Frame:
    """One decoded frame, reduced to the analysis size."""

    index: int
    time_s: float
    """Presentation time from the frame's own timestamp, seconds from the video stream's start
    (its first picture is at 0 s even when the file's timestamps start at 1.4 s or 3600 s)."""
    yuv: np.ndarray
    """uint8 ``(h, w, 3)``: luma and the two chroma planes at the analysis size."""
    half: np.ndarray | None = None
    """The same at half the analysis size (background model, cuts, flow), made while decoding."""
    shown_s: float = 0.0
    """How long the frame is shown, seconds: its own duration where the container gives one,
    else the interval before it (the last frame of a variable-rate video may be shorter)."""


# --------------------------------------------------------------------------- analyze
@dataclass(frozen=True)
class VisualEvent:
    """Something that happens at one instant on screen and should make a sound."""

    time_s: float
    kind: str
    """``impact`` (abrupt change of motion of a tracked object), ``appear`` (something
    lights up or appears at once) or ``cut`` (scene cut)."""
    strength: float
    """0..1, from the size of the velocity change (impacts) or of the change (appear/cut)."""
    x: float
    """Horizontal screen position, -1 (left edge) .. +1 (right edge)."""
    y: float
    """Vertical screen position, -1 (top) .. +1 (bottom)."""
    size: float
    """Apparent size of the source, fraction of the frame area (0..1)."""
    speed: float = 0.0
    """Speed just before the event, frame heights per second."""
    timing: str = "frame"
    """``subframe-fit`` (trajectory fit between frames) or ``frame`` (frame time)."""
    track_id: int = -1
    """Tracked object the event belongs to (-1: none)."""
    reason: str = ""


@dataclass(frozen=True)
class MotionEnvelope:
    """Per-frame motion measurements, one row per decoded frame."""

    times_s: np.ndarray
    """float64 ``(n,)`` frame times, seconds."""
    energy: np.ndarray
    """float32 ``(n,)`` mean absolute luma change from the previous frame, 0..1."""
    region_energy: np.ndarray
    """float32 ``(n, 3)`` the same for the left, centre and right thirds."""
    change: np.ndarray
    """float32 ``(n,)`` magnitude of the change of regional optical flow (visual 'acceleration'),
    frame heights per second; peaks at impacts."""
    foreground: np.ndarray
    """float32 ``(n,)`` fraction of the frame that differs from the background model."""
    acceleration: np.ndarray | None = None
    """float32 ``(n,)`` summed frame-to-frame velocity change of the tracked objects, frame
    heights per second, at the frame in the middle of the three used (no sub-frame fitting)."""
    appear: np.ndarray | None = None
    """float32 ``(n,)`` fraction of the frame that lights up or changes colour at once (after
    being still), 0..1."""


@dataclass(frozen=True)
class Rhythm:
    """Periodic motion found in the video."""

    period_s: float
    """Dominant period, seconds (0.0 if none)."""
    tempo_bpm: float
    """Tempo for music, beats per minute, folded into 70..150 (a calm default if none)."""
    strength: float
    """0..1 normalised autocorrelation at the period; below about 0.3 means no clear rhythm."""


@dataclass(frozen=True)
class SceneCues:
    """Coarse look of a stretch of video, all 0..1 unless stated."""

    brightness: float
    saturation: float
    blue: float
    """Fraction of saturated blue/cyan pixels."""
    green: float
    warm: float
    """Fraction of saturated red/orange/yellow bright pixels (fire, sunset)."""
    sky: float
    """Fraction of bright blue pixels in the top third."""
    motion: float
    """Mean foreground fraction (how much of the frame moves)."""
    turbulence: float
    """Incoherence of optical flow (0 rigid/uniform motion .. 1 chaotic, like water or fire)."""
    camera_motion: float
    """Median optical-flow speed, frame heights per second (camera pans/shakes)."""
    flicker: float
    """Mean absolute frame-to-frame brightness change of the whole frame (fire, lights)."""


@dataclass(frozen=True)
class Scene:
    """A stretch between scene cuts."""

    start_s: float
    end_s: float
    cues: SceneCues


@dataclass(frozen=True)
class VisualAnalysis:
    """Everything the planner needs to know about the video."""

    video: VideoInfo
    duration_s: float
    """Playback duration, seconds: last frame time plus its display duration."""
    frame_count: int
    """Frames actually decoded."""
    analysis_size: tuple[int, int]
    """(width, height) at which frames were analysed."""
    events: tuple[VisualEvent, ...]
    cuts: tuple[float, ...]
    scenes: tuple[Scene, ...]
    motion: MotionEnvelope
    rhythm: Rhythm
    cues: SceneCues
    """Cues of the whole video."""


# --------------------------------------------------------------------------- plan
@dataclass(frozen=True)
class PaletteEntry:
    """One sound category chosen for the soundtrack and why."""

    category: str
    weight: float
    """0..1 prominence in the mix."""
    origin: str
    """``prompt``, ``visual`` or ``default``."""
    matched: str
    """The prompt words or the visual evidence that selected it."""


@dataclass(frozen=True)
class Palette:
    """The categories a soundtrack may use. Categories in ``excluded`` never sound."""

    entries: tuple[PaletteEntry, ...]
    excluded: tuple[str, ...] = ()
    """Categories removed by the negative prompt (honoured strictly)."""
    prompt: str = ""
    negative_prompt: str = ""
    unmatched_terms: tuple[str, ...] = ()
    """Prompt words that named no category (reported, not an error)."""
    unmatched_negative_terms: tuple[str, ...] = ()
    """Negative-prompt words that removed nothing: no category or group is called that."""

    def unmatched_notes(self) -> list[str]:
        """For people: the words of the prompt and negative prompt that named no sound, and what
        that meant (empty when every word named something)."""
        notes = []
        removed_nothing = ": nothing was removed for them"
        for which, terms, meant in (("prompt", self.unmatched_terms, ""),
                                    ("negative prompt", self.unmatched_negative_terms, removed_nothing)):
            if terms:
                words = ", ".join(f"'{w}'" for w in terms)
                verb = "names" if len(terms) == 1 else "name"
                notes.append(f"the {which}'s {words} {verb} no sound this generator makes "
                             f"(`foleyseal generate --list-sounds` lists the sounds it makes){meant}")
        return notes

    @property
    def categories(self) -> tuple[str, ...]:
        return tuple(e.category for e in self.entries)

    def has(self, category: str) -> bool:
        return category in self.categories

    def weight(self, category: str) -> float:
        for e in self.entries:
            if e.category == category:
                return e.weight
        return 0.0


@dataclass(frozen=True)
class ReverbSpec:
    """Room the scene appears to be in."""

    decay_s: float
    """RT60-like decay time, seconds."""
    wet: float
    """Send level for a source at distance 0 (near), 0..1."""
    damping_hz: float
    """Cut-off of the tail's high-frequency damping, Hz."""
    predelay_s: float
    label: str


@dataclass(frozen=True)
class Cue:
    """One sound to render: what, when, where, how loud, and why."""

    time_s: float
    """Onset time, seconds (the sound's attack lands exactly here)."""
    duration_s: float
    """Length of continuous sounds; for one-shots, the expected ring-out."""
    category: str
    layer: str
    """One of :data:`LAYERS`."""
    source: str
    """What makes the sound: ``bank:<sample>`` or ``synth:<model>``."""
    gain_db: float
    pan: float
    """-1 (left) .. +1 (right)."""
    reason: str
    distance: float = 0.0
    """0 (close) .. 1 (far): lowers level and brightness, raises reverb."""
    size: float = 0.5
    """0 (tiny source) .. 1 (huge): lowers pitch of modal/sampled sounds."""
    variant: int = 0
    """Per-cue seed offset so repeated events never sound identical."""
    fade_s: float = 0.0
    """Crossfade length at both ends for continuous layers, seconds."""
    tempo_bpm: float = 0.0
    """Music cues only: tempo of the bed."""
    automation: tuple[tuple[float, float], ...] = ()
    """Continuous cues: (time_s, level 0..1) points, e.g. wind gusts that follow the motion."""

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["automation"] = [list(p) for p in self.automation]
        return d


@dataclass(frozen=True)
class CueSheet:
    """The plan: every cue of the soundtrack, with the palette and room it came from."""

    duration_s: float
    cues: tuple[Cue, ...]
    palette: Palette
    reverb: ReverbSpec
    seed: int
    tempo_bpm: float
    sample_rate: int = 48_000
    loudness_lufs: float = -16.0
    generator: str = "builtin"
    notes: tuple[str, ...] = ()
    """What the renderer changed and why, for people: parts of a cue left out because the negative
    prompt excludes them ("ambience.forest: played without animal.birds (excluded)")."""
    video_start_s: float = 0.0
    """Where the video's first picture is on its file's own timestamps, seconds: every time of the
    sheet counts from that picture; add this to find a cue on the file's timestamps."""

    def layers(self) -> tuple[str, ...]:
        """Layers that have at least one cue, in mix order."""
        present = {c.layer for c in self.cues}
        return tuple(layer for layer in LAYERS if layer in present)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": "foleyseal.cue-sheet.1",
            "generator": self.generator,
            "duration_s": round(self.duration_s, 6),
            "video_start_s": round(self.video_start_s, 6),
            "sample_rate": self.sample_rate,
            "loudness_lufs": self.loudness_lufs,
            "seed": self.seed,
            "tempo_bpm": round(self.tempo_bpm, 3),
            "prompt": self.palette.prompt,
            "negative_prompt": self.palette.negative_prompt,
            "palette": [asdict(e) for e in self.palette.entries],
            "excluded": list(self.palette.excluded),
            "unmatched_terms": list(self.palette.unmatched_terms),
            "unmatched_negative_terms": list(self.palette.unmatched_negative_terms),
            "notes": list(self.notes),
            "reverb": asdict(self.reverb),
            "cues": [_round_floats(c.to_dict()) for c in self.cues],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)


def _round_floats(d: dict[str, Any]) -> dict[str, Any]:
    return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in d.items()}


# --------------------------------------------------------------------------- render
@dataclass
class Soundtrack:
    """A rendered soundtrack: the mix and the stems that sum to it."""

    mix: Audio
    """48 kHz stereo, loudness-normalised, true peak limited."""
    stems: dict[str, Audio] = field(default_factory=dict)
    """Layer name -> that layer's share of the mix (same gain and limiter applied)."""
    loudness_lufs: float = float("nan")
    """Integrated loudness of the mix (ITU-R BS.1770), LUFS."""
    true_peak_dbtp: float = float("nan")
    """4x oversampled peak of the mix, dBTP."""
    cue_sheet: CueSheet | None = None
    generator: str = "builtin"
    seed: int = 0
    notes: tuple[str, ...] = ()
    """What the generator has to tell the user about this soundtrack (of several files an external
    model wrote, which one it is); ``generate`` reports them, and names them when it refuses."""
