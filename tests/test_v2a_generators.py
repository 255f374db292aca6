"""Generators: protocol, entry-point registry, and the external-command generator."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
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


@pytest.mark.parametrize("mode, message", [
    ("fail", "exit code 2: CUDA out of memory"), ("nothing", "wrote no audio"),
    # named by the file the command wrote, not by a temporary path that is gone by the time it is read
    ("garbage", r"^external generator 'external' wrote .*\.wav, which cannot be read: "),
])
def test_external_failures_are_generation_errors(video, mode, message):
    gen = ExternalCommandGenerator(TEMPLATE + f" --mode {mode}")
    with pytest.raises(GenerationError, match=message) as failed:
        gen.generate(GenerationRequest(video))
    assert failed.value.path is None and "foleyseal-ext-" not in str(failed.value)


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
    import v2a_core.generators.external as external

    seen = {}
    real_pick = external._pick_output

    def spy(out_dir: Path):  # called while the command's output folder still exists
        seen["args"] = json.loads((out_dir / "args.json").read_text())
        return real_pick(out_dir)

    monkeypatch.setattr(external, "_pick_output", spy)
    ExternalCommandGenerator(TEMPLATE).generate(GenerationRequest(video, prompt="a b  c", negative_prompt="no 'music'"))
    args = seen["args"]
    assert args[args.index("--prompt") + 1] == "a b  c"
    assert args[args.index("--negative_prompt") + 1] == "no 'music'"


HANG = '''
import os, subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
marker = sys.argv[2]
with open(marker + ".tmp", "w") as fh:
    fh.write(f"{os.getpid()} {child.pid} {sys.argv[1]}")
os.replace(marker + ".tmp", marker)
time.sleep(120)
'''


def _hanging_template(tmp_path: Path) -> tuple[str, Path]:
    """A command that starts a child of its own, says so in a marker file, and hangs."""
    script = tmp_path / "hang.py"
    script.write_text(HANG)
    marker = tmp_path / "started.txt"
    return f"{shlex.quote(sys.executable)} {shlex.quote(str(script))} {{output_dir}} {shlex.quote(str(marker))}", marker


def _gone(pid: int, timeout_s: float = 10.0) -> bool:
    """Whether process ``pid`` has ended (a zombie waiting for its reaper counts as ended)."""
    import time

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            return True
        if state == "Z":
            return True
        time.sleep(0.05)
    return False


def test_external_output_in_errors_is_bounded(video):
    gen = ExternalCommandGenerator(
        f"{shlex.quote(sys.executable)} -c \"import sys; sys.stderr.write('E' * 3_000_000 + chr(10) + 'real cause'); "
        "sys.exit(1)\" {output_dir}"
    )
    with pytest.raises(GenerationError) as exc:
        gen.generate(GenerationRequest(video))
    message = str(exc.value)
    assert "failed with exit code 1" in message and message.endswith("real cause")
    assert len(message) < 2200  # the last 2,000 characters of the output, not 3 MB


def test_external_timeout_stops_the_command_and_what_it_started(video, tmp_path):
    import time

    template, marker = _hanging_template(tmp_path)
    gen = ExternalCommandGenerator(template, timeout_s=1.5)
    t0 = time.monotonic()
    with pytest.raises(GenerationError, match=r"ran longer than 1.5 s \(--generator-timeout\)"):
        gen.generate(GenerationRequest(video))
    assert time.monotonic() - t0 < 30
    pid, child, out_dir = marker.read_text().split()
    assert _gone(int(pid)) and _gone(int(child))
    assert not Path(out_dir).parent.exists()  # the temporary folder went too


DAEMONIZING = """
import subprocess, sys
# a model that starts a helper in a session of its own (a daemon, a model server), which keeps
# the command's stdout open, then writes its output and exits
helper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"], start_new_session=True)
open(sys.argv[-1], "w").write(str(helper.pid))
sys.argv = sys.argv[:-1]
sys.path.insert(0, {tests!r})
import fake_v2a_generator
sys.exit(fake_v2a_generator.main())
"""


def test_a_helper_outside_the_group_does_not_hold_the_run(video, tmp_path):
    """A model that left a process of its own session holding its stdout made `generate` wait for
    that process (past --generator-timeout, deaf to SIGTERM: 11 minutes in one report)."""
    import threading

    script = tmp_path / "daemonizing_model.py"
    script.write_text(DAEMONIZING.format(tests=str(FAKE.parent)))
    pid_file = tmp_path / "helper.pid"
    gen = ExternalCommandGenerator(f"{shlex.quote(sys.executable)} {shlex.quote(str(script))} --video {{video}} "
                                   f"--output {{output_dir}} {shlex.quote(str(pid_file))}", timeout_s=60)
    result: list[object] = []
    runner = threading.Thread(target=lambda: result.append(gen.generate(GenerationRequest(video))), daemon=True)
    try:
        runner.start()
        runner.join(60)
        assert not runner.is_alive(), "generate waited for the helper"
        assert len(result) == 1 and result[0].mix.frames > 0
    finally:
        if pid_file.exists():
            os.kill(int(pid_file.read_text()), signal.SIGKILL)


def _generate_with_a_hanging_model(tmp_path: Path):
    """A `foleyseal generate` process whose external model (and a child it started) hangs, once
    the model has started; and the model's pid, its child's pid and its output folder."""
    from test_cli_interrupts import foleyseal, wait_for

    from provenance.core.config import load_settings
    from provenance.keys.pki import install_dev_chain
    from provenance.watermark import new_key, save_key

    home = tmp_path / "home"
    settings = load_settings(home)
    install_dev_chain(settings)
    save_key(new_key(), settings.watermark_key_path)
    template, marker = _hanging_template(tmp_path)
    video = still_video(tmp_path / "five.mp4", duration_s=5.0)
    proc = foleyseal("generate", str(video), "-o", str(tmp_path / "x.wav"), "--generator-command", template,
                     "--home", str(home), "--json")
    wait_for(marker.exists, proc)
    pid, child, out_dir = marker.read_text().split()
    return proc, int(pid), int(child), Path(out_dir)


def test_sigterm_to_generate_stops_the_external_command_and_removes_its_folder(tmp_path):
    proc, pid, child, out_dir = _generate_with_a_hanging_model(tmp_path)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert err.strip() == "interrupted (SIGTERM)"
    assert _gone(pid) and _gone(child)
    assert not out_dir.parent.exists()
    assert not (tmp_path / "x.wav").exists()


def test_a_killed_generate_does_not_leave_the_external_command_running(tmp_path):
    """SIGKILL (or the OOM killer) gives generate no chance to clean up: the model, and what it
    started, ran on orphaned (for up to --generator-timeout, an hour by default), and its working
    folder stayed. A watchdog process stops them and removes the folder."""
    import time

    proc, pid, child, out_dir = _generate_with_a_hanging_model(tmp_path)
    proc.kill()
    proc.communicate(timeout=60)
    assert _gone(pid, timeout_s=20) and _gone(child, timeout_s=20)
    deadline = time.monotonic() + 10
    while out_dir.parent.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not out_dir.parent.exists()


def test_generator_timeout_is_an_option(video):
    from v2a_core.pipeline import GenerateOptions, _generator

    assert _generator(GenerateOptions(generator="external", generator_command=TEMPLATE)).timeout_s == 3600.0
    gen = _generator(GenerateOptions(generator="external", generator_command=TEMPLATE, generator_timeout_s=2.5))
    assert gen.timeout_s == 2.5
    from provenance.core.errors import InputError

    for bad in (0, -1, float("inf"), "10", None):
        with pytest.raises(InputError, match="generator_timeout_s"):
            GenerateOptions(generator_timeout_s=bad)


@pytest.fixture
def plugins(monkeypatch):
    """Two plug-ins declared as entry points: ``fakeplug`` and ``brokenplug``."""
    from importlib.metadata import EntryPoint

    import v2a_core.generators.registry as reg

    declared = [EntryPoint("fakeplug", "fake_v2a_generator:PluginGen", ENTRY_POINT_GROUP),
                EntryPoint("brokenplug", "fake_v2a_generator:BrokenPluginGen", ENTRY_POINT_GROUP)]
    monkeypatch.setattr(reg, "entry_points", lambda group: declared if group == ENTRY_POINT_GROUP else [])


@pytest.mark.parametrize("mode", ["long", "sr8k", "ch8", "stems", "plain"])
def test_plugin_output_is_conformed_to_the_video_like_the_external_one(plugins, video, mode):
    track = generate_soundtrack(video, prompt=mode, generator="fakeplug", loudness_lufs=-20.0)
    assert track.generator == "fakeplug"
    assert track.mix.sample_rate == 48_000 and track.mix.channels == 2
    assert track.mix.frames == 2 * 48_000  # the 2 s video, whatever the plug-in returned
    assert abs(track.loudness_lufs + 20.0) < 1.0 and track.true_peak_dbtp <= -1.0
    if mode == "stems":
        (stem,) = track.stems.values()
        assert stem.sample_rate == 48_000 and stem.channels == 2 and stem.frames == track.mix.frames
    short = generate_soundtrack(video, prompt=mode, generator="fakeplug", duration_s=1.5)
    assert short.mix.frames == 72_000  # --duration holds too
    if mode == "plain":  # a --duration beyond the video ends with the video, as the built-in output does
        assert generate_soundtrack(video, prompt=mode, generator="fakeplug", duration_s=30.0).mix.frames == 96_000
        external = ExternalCommandGenerator(TEMPLATE).generate(GenerationRequest(video, duration_s=30.0))
        assert external.mix.frames == 96_000


@pytest.mark.parametrize(
    "mode, message",
    [("raise", "generator 'fakeplug' failed: RuntimeError: model OOM"),
     # a sys.exit() in the plug-in ended generate with its own code and no word; FoleySeal's own
     # error inside the plug-in did not name it
     ("exit", "generator 'fakeplug' failed: SystemExit: 5"),
     ("zerorate", "generator 'fakeplug' failed: sample rate must be a whole number of Hz above 0, got 0"),
     ("none", "generator 'fakeplug' returned NoneType, not a Soundtrack"),
     ("nan", "the soundtrack of generator 'fakeplug' contains 2 NaN or infinite samples"),
     ("badstem", "generator 'fakeplug' returned a stem named '../escape'")],
)
def test_plugin_failures_are_generation_errors_naming_it(plugins, video, mode, message):
    with pytest.raises(GenerationError, match=re.escape(message)):
        generate_soundtrack(video, prompt=mode, generator="fakeplug")


def test_plugin_that_cannot_start_is_a_generation_error(plugins, video):
    with pytest.raises(GenerationError, match="generator 'brokenplug' cannot be started: RuntimeError: no CUDA device"):
        generate_soundtrack(video, generator="brokenplug")


def test_cli_plugin_mp4_has_the_video_length_and_a_failing_plugin_exits_3(plugins, tmp_path, capsys):
    import av

    from provenance.core.config import load_settings
    from provenance.keys.pki import install_dev_chain
    from provenance.watermark import new_key, save_key
    from test_v2a_pipeline import _run

    home = tmp_path / "home"
    settings = load_settings(home)
    install_dev_chain(settings)
    save_key(new_key(), settings.watermark_key_path)
    clip = still_video(tmp_path / "five.mp4", duration_s=5.0)
    out = tmp_path / "x.mp4"
    code, _, err = _run(["generate", str(clip), "-o", str(out), "--generator", "fakeplug", "--prompt", "long",
                         "--home", str(home), "--json"], capsys)
    assert code == 0, err
    with av.open(str(out)) as c:
        assert abs(float(c.streams.audio[0].duration * c.streams.audio[0].time_base) - 5.0) < 0.05
    code, _, err = _run(["generate", str(clip), "-o", str(tmp_path / "y.wav"), "--generator", "fakeplug",
                         "--prompt", "raise", "--home", str(home)], capsys)
    assert code == 3 and "error: generator 'fakeplug' failed: RuntimeError: model OOM" in err, err
    assert not (tmp_path / "y.wav").exists()


def test_a_cue_sheet_the_generator_does_not_make_is_reported_not_silently_missing(tmp_path):
    from provenance.core.config import load_settings
    from provenance.keys.pki import install_dev_chain
    from provenance.watermark import new_key, save_key
    from v2a_core.pipeline import GenerateOptions, generate

    settings = load_settings(tmp_path / "home")
    install_dev_chain(settings)
    save_key(new_key(), settings.watermark_key_path)
    clip = still_video(tmp_path / "five.mp4", duration_s=5.0)
    opts = GenerateOptions(generator="external", generator_command=TEMPLATE, cue_sheet_path=tmp_path / "c.json",
                           stems_dir=tmp_path / "stems")
    result = generate(clip, tmp_path / "x.wav", opts, settings=settings)
    assert result.cue_sheets == () and not (tmp_path / "c.json").exists()
    # stems asked of a generator that makes none: said, and no empty folder left (it was, silently)
    assert result.stems == () and not (tmp_path / "stems").exists()
    assert result.notes == ("no stems written: the generator 'external' makes none (only a mix)",
                            "c.json not written: the generator 'external' makes no cue sheet")
