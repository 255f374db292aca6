"""Run any command-line video-to-audio model (MMAudio, HunyuanVideo-Foley, ...) as a generator.

The command is a template such as::

    python demo.py --video {video} --prompt {prompt} --negative_prompt {negative_prompt} --output {output_dir}

It is split with :func:`shlex.split` *before* the placeholders are filled in, and run
without a shell, so a prompt with spaces, quotes or ``; rm -rf`` stays one argument and
is never interpreted. Placeholders: ``{video}``, ``{prompt}``, ``{negative_prompt}``,
``{output_dir}``, ``{seed}``, ``{duration}`` (seconds). The command must write one audio
file (or a video with an audio track) into ``{output_dir}``; FoleySeal then conforms it
(48 kHz stereo, video length, loudness) and marks it like its own output.

The command runs in its own process group, which is killed when it fails, times out or the
run is stopped (Ctrl-C, SIGTERM): no model is left running on the GPU after FoleySeal exits.
Its output is read as it comes and only the last :data:`TAIL_BYTES` of each stream are kept,
so a model that logs gigabytes costs no memory; an error quotes at most :data:`MESSAGE_CHARS`.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from provenance.core.errors import ConfigError, GenerationError, InputError
from provenance.core.interrupts import stop_signals_deferred
from provenance.core.io import read_audio
from v2a_core.generators.base import GenerationRequest, StageProgress, soundtrack_length_s
from v2a_core.render.buffers import Buffers
from v2a_core.render.conform import conform
from v2a_core.types import Soundtrack

PLACEHOLDERS = ("video", "prompt", "negative_prompt", "output_dir", "seed", "duration")
_FIELD = re.compile(r"\{(" + "|".join(PLACEHOLDERS) + r")\}")
_AUDIO_EXT = (".wav", ".flac", ".mp3", ".ogg", ".opus", ".m4a", ".aac")
_VIDEO_EXT = (".mp4", ".mov", ".mkv", ".webm", ".m4v")

DEFAULT_TIMEOUT_S = 3600.0
"""How long a command may run by default, seconds (``--generator-timeout``)."""
TAIL_BYTES = 64 * 1024
"""Bytes kept from the end of the command's stdout and of its stderr."""
MESSAGE_CHARS = 2000
"""Most characters of the command's output quoted in an error."""
_TAIL_LINES = 5
_STOP_GRACE_S = 5.0
"""Seconds the command's process group gets to exit after SIGTERM before SIGKILL."""


class ExternalCommandGenerator:
    """A generator that runs a command template (no shell) and reads the audio it writes."""

    version = "1"

    def __init__(
        self,
        command: str,
        *,
        name: str = "external",
        timeout_s: float = DEFAULT_TIMEOUT_S,
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
        if isinstance(timeout_s, bool) or not isinstance(timeout_s, (int, float)) or not 0 < timeout_s < float("inf"):
            raise ConfigError(f"external generator: the timeout must be a number of seconds above 0, got {timeout_s!r}")
        self.command = command
        self.name = name
        self.timeout_s = float(timeout_s)
        self.cwd = Path(cwd) if cwd else None

    def arguments(self, values: dict[str, str]) -> list[str]:
        """The argv for one run: placeholders filled inside each already-split token."""
        return [_FIELD.sub(lambda m: values[m.group(1)], token) for token in self.argv]

    def generate(self, request: GenerationRequest, *, progress: StageProgress | None = None) -> Soundtrack:
        duration = soundtrack_length_s(request)
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
            self._run(argv, Path(tmp))
            produced, others = _pick_output(out_dir)
            if produced is None:
                raise GenerationError(
                    f"external generator {self.name!r} wrote no audio or video file into its output directory"
                )
            if progress:
                progress("generate", 1.0)
            try:
                audio = read_audio(produced)
            except InputError as exc:  # its temporary path is gone once this is read: name the file
                raise GenerationError(
                    f"external generator {self.name!r} wrote {produced.relative_to(out_dir)}, which cannot be "
                    f"read: {exc.message}"
                ) from exc
        track = conform(audio, duration, target_lufs=request.loudness_lufs, generator=self.name, seed=request.seed,
                        buffers=Buffers(request.work_dir))
        if others:  # which one was taken is a rule the user may not know: say it
            track.notes = (f"external generator {self.name!r} wrote {len(others) + 1} files; the soundtrack is "
                           f"{produced.relative_to(out_dir)} (audio before video, then the first by name), not "
                           f"{_listed([str(p.relative_to(out_dir)) for p in others])}",)
        if progress:
            progress("master", 1.0)
        return track


    def _run(self, argv: list[str], folder: Path) -> None:
        """Run ``argv`` to its end; :class:`GenerationError` if it cannot start, fails or times out.
        ``folder``: the run's working folder, removed by the watchdog if FoleySeal is killed."""
        try:
            with _process_group(argv, self.cwd, {**os.environ, "FOLEYSEAL_GENERATOR": self.name},
                                folder) as (proc, out, err):
                try:
                    code = proc.wait(timeout=self.timeout_s)
                except subprocess.TimeoutExpired:
                    raise GenerationError(
                        f"external generator {self.name!r} ran longer than {self.timeout_s:g} s "
                        "(--generator-timeout) and was stopped"
                    ) from None
        except FileNotFoundError as exc:
            raise GenerationError(f"external generator {self.name!r}: program not found: {argv[0]}") from exc
        except PermissionError as exc:
            raise GenerationError(f"external generator {self.name!r}: cannot run {argv[0]}: {exc.strerror}") from exc
        if code != 0:
            said = _last_words(err.text() or out.text())
            raise GenerationError(
                f"external generator {self.name!r} failed with exit code {code}" + (f": {said}" if said else "")
            )


class _Tail:
    """Reads a pipe to its end in a thread, keeping only its last ``limit`` bytes."""

    def __init__(self, pipe: IO[bytes], limit: int = TAIL_BYTES) -> None:
        self._pipe = pipe
        self._limit = limit
        self._data = bytearray()
        self._close_at_end = False
        self._thread = threading.Thread(target=self._drain, name="foleyseal-ext-output", daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        with contextlib.suppress(OSError, ValueError):  # the pipe closed under us: the run is over
            for chunk in iter(lambda: self._pipe.read1(1 << 16), b""):
                self._data += chunk
                if len(self._data) > 2 * self._limit:  # trim now and then, not on every chunk
                    del self._data[: -self._limit]
        if self._close_at_end:
            with contextlib.suppress(OSError):
                self._pipe.close()

    def finish(self, timeout_s: float = 5.0) -> None:
        """Wait for the pipe's last bytes (its writers are gone), then close it. A writer that
        outlives the process group (a process the command started in a session of its own, which
        the group's signals do not reach) keeps the pipe open: it is then left to the reading
        thread, which closes it when that writer ends. Closing it here would wait for the writer
        (the blocked read holds the pipe's lock): ``generate`` hung past its timeout, deaf to
        SIGTERM, for as long as such a process lived."""
        self._thread.join(timeout=timeout_s)
        if self._thread.is_alive():
            self._close_at_end = True
            return
        with contextlib.suppress(OSError):
            self._pipe.close()

    def text(self) -> str:
        """What was kept, as text (undecodable bytes replaced)."""
        return bytes(self._data[-self._limit :]).decode("utf-8", errors="replace")


def _last_words(output: str) -> str:
    """The last lines of a command's output for an error message: at most :data:`_TAIL_LINES`
    lines joined with " | " and :data:`MESSAGE_CHARS` characters (its end, where the error is)."""
    said = " | ".join(line.strip() for line in output.strip().splitlines()[-_TAIL_LINES:] if line.strip())
    return said if len(said) <= MESSAGE_CHARS else "..." + said[-MESSAGE_CHARS:]


@contextlib.contextmanager
def _process_group(argv: list[str], cwd: Path | None, env: dict[str, str], folder: Path
                   ) -> Iterator[tuple[subprocess.Popen, _Tail, _Tail]]:
    """Start ``argv`` as the leader of a new session (its own process group) with its stdout and
    stderr read into bounded tails; on the way out, however it is left (an error, a timeout, a
    stop signal raised as an interrupt), the whole group is stopped, so neither the command nor
    anything it started keeps running once FoleySeal is done. Should FoleySeal itself be killed
    (SIGKILL, the OOM killer), a watchdog stops the group and removes ``folder``."""
    with _Watchdog(folder) as dog:
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, start_new_session=True)
        dog.watch(proc.pid)
        out, err = _Tail(proc.stdout), _Tail(proc.stderr)  # type: ignore[arg-type]
        try:
            yield proc, out, err
        finally:
            with stop_signals_deferred():  # a second Ctrl-C must not cut the cleanup short
                _stop_group(proc)
                out.finish()
                err.finish()


_WATCHDOG = r"""
import os, shutil, signal, sys, time
for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
    signal.signal(s, signal.SIG_IGN)
folder, grace = sys.argv[1], float(sys.argv[2])
said = b""
while True:
    try:
        chunk = os.read(0, 64)
    except InterruptedError:
        continue
    if not chunk:
        break
    said += chunk
words = said.split()
if b"done" in words:
    sys.exit(0)
group = int(words[words.index(b"group") + 1]) if b"group" in words[:-1] else None

def alive():
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True

if group is not None and alive():
    try:
        os.killpg(group, signal.SIGTERM)
    except OSError:
        pass
    deadline = time.monotonic() + grace
    while alive() and time.monotonic() < deadline:
        time.sleep(0.1)
    try:
        os.killpg(group, signal.SIGKILL)
    except OSError:
        pass
shutil.rmtree(folder, ignore_errors=True)
"""
"""The watchdog's program. It reads a pipe that only FoleySeal writes to: "group N" once the
command runs, "done" once FoleySeal has stopped it. The pipe's end without "done" means FoleySeal
died where it could not clean up; the watchdog then stops the group (SIGTERM, SIGKILL after the
grace) and removes the run's working folder. In a session of its own, deaf to stop signals, it
outlives FoleySeal and is out of the group's reach."""


class _Watchdog:
    """A process running :data:`_WATCHDOG` for one command (:func:`_process_group`)."""

    def __init__(self, folder: Path) -> None:
        read_end, self._pipe = os.pipe()
        try:
            self._process = subprocess.Popen(
                [sys.executable, "-c", _WATCHDOG, str(folder), str(_STOP_GRACE_S)], stdin=read_end,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        except BaseException:
            os.close(self._pipe)
            raise
        finally:
            os.close(read_end)

    def __enter__(self) -> _Watchdog:
        return self

    def watch(self, group: int) -> None:
        """Say which process group to stop should FoleySeal die."""
        with contextlib.suppress(OSError):  # a watchdog that could not start: the run goes on without it
            os.write(self._pipe, f"group {group} ".encode())

    def __exit__(self, *exc: object) -> None:
        # reached only once the group is stopped (or never started): the watchdog may go
        with contextlib.suppress(OSError):
            os.write(self._pipe, b"done")
        os.close(self._pipe)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._process.wait(timeout=_STOP_GRACE_S)


def _stop_group(proc: subprocess.Popen) -> None:
    """SIGTERM to the command's process group, then SIGKILL to what is left after a grace period.
    Also ends what the command left running in its group after it exited itself."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=_STOP_GRACE_S)
    except subprocess.TimeoutExpired:
        pass
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _pick_output(out_dir: Path) -> tuple[Path | None, list[Path]]:
    """The audio file the command wrote (audio preferred over video; first by name), or None,
    and the other audio and video files it wrote."""
    files = sorted(p for p in out_dir.rglob("*") if p.is_file())
    media = [p for exts in (_AUDIO_EXT, _VIDEO_EXT) for p in files if p.suffix.lower() in exts]
    return (media[0], media[1:]) if media else (None, [])


def _listed(names: list[str], shown: int = 3) -> str:
    """``a, b and c``; past ``shown`` names, ``a, b, c and 4 more``."""
    if len(names) > shown:
        return f"{', '.join(names[:shown])} and {len(names) - shown} more"
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"
