"""Stage 3: prompt + negative prompt + visual analysis -> palette -> cue sheet.

The prompt chooses categories; the visuals decide *when* (every visual event gets a cue
at its sub-frame time), *where* (pan from screen position, distance from apparent size),
*how loud* (strength of the event) and fill in what the prompt leaves open (event
materials, ambience, music mood, room). The negative prompt is applied last and strictly:
no cue of an excluded category is ever planned.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from v2a_core.assets import bank_categories
from v2a_core.plan import visual
from v2a_core.plan.prompt import excluded_categories, negative_words_naming_nothing, parse_prompt
from v2a_core.plan.taxonomy import BY_NAME
from v2a_core.types import Cue, CueSheet, Palette, PaletteEntry, VisualAnalysis

#: Level of each layer before mastering, dB relative to a full-strength event.
LAYER_GAIN_DB: dict[str, float] = {
    "events": -3.0,
    "footsteps": -14.0,
    "ambience": -34.0,
    "texture": -32.0,
    "music": -21.0,
}
#: Extra level for beds the prompt asked for (they are the point, not a background), dB.
PROMPT_BED_BOOST_DB = 8.0
# Why beds sit so low: loudness normalisation (BS.1770 gating) measures the blocks within
# 10 LU of the loudest; with beds 20+ dB under the events, a soundtrack of sparse impacts is
# normalised on its impacts and the bed stays a quiet background. With beds close to the
# events, the bed would be gated in and pushed up to the target loudness instead.
#: Per-category trim on top of the layer gain, dB (some beds are dense, some sparse).
CATEGORY_TRIM_DB: dict[str, float] = {
    "ambience.room": -6.0,
    "machine.hum": -4.0,
    "electric.buzz": -5.0,
    "water.ocean": 4.0,
    "water.underwater": 4.0,
    "water.stream": 2.0,
    "weather.rain": 2.0,
    "fire.crackle": 2.0,
    "crowd.cheer": 3.0,
    "ambience.space": 2.0,
    "animal.marine": 1.0,
}
_EVENT_LAYER = ("events",)
_MIN_EVENT_GAP_S = 0.015


@dataclass(frozen=True)
class PlanSettings:
    crossfade_s: float = 0.6
    """Crossfade between ambience beds at scene cuts, seconds."""
    edge_fade_s: float = 0.05
    """Fade at the very start and end of beds, seconds."""
    footstep_period_s: float = 0.52
    """Step interval when the video shows no walking rhythm, seconds."""


def _palette(analysis: VisualAnalysis, prompt: str, negative_prompt: str) -> Palette:
    parsed = parse_prompt(prompt)
    excluded = set(excluded_categories(negative_prompt)) | set(parsed.negated)
    entries: list[PaletteEntry] = []

    def add(category: str, weight: float, origin: str, matched: str) -> None:
        if category in excluded or any(e.category == category for e in entries):
            return
        entries.append(PaletteEntry(category, weight, origin, matched))

    for m in parsed.matches:
        add(m.category, 1.0, "prompt", m.text)
    has_prompt = bool(parsed.matches or parsed.layers)
    layers = {BY_NAME[e.category].layer for e in entries}
    events = [e for e in analysis.events if e.kind in ("impact", "appear")]
    balls = visual.ball_events(analysis)

    # event sounds: the visuals always get sounds unless the prompt or negative rules them out;
    # the prompt's own event sounds take the events they fit (thunder: the flashes alone)
    prompt_events = [e.category for e in entries if BY_NAME[e.category].layer == "events"]
    for e in events:
        if not any(visual.can_sound(c, e) for c in prompt_events):
            cat, why = visual.visual_event_category(e, analysis, balls)
            add(cat, 0.9, "visual", why)
    if analysis.cuts and "whoosh" not in excluded and not has_prompt:
        add("whoosh", 0.6, "visual", f"{len(analysis.cuts)} scene cut(s)")
    # ambience: the prompt's beds, else beds from the look of each scene
    if not layers & {"ambience", "texture"}:
        origin = "visual" if (not has_prompt or "ambience" in parsed.layers) else "default"
        for scene in analysis.scenes:
            for cat, weight, why in visual.scene_ambience(scene.cues):
                add(cat, weight if origin == "visual" else 0.5 * weight, origin, why)
    # music only when asked for
    wants_music = "music" in parsed.layers or any(BY_NAME[e.category].layer == "music" for e in entries)
    if wants_music and not any(e.category.startswith("music.") for e in entries):
        mood, why = visual.mood_from_visuals(analysis.cues, analysis.rhythm.tempo_bpm)
        add(mood, 0.9, "visual", why)
    return Palette(
        entries=tuple(entries),
        excluded=tuple(sorted(excluded)),
        prompt=prompt,
        negative_prompt=negative_prompt,
        unmatched_terms=parsed.unmatched,
        unmatched_negative_terms=negative_words_naming_nothing(negative_prompt),
    )


def _source(category: str, counter: dict[str, int]) -> str:
    """What makes the sound; rotates through bank samples so repeats differ."""
    renderer = BY_NAME[category].renderer
    options = bank_categories().get(category, ())
    n = counter.get(category, 0)
    counter[category] = n + 1
    if renderer == "sample" and options:
        return f"bank:{options[n % len(options)]}"
    if renderer == "modal":
        return f"synth:modal/{category.split('.', 1)[1]}"
    return f"synth:{renderer}"


ROLL_FIRST_S = 1.5
ROLL_PERIOD_S = 9.0
"""When the prompt asks for thunder and nothing in the picture lights up, it rolls in the
distance: first at this time, then every this many seconds."""


def _distant_rolls(analysis: VisualAnalysis, categories: list[str], counter: dict[str, int]) -> list[Cue]:
    """Distant cues of the flash-only ``categories`` the prompt named but no flash carried."""
    out: list[Cue] = []
    for category in categories:
        for t in np.arange(ROLL_FIRST_S, max(analysis.duration_s - 0.5, ROLL_FIRST_S), ROLL_PERIOD_S):
            out.append(Cue(
                time_s=float(t), duration_s=0.6, category=category, layer="events",
                source=_source(category, counter), gain_db=LAYER_GAIN_DB["events"] - 6.0, pan=0.0,
                reason=f"{category} from the prompt, with no flash in the picture: a distant roll every "
                       f"{ROLL_PERIOD_S:.0f} s", distance=0.85, size=1.0, variant=counter[category],
            ))
    return out


def _event_cues(analysis: VisualAnalysis, palette: Palette, counter: dict[str, int]) -> list[Cue]:
    chosen = [c for c in palette.categories if BY_NAME[c].layer == "events"]
    prompt_events = [e.category for e in palette.entries if e.origin == "prompt" and BY_NAME[e.category].layer == "events"]
    balls = visual.ball_events(analysis)
    cues: list[Cue] = []
    for ev in analysis.events:
        if ev.kind == "cut":
            if "whoosh" in chosen:
                cues.append(
                    Cue(
                        time_s=max(0.0, ev.time_s - 0.3),
                        duration_s=0.45,
                        category="whoosh",
                        layer="events",
                        source=_source("whoosh", counter),
                        gain_db=LAYER_GAIN_DB["events"] - 8.0,
                        pan=0.0,
                        reason=f"scene cut at {ev.time_s:.3f} s (whoosh peaks on the cut)",
                        variant=counter["whoosh"],
                    )
                )
            continue
        # the prompt's event sounds this event can take: a flash-only sound (thunder) is placed on
        # flashes, never on a ball's bounces (a "rain, thunder" prompt made 16 thunderclaps of them)
        fitting = [c for c in prompt_events if visual.can_sound(c, ev)]
        if fitting:
            # the prompt's event sounds, by kind: things appearing get the lighter ones
            impacts = [c for c in fitting if c.startswith("impact.") or c in ("water.splash",)]
            others = [c for c in fitting if c not in impacts]
            pool = (others or impacts) if ev.kind == "appear" else (impacts or others)
            category = pool[counter.get("_event", 0) % len(pool)]
            counter["_event"] = counter.get("_event", 0) + 1
            why = f"{ev.reason}; sound from the prompt"
        else:
            category, why = visual.visual_event_category(ev, analysis, balls)
            why = f"{ev.reason}; {why}"
        if category not in chosen:
            continue  # removed by the negative prompt
        distance = float(np.clip(1.0 - np.sqrt(ev.size / 0.02), 0.0, 0.85))
        gain = LAYER_GAIN_DB["events"] + 12.0 * np.log10(max(ev.strength, 0.05)) - 4.0 * distance
        cues.append(
            Cue(
                time_s=ev.time_s,
                duration_s=0.6,
                category=category,
                layer="events",
                source=_source(category, counter),
                gain_db=float(gain),
                pan=float(np.clip(0.85 * ev.x, -1, 1)),
                reason=f"{ev.kind} at {ev.time_s:.4f} s ({ev.timing}): {why}",
                distance=distance,
                size=float(np.clip(np.sqrt(ev.size) * 4.0, 0.1, 1.0)),
                variant=counter[category],
            )
        )
    cues += _distant_rolls(analysis, [c for c in prompt_events if c in visual.FLASH_ONLY and c in chosen
                                      and not any(q.category == c for q in cues)], counter)
    # one sound per instant: sub-frame events closer than a few ms are the same hit
    cues.sort(key=lambda c: c.time_s)
    merged: list[Cue] = []
    for c in cues:
        if merged and c.category == merged[-1].category and c.time_s - merged[-1].time_s < _MIN_EVENT_GAP_S:
            if c.gain_db > merged[-1].gain_db:
                merged[-1] = c
            continue
        merged.append(c)
    return merged


def _footstep_cues(
    analysis: VisualAnalysis, palette: Palette, settings: PlanSettings, events: list[Cue], counter: dict[str, int]
) -> list[Cue]:
    steps = [c for c in palette.categories if BY_NAME[c].layer == "footsteps"]
    if not steps:
        return []
    category = steps[0]
    period = analysis.rhythm.period_s if 0.3 <= analysis.rhythm.period_s <= 0.9 else settings.footstep_period_s
    m = analysis.motion
    # walk wherever something moved within the last or next second; stop in frozen stretches
    moving = (m.energy > 1e-4) | (m.foreground > 0.001)
    active = np.ones(len(m.times_s), dtype=bool)
    if len(m.times_s) > 1 and moving.any():
        idx = np.nonzero(moving)[0]
        near = np.abs(m.times_s[:, None] - m.times_s[idx][None, :]).min(axis=1) if len(idx) < 5000 else None
        if near is not None:
            active = near <= 1.0
    event_times = np.array([c.time_s for c in events]) if events else np.zeros(0)
    out: list[Cue] = []
    t = 0.25
    i = 0
    while t < analysis.duration_s - 0.1:
        k = int(np.searchsorted(m.times_s, t)) if len(m.times_s) else 0
        ok = bool(active[min(k, len(active) - 1)]) if len(active) else True
        if ok and not (event_times.size and np.min(np.abs(event_times - t)) < 0.08):
            out.append(
                Cue(
                    time_s=t,
                    duration_s=0.3,
                    category=category,
                    layer="footsteps",
                    source=_source(category, counter),
                    gain_db=LAYER_GAIN_DB["footsteps"],
                    pan=0.15 if i % 2 else -0.15,
                    reason=f"footsteps every {period:.2f} s while the picture moves",
                    distance=0.3,
                    variant=counter[category],
                )
            )
            i += 1
        t += period
    return out


def _automation(analysis: VisualAnalysis, start_s: float, end_s: float) -> tuple[tuple[float, float], ...]:
    """Motion level (0..1) at 5 Hz over [start, end], smoothed: drives wind gusts, engine revs."""
    m = analysis.motion
    if len(m.times_s) < 2:
        return ()
    grid = np.arange(start_s, end_s + 0.2, 0.2)
    energy = np.interp(grid, m.times_s, m.energy + 0.5 * m.foreground)
    k = 5
    smooth = np.convolve(np.pad(energy, k, mode="edge"), np.ones(2 * k + 1) / (2 * k + 1), mode="same")[k:-k]
    ref = float(np.percentile(smooth, 95)) or 1.0
    level = np.clip(0.25 + 0.75 * smooth / ref, 0.0, 1.0)
    return tuple((round(float(t), 3), round(float(v), 4)) for t, v in zip(grid, level))


def _bed_cues(analysis: VisualAnalysis, palette: Palette, settings: PlanSettings, counter: dict[str, int]) -> list[Cue]:
    out: list[Cue] = []
    beds = [e for e in palette.entries if BY_NAME[e.category].layer in ("ambience", "texture")]
    if not beds:
        return out
    scenes = analysis.scenes
    for si, scene in enumerate(scenes):
        if len(scenes) > 1 and not any(e.origin == "prompt" for e in beds):
            wanted = {c for c, _, _ in visual.scene_ambience(scene.cues)}
            scene_beds = [e for e in beds if e.category in wanted] or beds
        else:
            scene_beds = beds
        first, last = si == 0, si == len(scenes) - 1
        xf = settings.crossfade_s
        start = scene.start_s if first else max(0.0, scene.start_s - xf / 2)
        end = scene.end_s if last else scene.end_s + xf / 2
        for e in scene_beds:
            cat = BY_NAME[e.category]
            gain = LAYER_GAIN_DB[cat.layer] + CATEGORY_TRIM_DB.get(e.category, 0.0) + 20 * np.log10(max(e.weight, 0.1))
            if e.origin == "prompt":
                gain += PROMPT_BED_BOOST_DB
            out.append(
                Cue(
                    time_s=float(start),
                    duration_s=float(end - start),
                    category=e.category,
                    layer=cat.layer,
                    source=_source(e.category, counter),
                    gain_db=float(gain),
                    pan=0.0,
                    reason=f"bed for scene {si + 1} ({scene.start_s:.2f}-{scene.end_s:.2f} s): {e.matched}",
                    variant=counter[e.category],
                    fade_s=settings.edge_fade_s if (first and last) else xf,
                    tempo_bpm=analysis.rhythm.tempo_bpm if e.category == "clock.tick" else 0.0,
                    automation=_automation(analysis, start, end) if cat.layer == "texture" else (),
                )
            )
    return out


def _music_cues(analysis: VisualAnalysis, palette: Palette, counter: dict[str, int]) -> list[Cue]:
    music = [e for e in palette.entries if BY_NAME[e.category].layer == "music"]
    out = []
    tempo = analysis.rhythm.tempo_bpm
    why_tempo = (
        f"tempo {tempo:.0f} BPM from the visual rhythm (period {analysis.rhythm.period_s:.2f} s)"
        if analysis.rhythm.period_s > 0
        else f"tempo {tempo:.0f} BPM from the amount of motion"
    )
    for e in music:
        out.append(
            Cue(
                time_s=0.0,
                duration_s=analysis.duration_s,
                category=e.category,
                layer="music",
                source=_source(e.category, counter),
                gain_db=LAYER_GAIN_DB["music"] + 20 * np.log10(max(e.weight, 0.1)),
                pan=0.0,
                reason=f"music ({e.origin}: {e.matched}); {why_tempo}",
                variant=counter[e.category],
                fade_s=1.5,
                tempo_bpm=float(tempo),
            )
        )
    return out


def plan(
    analysis: VisualAnalysis,
    prompt: str = "",
    negative_prompt: str = "",
    *,
    seed: int = 0,
    loudness_lufs: float = -16.0,
    settings: PlanSettings = PlanSettings(),
) -> CueSheet:
    """The cue sheet for ``analysis``: palette from the prompts (or the visuals), cues from the events."""
    palette = _palette(analysis, prompt.strip(), negative_prompt.strip())
    counter: dict[str, int] = {}
    events = _event_cues(analysis, palette, counter)
    cues = events + _footstep_cues(analysis, palette, settings, events, counter)
    cues += _bed_cues(analysis, palette, settings, counter) + _music_cues(analysis, palette, counter)
    banned = set(palette.excluded)
    cues = [c for c in cues if c.category not in banned]  # strict, whatever the rules above did
    cues.sort(key=lambda c: (c.time_s, c.layer, c.category))
    used = {c.category for c in cues}
    return CueSheet(
        duration_s=analysis.duration_s,
        cues=tuple(cues),
        palette=palette,
        reverb=visual.reverb_for(analysis, used | set(palette.categories)),
        seed=int(seed),
        tempo_bpm=float(analysis.rhythm.tempo_bpm),
        loudness_lufs=float(loudness_lufs),
        video_start_s=float(analysis.video.start_s),
    )
