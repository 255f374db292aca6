"""The sound taxonomy: every category the built-in generator can plan and render.

Each category has a layer (which stem it lands in), the renderer that makes it, the words
that select it in a prompt (synonyms, matched as whole words or phrases, plurals folded),
and the group words that remove it in a negative prompt ("music" removes every music mood
and instrument). ``docs/sound-taxonomy.md`` is generated from this table
(``python -c 'from v2a_core.plan.taxonomy import markdown; print(markdown(), end="")' > docs/sound-taxonomy.md``); a test keeps it in sync.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Category:
    name: str
    layer: str
    """Stem the category lands in: events, footsteps, ambience, texture or music."""
    renderer: str
    """Synthesis model (see ``v2a_core.render``)."""
    synonyms: tuple[str, ...]
    groups: tuple[str, ...]
    """Words that select the whole group in a negative prompt (and a default member in a prompt)."""
    description: str


def _c(name: str, layer: str, renderer: str, synonyms: str, groups: str, description: str) -> Category:
    return Category(
        name=name,
        layer=layer,
        renderer=renderer,
        synonyms=tuple(s.strip() for s in synonyms.split(",") if s.strip()),
        groups=tuple(g.strip() for g in groups.split(",") if g.strip()),
        description=description,
    )


CATEGORIES: tuple[Category, ...] = (
    # ---------------------------------------------------------------- impacts (on visual events)
    _c("impact.wood", "events", "modal", "wood, wooden, knock, knocking, plank, log, table, door knock, clack, block, blocks, "
       "door slam, door slamming, slamming door",
       "impacts, impact, hits, foley", "Hollow wooden knock: few inharmonic modes, fast decay."),
    _c("impact.metal", "events", "modal", "metal, metallic, steel, iron, clang, clanging, pipe, anvil, tin, tin can",
       "impacts, impact, hits, foley, metal", "Ringing metal: dense inharmonic modes, long decay."),
    _c("impact.glass", "events", "modal", "glass, clink, clinking, bottle, window, ceramic, porcelain, cup, "
       "glass breaking, breaking glass, shatter, shattering",
       "impacts, impact, hits, foley", "Bright glass/ceramic clink: high modes, medium decay."),
    _c("impact.stone", "events", "modal", "stone, rock, brick, pebble, concrete hit, rocks, rubble",
       "impacts, impact, hits, foley", "Dull stone knock with a gritty noise burst."),
    _c("impact.plastic", "events", "modal", "plastic, toy, click, crate, plastic box, lego",
       "impacts, impact, hits, foley", "Light plastic tap: high, heavily damped modes."),
    _c("impact.rubber", "events", "modal", "ball, balls, bounce, bouncing, rubber, tennis ball, basketball, football",
       "impacts, impact, hits, foley", "Ball bounce: low 'thup' with a soft click, pitch from ball size."),
    _c("impact.soft", "events", "modal", "thud, cloth, body fall, body, landing, pillow, punch, sack",
       "impacts, impact, hits, foley", "Soft body thud: lowpassed noise and a low mode."),
    _c("impact.drum", "events", "sample", "drumstick, tom, toms, snare, percussion hit, drum hit, drum hits, stick hits drum",
       "impacts, impact, hits, foley, percussion, drums", "Drum hits from the sample bank (toms, snare, kick)."),
    _c("impact.hit", "events", "sample", "hit, boom, slam, cinematic hit, impact, smash, crash, bang, explosion, blast",
       "impacts, impact, hits, foley", "Cinematic hit: sampled impact layered with a sub boom."),
    _c("water.splash", "events", "splash", "splash, splashing, dive, plunge",
       "water, foley", "Splash: noise burst with bubble chirps."),
    _c("weather.thunder", "events", "thunder", "thunder, lightning, thunderstorm, thunderclap",
       "weather, storm", "Thunder: crack and long low rumble, placed on flashes (with none in the picture, "
       "a distant roll every 9 s), never on impacts."),
    _c("ui.blip", "events", "sample", "blip, beep, interface, screen, computer, notification, ui, display, monitor",
       "ui, electronic sounds, beeps", "Interface blips from the sample bank, on things appearing on screen."),
    _c("whoosh", "events", "whoosh", "whoosh, swoosh, swish, swing, fast motion, transition, woosh, swipe",
       "whooshes, transitions", "Filtered noise sweep peaking at the cut or the fast movement."),
    _c("riser", "events", "riser", "riser, build up, build-up, rising tension, swell, crescendo",
       "whooshes, transitions", "Rising noise and tone swell into a scene cut."),
    # ---------------------------------------------------------------- footsteps
    _c("footsteps.concrete", "footsteps", "footsteps", "footsteps on concrete, steps on concrete, walking on concrete, footsteps on pavement, heels",
       "footsteps, steps, walking", "Hard heel-toe clicks on concrete."),
    _c("footsteps.wood", "footsteps", "footsteps", "footsteps on wood, walking on wood, floorboards, creaking floor, boardwalk",
       "footsteps, steps, walking", "Resonant steps on wooden boards."),
    _c("footsteps.gravel", "footsteps", "footsteps", "footsteps on gravel, walking on gravel, gravel path",
       "footsteps, steps, walking", "Granular crunch of gravel."),
    _c("footsteps.grass", "footsteps", "footsteps", "footsteps on grass, walking on grass, footsteps in grass",
       "footsteps, steps, walking", "Soft swishy steps in grass."),
    _c("footsteps.snow", "footsteps", "footsteps", "footsteps in snow, footsteps on snow, walking in snow",
       "footsteps, steps, walking", "Squeaky compressed-snow crunch."),
    _c("footsteps.sand", "footsteps", "footsteps", "footsteps in sand, footsteps on sand, walking on sand",
       "footsteps, steps, walking", "Muffled shuffling steps in sand."),
    # ---------------------------------------------------------------- ambience beds and textures
    _c("water.ocean", "ambience", "ocean", "ocean, sea, waves, surf, shore, beach, seaside, tide",
       "water, ambience, nature", "Breaking waves: slow swells of filtered noise."),
    _c("water.stream", "ambience", "stream", "river, stream, brook, creek, flowing water, waterfall, fountain, water",
       "water, ambience, nature", "Running water: dense bubbling noise."),
    _c("water.underwater", "ambience", "underwater", "underwater, under water, submerged, deep sea, diving, aquarium, undersea",
       "water, ambience", "Muffled low rumble with slow pressure swells."),
    _c("water.bubbles", "ambience", "bubbles", "bubbles, bubbling, fizz, fizzing, boiling",
       "water", "Random bubble chirps."),
    _c("water.drips", "ambience", "drips", "drip, drips, dripping, drops, droplets, leak, leaking",
       "water", "Sparse resonant drops in a wet room."),
    _c("weather.rain", "ambience", "rain", "rain, raining, rainfall, drizzle, downpour, rainy, storm",
       "weather, ambience, water", "Rain: dense droplet clicks over hiss."),
    _c("weather.wind", "texture", "wind", "wind, windy, breeze, gust, gusts, howling, blizzard, mountain, mountains",
       "weather, ambience", "Wind: band-passed noise whose gusts follow the motion on screen."),
    _c("fire.crackle", "ambience", "fire", "fire, flames, campfire, fireplace, burning, crackling, bonfire, torch",
       "fire, ambience", "Fire: low roar and random crackles."),
    _c("crowd.murmur", "ambience", "crowd", "crowd, people, chatter, market, restaurant, murmur, cafe, party, voices",
       "crowd, people, voices, vocals, speech, talking, dialogue, dialog, conversation, ambience",
       "Indistinct crowd walla (formant-filtered babble)."),
    _c("crowd.cheer", "ambience", "cheer", "cheer, cheering, applause, clapping, stadium, audience, ovation",
       "crowd, people, voices, vocals", "Applause and cheering swell."),
    _c("traffic.city", "ambience", "traffic", "traffic, city, street, urban, downtown, cars passing, highway",
       "traffic, city, ambience, vehicles", "City traffic rumble with passing cars."),
    _c("engine.car", "texture", "engine", "car, engine, motor, vehicle, driving, truck, revving, motorbike, motorcycle, automobile",
       "vehicles, engines, traffic", "Engine harmonics whose revs follow the motion on screen."),
    _c("engine.aircraft", "texture", "aircraft", "airplane, plane, jet, aircraft, helicopter, flight, propeller",
       "vehicles, engines", "Jet/propeller roar that swells with motion."),
    _c("machine.hum", "ambience", "hum", "machine, machinery, factory, hum, humming, motor hum, fan, generator, engine room",
       "machines, ambience", "Mains hum, harmonics and machine noise."),
    _c("electric.buzz", "ambience", "buzz", "electric, electrical, buzz, buzzing, neon, transformer, sci-fi, scifi, hologram, laser",
       "machines, electronic sounds", "Electrical buzz with flickering modulation."),
    _c("animal.birds", "ambience", "birds", "birds, bird, birdsong, chirping, songbirds, tweeting, dawn chorus, birds singing, singing birds",
       "animals, nature, wildlife", "Birdsong: frequency-modulated chirps."),
    _c("animal.insects", "ambience", "insects", "insects, crickets, cicadas, bugs, frogs, night insects, swamp",
       "animals, nature, wildlife", "Crickets and cicadas: pulsed high tones."),
    _c("animal.marine", "ambience", "marine", "marine life, jellyfish, whale, whales, dolphin, fish, sea creatures, coral reef",
       "animals, wildlife, water", "Distant whale-like glides and clicks."),
    _c("animal.crow", "ambience", "sample", "crow, crows, raven, caw, cawing, rooks",
       "animals, wildlife, birds", "Occasional crow caws from the sample bank."),
    _c("keyboard.typing", "ambience", "typing", "typing, keyboard, keys, keystrokes, typewriter, computer typing",
       "foley, machines", "Bursts of key clicks."),
    _c("clock.tick", "ambience", "clock", "clock, ticking, tick tock, timer, countdown, watch",
       "machines, foley", "Clock ticks, tempo locked to the visual rhythm if any."),
    _c("ambience.room", "ambience", "room", "room tone, room, indoor, interior, office, quiet room, home, kitchen, "
       "gym, gymnasium, sports hall",
       "ambience, room tone, background", "Quiet room tone: pink noise, air handling."),
    _c("ambience.forest", "ambience", "forest", "forest, woodland, jungle, nature, park, countryside, garden",
       "ambience, nature", "Forest air with leaves and distant birds."),
    _c("ambience.night", "ambience", "night", "night, nighttime, evening, midnight, dusk",
       "ambience, nature", "Night air: low rumble and sparse insects."),
    _c("ambience.space", "ambience", "space", "space, drone, cosmic, void, outer space, spaceship, space station, alien",
       "ambience, drones", "Deep evolving drone."),
    _c("ambience.cave", "ambience", "cave", "cave, cavern, tunnel, hall, cathedral, church, dungeon, basement",
       "ambience", "Cavernous air and distant drips (long reverb)."),
    # ---------------------------------------------------------------- music moods
    _c("music.tension", "music", "music", "tension, tense, thriller, suspense, suspenseful, anxious, chase, danger",
       "music, score, soundtrack", "Minor-key pulse, low ostinato, dissonant pad."),
    _c("music.horror", "music", "music", "horror, scary, creepy, eerie, dread, haunted, spooky, sinister, terror",
       "music, score, soundtrack", "Cluster drones, detuned strings, sparse stingers."),
    _c("music.calm", "music", "music", "calm, peaceful, relaxing, serene, gentle, soothing, tranquil, meditation, ambient music",
       "music, score, soundtrack", "Slow major-key pad and soft piano."),
    _c("music.happy", "music", "music", "happy, upbeat, cheerful, playful, joyful, fun, uplifting",
       "music, score, soundtrack", "Major-key pulse, plucks and percussion on the beat."),
    _c("music.sad", "music", "music", "sad, melancholic, melancholy, sorrow, emotional, somber, grief, lonely",
       "music, score, soundtrack", "Slow minor chords, long strings."),
    _c("music.epic", "music", "music", "epic, cinematic, heroic, orchestral, trailer, grand, dramatic, action",
       "music, score, soundtrack", "Big minor/major progression, low brass-like pad, drums."),
    _c("music.dreamy", "music", "music", "dreamy, ethereal, floating, magical, mysterious, wonder, fantasy",
       "music, score, soundtrack", "Bell and pad arpeggios with lush reverb."),
    # ---------------------------------------------------------------- instruments (colour a music bed)
    _c("instrument.piano", "music", "music", "piano, grand piano", "music, instruments",
       "Piano voice (additive partials; bank piano)."),
    _c("instrument.strings", "music", "music", "strings, violin, violins, cello, orchestra, string section",
       "music, instruments", "Bowed-string voice (filtered saws with vibrato)."),
    _c("instrument.pad", "music", "music", "synth, synthesizer, pad, electronic, synthwave, electronica",
       "music, instruments", "Warm detuned synth pad."),
    _c("instrument.percussion", "music", "music", "beat, percussion, rhythm, drum beat, groove, drums",
       "music, instruments, percussion, drums", "Kick/snare/hat pattern on the beat (bank drums)."),
    _c("instrument.bass", "music", "music", "bass, bassline, sub bass, low end", "music, instruments",
       "Sub bass following the chord roots."),
    _c("instrument.bells", "music", "music", "bells, chimes, glockenspiel, music box, celesta, bell",
       "music, instruments", "Bell tones (modal synthesis)."),
    _c("instrument.guitar", "music", "music", "guitar, acoustic guitar, strum, plucked", "music, instruments",
       "Plucked guitar (Karplus-Strong)."),
    _c("instrument.choir", "music", "music", "choir, choral, vocal pad, chant, chanting",
       "music, instruments, voices, vocals, singing, singer", "Choir 'aah' (bank choir and formant pad)."),
)

BY_NAME: dict[str, Category] = {c.name: c for c in CATEGORIES}

#: Default member when a prompt names only a group ("music", "footsteps", "water").
GROUP_DEFAULTS: dict[str, str] = {
    "footsteps": "footsteps.concrete",
    "steps": "footsteps.concrete",
    "walking": "footsteps.concrete",
    "impacts": "impact.wood",
    "hits": "impact.hit",
    "foley": "impact.wood",
    "water": "water.stream",
    "weather": "weather.wind",
    "animals": "animal.birds",
    "wildlife": "animal.birds",
    "vehicles": "traffic.city",
    "machines": "machine.hum",
    "whooshes": "whoosh",
    "transitions": "whoosh",
}

#: With a footsteps word in the prompt, the first of these words picks the surface.
SURFACE_WORDS: dict[str, str] = {
    "concrete": "footsteps.concrete",
    "pavement": "footsteps.concrete",
    "sidewalk": "footsteps.concrete",
    "asphalt": "footsteps.concrete",
    "stone": "footsteps.concrete",
    "tiles": "footsteps.concrete",
    "wood": "footsteps.wood",
    "wooden": "footsteps.wood",
    "floorboards": "footsteps.wood",
    "gravel": "footsteps.gravel",
    "grass": "footsteps.grass",
    "leaves": "footsteps.grass",
    "forest": "footsteps.grass",
    "snow": "footsteps.snow",
    "snowy": "footsteps.snow",
    "ice": "footsteps.snow",
    "sand": "footsteps.sand",
    "beach": "footsteps.sand",
    "desert": "footsteps.sand",
}

#: Words that trigger footsteps (with a surface from SURFACE_WORDS, else concrete).
FOOTSTEP_WORDS: tuple[str, ...] = ("footsteps", "footstep", "steps", "walking", "walk", "running", "jogging", "stomping")

#: Words that ask for a layer without naming a category: the planner fills it from the visuals.
LAYER_WORDS: dict[str, str] = {
    "music": "music",
    "score": "music",
    "soundtrack": "music",
    "ambience": "ambience",
    "ambiance": "ambience",
    "atmosphere": "ambience",
    "background": "ambience",
}


def markdown() -> str:
    """The taxonomy as a Markdown document (docs/sound-taxonomy.md)."""
    lines = [
        "# Sound taxonomy of the built-in generator",
        "",
        "Generated from `v2a_core/plan/taxonomy.py` "
        "(`python -c 'from v2a_core.plan.taxonomy import markdown; print(markdown(), end=\"\")' "
        "> docs/sound-taxonomy.md`); do not edit by hand.",
        "",
        f"{len(CATEGORIES)} categories. A prompt selects a category when it contains one of its synonyms "
        "(whole words or phrases, case, accents and plural ignored; words that name nothing, in any "
        "script, are listed in the cue sheet's `unmatched_terms`). A negative prompt removes every category "
        "it selects, and every category of a group it names (for example `music` removes all "
        "`music.*` moods and `instrument.*` voices). Words such as `music` or `ambience` in a prompt "
        "ask for that layer and let the visuals choose its content; `no X` / `without X` inside a "
        "prompt count as negative.",
        "",
        "An excluded category is not heard inside other categories' sounds either: a forest bed plays "
        "without its birds (`animal.birds`), a night without its insects (`animal.insects`), a cave "
        "without its drips (`water.drips`), a stream or underwater bed and a splash without bubbles "
        "(`water.bubbles`), traffic without passing cars (`engine.car`), room tone without mains hum "
        "(`machine.hum`); a music mood without an excluded instrument (its percussion and toms also "
        "count as `impact.drum`). A mood whose every instrument is excluded is played on the first "
        "allowed of pad, strings, piano, guitar, bells, choir, bass, and with none allowed there is no "
        "music. The cue sheet's `notes` say what was left out.",
        "",
        "Layers: `events` (one-shots on visual events), `footsteps`, `ambience` (beds), "
        "`texture` (continuous sounds driven by on-screen motion), `music`. Each layer is one stem.",
        "",
        "| Category | Layer | Renderer | Synonyms | Removed by | Sound |",
        "|---|---|---|---|---|---|",
    ]
    for c in CATEGORIES:
        lines.append(
            f"| `{c.name}` | {c.layer} | {c.renderer} | {', '.join(c.synonyms)} | {', '.join(c.groups)} | {c.description} |"
        )
    lines += [
        "",
        "## Group words in prompts",
        "",
        "| Word | Default category |",
        "|---|---|",
    ]
    lines += [f"| {w} | `{c}` |" for w, c in GROUP_DEFAULTS.items()]
    lines += [
        "",
        f"Footsteps words ({', '.join(FOOTSTEP_WORDS)}) take their surface from the first of these words "
        "in the prompt (default concrete):",
        "",
        "| Surface word | Category |",
        "|---|---|",
    ]
    lines += [f"| {w} | `{c}` |" for w, c in SURFACE_WORDS.items()]
    lines += ["", "| Word | Layer chosen from the visuals |", "|---|---|"]
    lines += [f"| {w} | {layer} |" for w, layer in LAYER_WORDS.items()]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(markdown(), end="")
