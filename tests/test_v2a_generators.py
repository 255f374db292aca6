"""Generators: protocol, entry-point registry, and the external-command generator."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

import numpy as np
import pytest
from test_v2a_video import still_video

from provenance.core.errors import ConfigError, GenerationError
from v2a_core.generators import (
    ENTRY_POINT_GROUP,
    BuiltinGenerator,
    ExternalCommandGenerator,
    GenerationRequest,
    Generator,
    available,
    load_generator,
)
from v2a_core.pipeline import generate_soundtrack

FAKE = Path(__file__).resolve().parent / "fake_v2a_generator.py"
TEMPLATE = (
    f"{shlex.quote(sys.executable)} {shlex.quote(str(FAKE))} --video {{video}} --prompt {{prompt}} "
    "--negative_prompt {negative_prompt} --output {output_dir} --seed {seed}"
)


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> Path:
    return still_video(tmp_path_factory.mktemp("g") / "clip.mp4", duration_s=2.0)


def test_registry_lists_builtin_and_external_and_entry_points():
    names = available()
    assert {"builtin", "external"} <= set(names)
    assert isinstance(load_generator("builtin"), Generator)
    from importlib.metadata import entry_points

    declared = {ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)}
    assert declared <= set(names)  # installed plug-ins are offered too


def test_unknown_or_broken_generators_are_clear_errors(monkeypatch):
    with pytest.raises(ConfigError, match="unknown generator 'nope'"):
        load_generator("nope")
    import v2a_core.generators.registry as reg

    monkeypatch.setattr(reg, "BUILTIN", {**reg.BUILTIN, "broken": "no_such_module_xyz:Gen"})
    with pytest.raises(GenerationError, match="cannot be loaded"):
        load_generator("broken")


def test_external_generator_runs_the_template_without_a_shell(video, tmp_path):
    prompt = 'rain; echo "pwned" > /tmp/x && $(whoami) {braces}'
    gen = ExternalCommandGenerator(TEMPLATE)
    argv = gen.arguments({"video": "v.mp4", "prompt": prompt, "negative_prompt": "", "output_dir": "/o", "seed": "3",
                          "duration": "1.0"})
    assert argv[argv.index("--prompt") + 1] == prompt  # one argument, untouched
    track = gen.generate(GenerationRequest(video, prompt=prompt, negative_prompt="music, birds", seed=3))
    assert track.mix.sample_rate == 48_000 and track.mix.channels == 2
    assert abs(track.mix.duration_s - 2.0) < 0.01
    assert abs(track.loudness_lufs - (-16.0)) < 1.0 and track.true_peak_dbtp <= -1.0
    assert track.generator == "external" and track.cue_sheet is None


def test_external_output_is_conformed_from_mono_44k(video, tmp_path):
    gen = ExternalCommandGenerator(TEMPLATE + " --mode mono44k")
    track = gen.generate(GenerationRequest(video, prompt="x", loudness_lufs=-20.0))
    assert track.mix.sample_rate == 48_000 and track.mix.channels == 2
    assert np.allclose(track.mix.samples[0], track.mix.samples[1])
    assert abs(track.loudness_lufs + 20.0) < 1.0


def test_different_prompts_reach_the_external_model(video):
    gen = ExternalCommandGenerator(TEMPLATE)
    a = gen.generate(GenerationRequest(video, prompt="ocean")).mix.samples[0]
    b = gen.generate(GenerationRequest(video, prompt="engine")).mix.samples[0]
    fa = np.argmax(np.abs(np.fft.rfft(a)))
    fb = np.argmax(np.abs(np.fft.rfft(b)))
    assert fa != fb


@pytest.mark.parametrize("mode, message", [("fail", "exit code 2: CUDA out of memory"), ("nothing", "wrote no audio")])
def test_external_failures_are_generation_errors(video, mode, message):
    gen = ExternalCommandGenerator(TEMPLATE + f" --mode {mode}")
    with pytest.raises(GenerationError, match=message):
        gen.generate(GenerationRequest(video))


@pytest.mark.parametrize(
    "template, message",
    [
        ("", "empty"),
        ("demo.py --video {video}", "{output_dir}"),
        ("demo.py --out {output_dir} --model {model}", "unknown placeholder"),
        ('demo.py "unclosed {output_dir}', "cannot parse"),
    ],
)
def test_bad_templates_are_config_errors(template, message):
    with pytest.raises(ConfigError, match=message.replace("{", r"\{").replace("}", r"\}")):
        ExternalCommandGenerator(template)


def test_missing_program_is_a_generation_error(video):
    gen = ExternalCommandGenerator("/no/such/program --out {output_dir}")
    with pytest.raises(GenerationError, match="program not found"):
        gen.generate(GenerationRequest(video))


def test_pipeline_uses_the_chosen_generator(video):
    track = generate_soundtrack(video, prompt="x", generator="external", generator_command=TEMPLATE)
    assert track.generator == "external"
    track = generate_soundtrack(video, seed=1)
    assert track.generator == BuiltinGenerator.name and track.cue_sheet is not None


def test_fake_generator_receives_each_value_as_one_argument(video, tmp_path, monkeypatch):
    seen = {}
    real_run = __import__("subprocess").run

    def spy(argv, **kw):
        out = Path(argv[argv.index("--output") + 1])
        result = real_run(argv, **kw)
        seen["args"] = json.loads((out / "args.json").read_text())
        return result

    monkeypatch.setattr("v2a_core.generators.external.subprocess.run", spy)
    ExternalCommandGenerator(TEMPLATE).generate(GenerationRequest(video, prompt="a b  c", negative_prompt="no 'music'"))
    args = seen["args"]
    assert args[args.index("--prompt") + 1] == "a b  c"
    assert args[args.index("--negative_prompt") + 1] == "no 'music'"
