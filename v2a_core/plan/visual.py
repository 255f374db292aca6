"""What the picture suggests when the prompt does not say: materials, beds, rooms.

Rules of thumb, each documented where it is made; they only choose among categories of
the taxonomy and are overridden by anything the prompt asks for.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from v2a_core.types import ReverbSpec, SceneCues, VisualAnalysis, VisualEvent


def ball_events(analysis: VisualAnalysis) -> set[int]:
    """Indices (into ``analysis.events``) of impacts of a bouncing ball: a small object hitting
    the same place at least three times with shrinking gaps (tracks may split at bounces, so
    impacts are grouped by screen position, not by track)."""
    impacts = [(i, e) for i, e in enumerate(analysis.events) if e.kind == "impact" and e.size < 0.03]
    out: set[int] = set()
    used: set[int] = set()
    for i, e in impacts:
        if i in used:
            continue
        group = [(j, f) for j, f in impacts if j not in used and abs(f.x - e.x) < 0.15 and abs(f.y - e.y) < 0.3]
        times = np.array([f.time_s for _, f in group])
        if len(group) >= 3:
            gaps = np.diff(np.sort(times))
            if len(gaps) >= 2 and np.mean(gaps[1:] < gaps[:-1] * 1.02) >= 0.6:
                out.update(j for j, _ in group)
        used.update(j for j, _ in group)
    return out


FLASH_MIN_SIZE = 0.3
"""Share of the picture that must light up at once for an appearance to be a flash."""


FLASH_ONLY = frozenset({"weather.thunder"})
"""Event sounds that belong on flashes only (docs/sound-taxonomy.md: thunder is "placed on flashes")."""


def is_flash(event: VisualEvent) -> bool:
    """Whether ``event`` is a flash: much of the picture lights up at once."""
    return event.kind == "appear" and event.size >= FLASH_MIN_SIZE


def can_sound(category: str, event: VisualEvent) -> bool:
    """Whether the event sound ``category`` a prompt named fits ``event``: a flash-only sound
    (thunder) sounds where something lights up (an appearance, of any size: the prompt asked for
    it), never on an impact such as a ball's bounce."""
    return category not in FLASH_ONLY or event.kind == "appear"


def visual_event_category(event: VisualEvent, analysis: VisualAnalysis, balls: set[int]) -> tuple[str, str]:
    """(category, reason) for a visual event when the prompt names no event sound."""
    if event.kind == "cut":
        return "whoosh", "scene cut"
    if event.kind == "appear":
        cues = analysis.cues
        if is_flash(event):
            if cues.sky > 0.15:
                return "weather.thunder", "large flash in an outdoor scene"
            return "impact.hit", "the whole picture changes at once"
        return "ui.blip", "something lights up or appears on screen"
    if any(analysis.events[i] is event for i in balls):
        return "impact.rubber", "a small object bouncing with shrinking gaps"
    if "collision" in event.reason:
        return "impact.wood", "two tracked objects collide"
    if event.size > 0.05:
        return "impact.soft", "a large object stops abruptly"
    return "impact.wood", "a tracked object changes direction abruptly"


def scene_ambience(cues: SceneCues) -> list[tuple[str, float, str]]:
    """(category, weight 0..1, reason) of ambience beds that fit a scene's look."""
    out: list[tuple[str, float, str]] = []
    if cues.blue >= 0.35 and cues.brightness < 0.45:
        out.append(("water.underwater", 0.8, f"{cues.blue:.0%} of the picture is deep blue"))
    elif cues.blue >= 0.25 and (cues.sky >= 0.1 or cues.turbulence >= 0.4):
        out.append(("water.ocean", 0.8, f"blue ({cues.blue:.0%}) and moving like water"))
    if cues.warm >= 0.15 and cues.flicker >= 0.004:
        out.append(("fire.crackle", 0.8, f"flickering warm colours ({cues.warm:.0%})"))
    if cues.green >= 0.25:
        out.append(("ambience.forest", 0.7, f"{cues.green:.0%} of the picture is green"))
    if cues.sky >= 0.25 and cues.brightness > 0.35 and not out:
        out.append(("weather.wind", 0.5, f"open sky ({cues.sky:.0%} of the top third)"))
    if not out:
        out.append(("ambience.room", 0.6, "no outdoor cue: quiet room tone"))
    return out


def mood_from_visuals(cues: SceneCues, tempo_bpm: float) -> tuple[str, str]:
    """A music mood when the prompt asks for music without saying which."""
    if cues.brightness < 0.22:
        return "music.tension", f"dark picture (brightness {cues.brightness:.2f})"
    if cues.saturation > 0.35 and tempo_bpm >= 100:
        return "music.happy", "bright, colourful, lively"
    if cues.blue > 0.25:
        return "music.dreamy", "blue, floating picture"
    return "music.calm", "neither dark nor lively"


def reverb_for(analysis: VisualAnalysis, categories: set[str]) -> ReverbSpec:
    """A room matched to the scene: the prompt's place if it names one, else the picture."""
    cues = analysis.cues
    if "ambience.cave" in categories:
        return ReverbSpec(2.6, 0.35, 3500.0, 0.03, "cave/hall (prompt)")
    if "water.underwater" in categories:
        return ReverbSpec(1.4, 0.3, 1200.0, 0.01, "underwater: dark, dense")
    if "ambience.space" in categories:
        return ReverbSpec(3.0, 0.3, 5000.0, 0.04, "large synthetic space")
    outdoor = cues.sky > 0.2 or cues.green > 0.25 or any(
        c in categories for c in ("ambience.forest", "water.ocean", "weather.wind", "traffic.city")
    )
    if outdoor:
        return ReverbSpec(0.45, 0.08, 6000.0, 0.0, "outdoors: short, dry")
    if cues.brightness < 0.25:
        return ReverbSpec(0.9, 0.16, 4500.0, 0.012, "dark interior")
    return ReverbSpec(0.6, 0.12, 6000.0, 0.008, "room")


def dominant(categories: list[str]) -> str:
    return Counter(categories).most_common(1)[0][0]
