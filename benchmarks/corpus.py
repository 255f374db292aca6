"""The benchmark's corpus: the audio files of a directory, what each holds, and which a run uses."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from benchmarks.quality import clip_kind
from provenance.core.audio import Audio
from provenance.core.digest import sha256_file
from provenance.core.errors import FormatError, InputError
from provenance.core.io import audio_info, read_audio

AUDIO_EXTENSIONS = {".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".m4a", ".aac", ".mp4", ".mov", ".mkv", ".webm"}


@dataclass(frozen=True)
class Clip:
    """One corpus file (what the harness needs to know before loading it)."""

    path: Path
    name: str
    kind: str
    duration_s: float
    sample_rate: int
    channels: int
    digest: str = ""
    """SHA-256 of the file's bytes (hex): a clip replaced under the same name is another clip."""


@lru_cache(maxsize=8)
def load_clip(path: str) -> Audio:
    """The audio of a corpus file (the last few are kept: a task reads its clip, and the next
    clip for the attacks that mix in another)."""
    return read_audio(Path(path))


def probe_clip(path: Path) -> tuple[int, int, float]:
    """(rate Hz, channels, duration s) from the header where possible, else by decoding."""
    info = audio_info(path)
    if info.frames > 0:
        return info.sample_rate, info.channels, info.duration_s
    a = load_clip(str(path))
    return a.sample_rate, a.channels, a.duration_s


def check_corpus_folder(corpus: Path) -> None:
    """:class:`InputError` unless ``corpus`` is an existing directory."""
    if not corpus.exists():
        raise InputError("corpus directory not found", path=corpus)
    if not corpus.is_dir():
        raise InputError("the corpus must be a directory of audio files, not a file", path=corpus)


def discover_clips(corpus: Path, *, unreadable: list[tuple[str, str]] | None = None) -> list[Clip]:
    """Every audio file directly in ``corpus`` (sorted by name). A file that cannot be read as
    audio raises its :class:`InputError`/:class:`FormatError`, unless ``unreadable`` is given:
    its name and the reason are then added there and the file is left out (one damaged file in a
    folder of hundreds should not stop a benchmark, but must not vanish without a word)."""
    corpus = Path(corpus)
    check_corpus_folder(corpus)
    clips = []
    for p in sorted(corpus.iterdir()):
        if p.suffix.lower() not in AUDIO_EXTENSIONS or not p.is_file():
            continue
        try:
            rate, channels, duration_s = probe_clip(p)
        except (InputError, FormatError) as exc:
            if unreadable is None:
                raise
            unreadable.append((p.name, exc.message))
            continue
        clips.append(Clip(p, p.name, clip_kind(p.name), duration_s, rate, channels, sha256_file(p)))
    if not clips:
        raise InputError("corpus directory holds no audio files"
                         + (f" it can read ({len(unreadable)} unreadable)" if unreadable else ""), path=corpus)
    return clips


def select_clips(clips: list[Clip], *, min_clip_s: float, max_clips: int | None) -> list[Clip]:
    """Clips at least ``min_clip_s`` seconds long; when more than ``max_clips`` (quick mode), one
    per kind first, then by name."""
    ok = [c for c in clips if c.duration_s >= min_clip_s]
    if max_clips is None or len(ok) <= max_clips:
        return ok
    chosen: list[Clip] = []
    for kind in ("speech", "music", "other"):
        for c in ok:
            if c.kind == kind and c not in chosen:
                chosen.append(c)
                break
    for c in ok:
        if len(chosen) >= max_clips:
            break
        if c not in chosen:
            chosen.append(c)
    return sorted(chosen[:max_clips], key=lambda c: c.name)
