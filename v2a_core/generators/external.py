"""Run any command-line video-to-audio model (MMAudio, HunyuanVideo-Foley, ...) as a generator.

The command is a template such as::

    python demo.py --video {video} --prompt {prompt} --negative_prompt {negative_prompt} --output {output_dir}

It is split with :func:`shlex.split` *before* the placeholders are filled in, and run
without a shell, so a prompt with spaces, quotes or ``; rm -rf`` stays one argument and
is never interpreted. Placeholders: ``{video}``, ``{prompt}``, ``{negative_prompt}``,
``{output_dir}``, ``{seed}``, ``{duration}`` (seconds). The command must write one audio
file (or a video with an audio track) into ``{output_dir}``; FoleySeal then conforms it
(48 kHz stereo, video length, loudness) and marks it like its own output.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import tempfile
from pathlib import Path

from provenance.core.errors import ConfigError, GenerationError
from provenance.core.io import read_audio
from v2a_core.generators.base import GenerationRequest, StageProgress
from v2a_core.render.conform import conform
from v2a_core.types import Soundtrack
from v2a_core.video import probe

PLACEHOLDERS = ("video", "prompt", "negative_prompt", "output_dir", "seed", "duration")
_FIELD = re.compile(r"\{(" + "|".join(PLACEHOLDERS) + r")\}")
_AUDIO_EXT = (".wav", ".flac", ".mp3", ".ogg", ".opus", ".m4a", ".aac")
_VIDEO_EXT = (".mp4", ".mov", ".mkv", ".webm", ".m4v")


class ExternalCommandGenerator:
    """A generator that runs a command template (no shell) and reads the audio it writes."""

    version = "1"

    def __init__(
        self,
        command: str,
        *,
        name: str = "external",
        timeout_s: float = 3600.0,
        cwd: str | Path | None = None,
    ) -> None:
        if not command or not command.strip():
            raise ConfigError("external generator: empty command template")
        try:
            self.argv = shlex.split(command)
        except ValueError as exc:
            raise ConfigError(f"external generator: cannot parse command template ({exc})") from exc
        if "{output_dir}" not in command:
            raise ConfigError("external generator: the command template must contain {output_dir}")
        unknown = set(re.findall(r"\{([a-z_]+)\}", command)) - set(PLACEHOLDERS)
        if unknown:
            raise ConfigError(
                f"external generator: unknown placeholder(s) {', '.join(sorted(unknown))}; "
                f"available: {', '.join(PLACEHOLDERS)}"
            )
        self.command = command
        self.name = name
        self.timeout_s = timeout_s
        self.cwd = Path(cwd) if cwd else None

    def arguments(self, values: dict[str, str]) -> list[str]:
        """The argv for one run: placeholders filled inside each already-split token."""
        return [_FIELD.sub(lambda m: values[m.group(1)], token) for token in self.argv]

    def generate(self, request: GenerationRequest, *, progress: StageProgress | None = None) -> Soundtrack:
        info = probe(request.video)
        duration = request.duration_s or info.duration_s
        if duration <= 0:
            raise GenerationError("cannot tell the video's duration", path=request.video)
        with tempfile.TemporaryDirectory(prefix="foleyseal-ext-") as tmp:
            out_dir = Path(tmp) / "out"
            out_dir.mkdir()
            values = {
                "video": str(Path(request.video).resolve()),
                "prompt": request.prompt,
                "negative_prompt": request.negative_prompt,
                "output_dir": str(out_dir),
                "seed": str(request.seed),
                "duration": f"{duration:.3f}",
            }
            argv = self.arguments(values)
            if progress:
                progress("generate", 0.0)
            try:
                proc = subprocess.run(
                    argv,
                    cwd=self.cwd,
                    capture_output=True,
                    text=True,
                    timeout=self.timeout_s,
                    env={**os.environ, "FOLEYSEAL_GENERATOR": self.name},
                    check=False,
                )
            except FileNotFoundError as exc:
                raise GenerationError(f"external generator {self.name!r}: program not found: {argv[0]}") from exc
            except subprocess.TimeoutExpired as exc:
                raise GenerationError(f"external generator {self.name!r} ran longer than {self.timeout_s:.0f} s") from exc
            if proc.returncode != 0:
                tail = (proc.stderr or proc.stdout or "").strip().splitlines()[-5:]
                raise GenerationError(
                    f"external generator {self.name!r} failed with exit code {proc.returncode}"
                    + (": " + " | ".join(tail) if tail else "")
                )
            produced = _pick_output(out_dir)
            if produced is None:
                raise GenerationError(
                    f"external generator {self.name!r} wrote no audio or video file into its output directory"
                )
            if progress:
                progress("generate", 1.0)
            audio = read_audio(produced)
        track = conform(audio, duration, target_lufs=request.loudness_lufs, generator=self.name, seed=request.seed)
        if progress:
            progress("master", 1.0)
        return track


def _pick_output(out_dir: Path) -> Path | None:
    """The audio file the command wrote (audio preferred over video; first by name)."""
    files = sorted(p for p in out_dir.rglob("*") if p.is_file())
    for exts in (_AUDIO_EXT, _VIDEO_EXT):
        for p in files:
            if p.suffix.lower() in exts:
                return p
    return None
