"""Planning: prompts -> palette -> cue sheet; the negative prompt is strict; the taxonomy doc."""

from __future__ import annotations

import json
import re
from collections import defaultdict
from pathlib import Path

import pytest
from test_v2a_video import bounce_video

from v2a_core.analysis import analyze
from v2a_core.plan import excluded_categories, parse_prompt, plan
from v2a_core.plan.prompt import negative_words_naming_nothing, tokens
from v2a_core.plan.taxonomy import BY_NAME, CATEGORIES, markdown

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def analysis(tmp_path_factory):
    path, _ = bounce_video(tmp_path_factory.mktemp("p") / "bounce.mp4")
    return analyze(path)


PROMPTS = [
    # the two prompts of the issue
    ("cinematic, thriller, horror film, music, tension, ambience, footsteps on concrete",
     {"music.tension", "music.horror", "music.epic", "footsteps.concrete", "ambience.room"}),
    ("jellyfish pulsating under water, marine life, ocean", {"water.underwater", "animal.marine", "water.ocean"}),
    # and more
    ("rain on a tin roof at night", {"weather.rain", "ambience.night", "impact.metal"}),
    ("crackling campfire in the forest with birds", {"fire.crackle", "ambience.forest", "animal.birds"}),
    ("busy city street with traffic and crowd chatter", {"traffic.city", "crowd.murmur"}),
    ("calm piano music, peaceful", {"music.calm", "instrument.piano"}),
    ("glass bottles clinking", {"impact.glass"}),
    ("wind howling over snowy mountains, footsteps in snow", {"weather.wind", "footsteps.snow"}),
    ("spaceship interior hum, sci-fi", {"ambience.space", "machine.hum", "electric.buzz"}),
    ("happy upbeat music with drums and bass", {"music.happy", "instrument.percussion", "instrument.bass"}),
    ("thunderstorm with heavy rain", {"weather.thunder", "weather.rain"}),
    ("typing on a keyboard in a quiet office, clock ticking", {"keyboard.typing", "ambience.room", "clock.tick"}),
    ("river flowing, frogs and crickets at night", {"water.stream", "animal.insects", "ambience.night"}),
    ("car engine revving", {"engine.car"}),
    ("sad strings, melancholic", {"music.sad", "instrument.strings"}),
    ("epic orchestral trailer with choir", {"music.epic", "instrument.choir"}),
    ("metal pipe clanging in a factory", {"impact.metal", "machine.hum"}),
    ("stadium crowd cheering", {"crowd.cheer"}),
    ("a door slam, then glass breaking", {"impact.wood", "impact.glass"}),
    ("explosions in a gymnasium", {"impact.hit", "ambience.room"}),
]


@pytest.mark.parametrize("prompt, expected", PROMPTS)
def test_prompts_yield_expected_categories_in_the_cue_sheet(analysis, prompt, expected):
    sheet = plan(analysis, prompt)
    used = {c.category for c in sheet.cues}
    assert expected <= used, f"missing {expected - used}"
    assert all(c.category in BY_NAME for c in sheet.cues)


def test_negative_prompt_removes_music_strictly(analysis):
    sheet = plan(analysis, "ocean, waves", "music")
    assert {c.category for c in sheet.cues} >= {"water.ocean"}
    assert not [c for c in sheet.cues if c.layer == "music"]
    assert "music" not in sheet.layers()
    # asking for music and forbidding it: forbidding wins
    sheet = plan(analysis, "epic music, piano, ocean", "music")
    assert not [c for c in sheet.cues if c.layer == "music"]
    assert "music.epic" in sheet.palette.excluded


def test_negative_prompt_removes_visual_event_sounds_and_named_categories(analysis):
    sheet = plan(analysis, "", "impacts, room tone")
    assert not [c for c in sheet.cues if c.category.startswith("impact.") or c.category == "ambience.room"]
    sheet = plan(analysis, "rain and birds, no birds")
    cats = {c.category for c in sheet.cues}
    assert "weather.rain" in cats and "animal.birds" not in cats


def test_a_negative_drums_removes_every_drum_sound(analysis):
    """"drums" in the negative prompt removed only the music's drum kit: drum hits asked for on
    the visual events (``impact.drum``, played on the same bank drums) stayed in."""
    asked = plan(analysis, "drum hits on each bounce, upbeat music")
    assert "impact.drum" in {c.category for c in asked.cues}
    for negative in ("drums", "drum", "no drums"):
        sheet = plan(analysis, "drum hits on each bounce, upbeat music", negative)
        cats = {c.category for c in sheet.cues}
        assert not cats & {"impact.drum", "instrument.percussion"}, (negative, cats)
        assert {"impact.drum", "instrument.percussion"} <= set(sheet.palette.excluded)
        assert any(c.layer == "music" for c in sheet.cues)  # the music stays, without its drums


VOICES = {"crowd.murmur", "crowd.cheer", "instrument.choir"}


@pytest.mark.parametrize("negative, removed", [
    ("vocals", VOICES), ("no vocals", VOICES), ("voices", VOICES), ("singing", {"instrument.choir"}),
    ("speech", {"crowd.murmur"}), ("dialogue, talking", {"crowd.murmur"}),
])
def test_a_negative_for_voices_removes_every_voice_it_names(analysis, negative, removed):
    """A soundtrack made to sit under dialogue is asked for "no vocals" or "no speech": the
    words removed nothing, and the choir and crowd walla stayed in."""
    prompt = "busy market crowd, cheering audience, calm music with choir"
    asked = {c.category for c in plan(analysis, prompt).cues}
    assert removed <= asked
    sheet = plan(analysis, prompt, negative)
    assert not {c.category for c in sheet.cues} & removed and removed <= set(sheet.palette.excluded)
    assert sheet.palette.unmatched_negative_terms == ()


def test_words_that_name_no_sound_are_reported_from_both_prompts(analysis):
    sheet = plan(analysis, "rain, xylophone, no marimba", "vocals, laughter, hiss")
    palette = sheet.palette
    assert palette.unmatched_terms == ("xylophone", "marimba")
    assert palette.unmatched_negative_terms == ("laughter", "hiss")
    data = json.loads(sheet.to_json())
    assert data["unmatched_terms"] == ["xylophone", "marimba"]
    assert data["unmatched_negative_terms"] == ["laughter", "hiss"]
    prompt_note, negative_note = palette.unmatched_notes()
    assert prompt_note.startswith("the prompt's 'xylophone', 'marimba' name no sound this generator makes")
    assert "(`foleyseal generate --list-sounds` lists the sounds it makes)" in prompt_note  # no docs/ when installed
    assert negative_note.startswith("the negative prompt's 'laughter', 'hiss' name no sound")
    assert negative_note.endswith("nothing was removed for them")
    assert plan(analysis, "ukulele", "rain").palette.unmatched_notes()[0].startswith("the prompt's 'ukulele' names no")
    assert plan(analysis, "rain", "music").palette.unmatched_notes() == []
    assert negative_words_naming_nothing("the drums, no footsteps, 3 sirens") == ("siren",)
    # a prompt written as prose: the words that hold it together name nothing, but are no sound asked for
    assert parse_prompt("I want something eerie, then maybe wind through the trees").unmatched == ("tree",)
    # a lone combining accent (a stray keystroke) folds to no word at all, not to an empty one
    assert parse_prompt("rain \u0301 marimba").unmatched == ("marimba",)
    assert negative_words_naming_nothing("birds, \u0301") == ()


def test_emoji_stand_for_the_sound_their_name_says_or_are_named_as_naming_nothing(analysis):
    """An emoji prompt was dropped without a note ("🔥"), and "🌧️" left only its invisible
    variation selector, which the note then named."""
    assert [m.category for m in parse_prompt("🔥").matches] == ["fire.crackle"]
    parsed = parse_prompt("🌧️ ⚡ 🐶🔥, no 👍🏽")
    assert [m.category for m in parsed.matches] == ["weather.rain", "fire.crackle"]
    assert parsed.unmatched == ("⚡", "🐶", "👍🏽")  # whole emoji, skin tone included
    assert "\ufe0f" not in "".join(parsed.unmatched)
    assert parse_prompt("rain\ufe0f marimba").unmatched == ("marimba",)  # a stray selector is no word
    assert "fire.crackle" in excluded_categories("🔥")
    note = plan(analysis, "rain ⚡").palette.unmatched_notes()[0]
    assert note.startswith("the prompt's '⚡' names no sound"), note


def test_the_documented_example_prompts_name_only_sounds_the_generator_makes():
    """The README's and the demo's prompts are what a new user runs first: 'gym' in them named
    no sound, so the first run printed a note that the example's own word was not understood."""
    found = []
    for doc in ("README.md", "scripts/demo.sh"):
        for flag, text in re.findall(r'--(prompt|negative-prompt) "([^"]*)"', (ROOT / doc).read_text()):
            found.append(text)
            if flag == "prompt":
                assert parse_prompt(text).unmatched == (), (doc, text)
            else:
                assert negative_words_naming_nothing(text) == (), (doc, text)
    assert len(found) >= 4


def test_no_prompt_gives_a_plausible_palette_from_the_picture(analysis):
    sheet = plan(analysis)
    cats = {c.category for c in sheet.cues}
    assert cats, "empty palette"
    assert "impact.rubber" in cats  # a small object bouncing with shrinking gaps
    assert any(BY_NAME[c].layer == "ambience" for c in cats)
    assert not any(BY_NAME[c].layer == "music" for c in cats)  # music only when asked for
    events = [c for c in sheet.cues if c.layer == "events"]
    impacts = [e for e in analysis.events if e.kind == "impact"]
    assert [c.time_s for c in events] == pytest.approx([e.time_s for e in impacts])
    assert [c.pan for c in events] == pytest.approx([0.85 * e.x for e in impacts])


def test_cue_sheet_is_json_with_every_field(analysis):
    sheet = plan(analysis, "footsteps on gravel, tension", seed=7, loudness_lufs=-20)
    data = json.loads(sheet.to_json())
    assert data["seed"] == 7 and data["loudness_lufs"] == -20
    assert data["prompt"] == "footsteps on gravel, tension"
    for cue in data["cues"]:
        assert {"time_s", "category", "source", "gain_db", "pan", "reason"} <= set(cue)
        assert -1 <= cue["pan"] <= 1 and cue["reason"]


def test_taxonomy_is_large_unambiguous_and_documented():
    assert len(CATEGORIES) >= 40
    owners = defaultdict(set)
    for c in CATEGORIES:
        for s in c.synonyms:
            owners[tuple(tokens(s))].add(c.name)
    assert not {k: v for k, v in owners.items() if len(v) > 1}, "a synonym selects two categories"
    doc = (ROOT / "docs" / "sound-taxonomy.md").read_text()
    assert doc == markdown(), "docs/sound-taxonomy.md is stale: regenerate it from v2a_core/plan/taxonomy.py"


def test_thunder_from_the_prompt_goes_on_flashes_not_on_a_balls_bounces(analysis, tmp_path):
    """ "rain, thunder, tension" on a bouncing ball made every bounce a thunderclap (thunder is
    "placed on flashes"): the bounces keep the ball's sound, and flashes still get thunder."""
    from test_v2a_video import flash_video

    events = [c for c in plan(analysis, "rain, thunder, tension").cues if c.layer == "events"]
    plain = [c for c in plan(analysis).cues if c.layer == "events"]
    assert plain and {c.category for c in plain} == {"impact.rubber"}
    thunder = [c for c in events if c.category == "weather.thunder"]
    assert [(c.time_s, c.category) for c in events if c not in thunder] == [(c.time_s, c.category) for c in plain]
    # asked for, with no flash to carry it: it rolls in the distance, off the bounces
    assert thunder and all("no flash in the picture" in c.reason for c in thunder)
    assert not {c.time_s for c in thunder} & {c.time_s for c in plain}
    flash, onsets = flash_video(tmp_path / "flash.mp4")
    thunder = [c.time_s for c in plan(analyze(flash), "thunder").cues if c.category == "weather.thunder"]
    assert thunder == pytest.approx(onsets, abs=1e-6)


def test_prompt_parsing_details():
    parsed = parse_prompt("Waves crashing; NO music, without birds!  footsteps on wooden floorboards")
    cats = [m.category for m in parsed.matches]
    assert "water.ocean" in cats and "footsteps.wood" in cats
    assert "music.calm" in parsed.negated and "animal.birds" in parsed.negated
    assert set(excluded_categories("music")) == {c.name for c in CATEGORIES if c.layer == "music"}
    assert "footsteps.snow" in excluded_categories("footsteps")
    assert parse_prompt("").matches == ()


def test_words_of_any_script_are_matched_or_reported_never_dropped():
    parsed = parse_prompt("雨, дождь и гром, thunder, café, बारिश")
    assert [m.category for m in parsed.matches] == ["weather.thunder", "crowd.murmur"]  # accents folded
    assert set(parsed.unmatched) >= {"雨", "дождь", "гром", "बारिश"}
    assert excluded_categories("rain，birds")[:2] == ("weather.rain", "animal.birds")  # a full-width comma


def test_the_cli_lists_the_sounds_where_the_docs_are_not_installed(capsys):
    """An installed user has no docs/: `generate --list-sounds` prints the taxonomy without
    needing a video."""
    from foleyseal.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["generate", "--list-sounds"])
    assert exc.value.code == 0 and capsys.readouterr().out == markdown()
