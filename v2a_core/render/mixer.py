"""Stage 4: cue sheet -> 48 kHz stereo soundtrack with one stem per layer.

Events and footsteps are one-shots (attack exactly at the cue time), placed by pan and
distance and sent to a room matched to the scene; beds and music are continuous with
raised-cosine crossfades at their ends (no clicks). The mix is loudness-normalised and
true-peak limited; the same gain curve is applied to every stem, so stems sum to the mix.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np

from provenance.core.audio import Audio
from v2a_core.plan.taxonomy import BY_NAME
from v2a_core.render import beds, oneshots
from v2a_core.render.buffers import Buffers
from v2a_core.render.dsp import SR, add_at, automation, db, fade_ends, rng_for, samples
from v2a_core.render.master import master
from v2a_core.render.music import choose_voices, render_music
from v2a_core.render.spatial import add_reverb, place
from v2a_core.types import LAYERS, Cue, CueSheet, Soundtrack

#: progress(fraction 0..1, what)
RenderProgress = Callable[[float, str], None]

_ONESHOT_LAYERS = ("events", "footsteps")


def _oneshot(cue: Cue, rng: np.random.Generator, excluded: frozenset[str]) -> np.ndarray:
    category = BY_NAME[cue.category]
    kind = category.renderer
    strength = float(np.clip(db(cue.gain_db + 3.0), 0.05, 1.0))
    if kind == "modal":
        return oneshots.modal(cue.category.split(".", 1)[1], cue.size, strength, rng)
    if kind == "footsteps":
        return oneshots.footstep(cue.category.split(".", 1)[1], rng)
    if kind == "sample":
        name = cue.source.split(":", 1)[1]
        if cue.category == "impact.hit":
            return oneshots.cinematic_hit(name, rng)
        return oneshots.bank_oneshot(name, rng)
    if kind == "splash":
        return oneshots.splash(rng, bubbles="water.bubbles" not in excluded)
    if kind == "thunder":
        return oneshots.thunder(rng)
    if kind == "whoosh":
        return oneshots.whoosh(max(0.2, cue.duration_s), rng)
    if kind == "riser":
        return oneshots.riser(max(0.5, cue.duration_s), rng)
    raise ValueError(f"no one-shot renderer for {cue.category}")


def _bed(cue: Cue, n_total: int, rng: np.random.Generator, excluded: frozenset[str],
         buffers: Buffers) -> tuple[np.ndarray, int]:
    start = samples(cue.time_s)
    n = min(samples(cue.duration_s), n_total - start)
    if n <= 0:
        return np.zeros((2, 0), np.float32), start
    renderer = BY_NAME[cue.category].renderer
    auto = automation(cue.automation, cue.time_s, n) if cue.automation else None
    source = cue.source.split(":", 1)[1] if cue.source.startswith("bank:") else None
    x = beds.render_bed(renderer, n, rng, automation=auto, tempo_bpm=cue.tempo_bpm, sample_source=source,
                        excluded=excluded, out=buffers.zeros((2, n)))
    edge_in = cue.fade_s if start > 0 else min(cue.fade_s, 0.05)
    edge_out = cue.fade_s if start + n < n_total else min(cue.fade_s, 0.05)
    x *= np.float32(db(cue.gain_db))
    return fade_ends(x, edge_in, edge_out), start


def _left_out_notes(sheet: CueSheet, excluded: frozenset[str]) -> list[str]:
    """One note per bed or one-shot category whose parts of excluded categories were left out."""
    notes = []
    for category in dict.fromkeys(c.category for c in sheet.cues):
        parts = _parts_left_out(category, excluded)
        if parts:
            notes.append(f"{category}: played without {', '.join(parts)} (excluded)")
    return notes


def _parts_left_out(category: str, excluded: frozenset[str]) -> tuple[str, ...]:
    """The excluded categories among the parts of ``category``'s sound (beds, one-shots)."""
    cat = BY_NAME[category]
    if cat.layer in ("ambience", "texture"):
        return beds.left_out(cat.renderer, excluded)
    return tuple(p for p in oneshots.PARTS.get(category, ()) if p in excluded)


class _Progress:
    """Counts the cues rendered for ``progress(fraction, what)``."""

    def __init__(self, progress: RenderProgress | None, total: int) -> None:
        self.progress, self.total, self.done = progress, max(1, total), 0

    def __call__(self, cues: int, what: str) -> None:
        self.done += cues
        if self.progress:
            self.progress(self.done / self.total, what)


def render(
    sheet: CueSheet, *, progress: RenderProgress | None = None, master_mix: bool = True, stems: bool = True,
    buffers: Buffers = Buffers(),
) -> Soundtrack:
    """Render every cue of ``sheet`` into a mastered 48 kHz stereo :class:`Soundtrack`.

    Every sound is added to the mix as it is rendered, and to its layer's stem when ``stems``.
    Without stems a long soundtrack holds the mix and one more full-length signal at a time (the
    one-shots' reverb send, a bed, the music), and the mix is the same as with stems. Those
    full-length signals (the mix and stems returned too) are taken from ``buffers``: past its
    size limit they are mapped from temporary files, so memory does not grow with the length."""
    n = samples(sheet.duration_s)
    # the negative prompt holds inside a cue too: a forest bed's birds, a mood's piano
    excluded = frozenset(sheet.palette.excluded)
    notes: list[str] = []
    layers: dict[str, np.ndarray] = {}
    tick = _Progress(progress, len(sheet.cues))
    mix = buffers.zeros((2, n))
    for layer in LAYERS:
        cues = [c for c in sheet.cues if c.layer == layer]
        if not cues:
            continue
        stem = buffers.zeros((2, n)) if stems else None
        targets = [mix] if stem is None else [mix, stem]
        if layer in _ONESHOT_LAYERS:
            _oneshot_layer(targets, layer, cues, sheet, excluded, tick, buffers)
        elif layer == "music":
            _music_layer(targets, cues, sheet, excluded, notes, tick, buffers)
        else:
            _bed_layer(targets, layer, cues, sheet, excluded, tick, buffers)
        if stem is not None and np.any(stem):  # a layer whose every part is excluded has no stem
            layers[layer] = stem
    notes += _left_out_notes(sheet, excluded)
    if master_mix:
        result = master(mix, target_lufs=sheet.loudness_lufs, buffers=buffers)
        mix *= result.gain
        for stem in layers.values():
            stem *= result.gain
        loudness, peak = result.loudness_lufs, result.true_peak_dbtp
    else:
        loudness, peak = float("nan"), float("nan")
    return Soundtrack(
        mix=Audio(mix, SR),
        stems={k: Audio(v, SR) for k, v in layers.items()},
        loudness_lufs=loudness,
        true_peak_dbtp=peak,
        cue_sheet=replace(sheet, notes=sheet.notes + tuple(dict.fromkeys(notes))),
        generator=sheet.generator,
        seed=sheet.seed,
    )


def _add(targets: list[np.ndarray], x: np.ndarray, start: int) -> None:
    """Add ``x`` at sample ``start`` to each of ``targets`` (the mix, and the layer's stem)."""
    for buf in targets:
        add_at(buf, x, start)


def _oneshot_layer(targets: list[np.ndarray], layer: str, cues: list[Cue], sheet: CueSheet,
                   excluded: frozenset[str], tick: _Progress, buffers: Buffers) -> None:
    """The one-shots of ``cues`` at their times, placed, and their reverb in the room."""
    send = buffers.zeros(targets[0].shape)
    for cue in cues:
        rng = rng_for(sheet.seed, cue.category, cue.variant, samples(cue.time_s))
        mono = _oneshot(cue, rng, excluded) * db(cue.gain_db)
        stereo = place(mono, cue.pan, cue.distance)
        start = samples(cue.time_s)
        _add(targets, stereo, start)
        add_at(send, stereo * (sheet.reverb.wet * (0.5 + cue.distance)), start)
        tick(1, f"{layer}: {cue.category}")
    if np.any(send):
        add_reverb(targets, send, sheet.reverb, sheet.seed)


def _music_layer(targets: list[np.ndarray], cues: list[Cue], sheet: CueSheet, excluded: frozenset[str],
                 notes: list[str], tick: _Progress, buffers: Buffers) -> None:
    """One music bed per span of ``cues`` (the moods and instruments heard together)."""
    groups: dict[tuple[float, float], list[Cue]] = {}
    for cue in cues:
        groups.setdefault((cue.time_s, cue.duration_s), []).append(cue)
    for (t0, dur), group in groups.items():
        rng = rng_for(sheet.seed, "music", *(c.category for c in group))
        categories = [c.category for c in group]
        notes += filter(None, [choose_voices(categories, excluded).note(categories)])
        music = render_music(
            categories, dur, group[0].tempo_bpm or sheet.tempo_bpm, rng, fade_s=group[0].fade_s,
            excluded=excluded, out=buffers.zeros((2, samples(dur))),
        )
        music *= np.float32(db(max(c.gain_db for c in group)))
        _add(targets, music, samples(t0))
        del music
        tick(len(group), "music")


def _bed_layer(targets: list[np.ndarray], layer: str, cues: list[Cue], sheet: CueSheet, excluded: frozenset[str],
               tick: _Progress, buffers: Buffers) -> None:
    """The beds or textures of ``cues`` over their spans, faded in and out."""
    n = targets[0].shape[1]
    for cue in cues:
        rng = rng_for(sheet.seed, cue.category, cue.variant)
        x, start = _bed(cue, n, rng, excluded, buffers)
        _add(targets, x, start)
        del x
        tick(1, f"{layer}: {cue.category}")
