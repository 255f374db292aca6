"""The one error hierarchy of FoleySeal.

Every error names the problem and, where there is one, the file. The CLI maps
each class to an exit code (see ``foleyseal.cli.exit_codes``).
"""

from __future__ import annotations

from pathlib import Path


class FoleySealError(Exception):
    """Base class: a problem FoleySeal detected and can explain to a person."""

    def __init__(self, message: str, *, path: str | Path | None = None) -> None:
        self.path = str(path) if path is not None else None
        self.message = message
        super().__init__(f"{self.path}: {message}" if self.path else message)


class InputError(FoleySealError):
    """The input is unusable: empty, too short, NaN/Inf samples, wrong shape."""


class FormatError(InputError):
    """The file cannot be decoded or encoded in the format it claims or is asked for."""


class NoAudioError(FormatError):
    """A video (or other media file) that holds no audio stream: there is no sound to read."""


class UnreadableMarkError(InputError):
    """The audio cannot carry the watermark: read back right after embedding, before anything is
    published, the detector does not find the issued payload (too little sound, or silence, or
    an output codec that took it)."""


class MarkLostInEncodingError(UnreadableMarkError):
    """The mark read back from the audio before it was encoded, but not from the file written:
    the output's codec (a lossy encoder at a low bitrate) took it."""


class PayloadError(InputError):
    """A watermark payload of the wrong size or not valid hexadecimal."""


class OutputError(FoleySealError):
    """An output cannot be written where it was asked for: a missing or read-only folder, no
    permission, or no space left. Nothing about the input is wrong."""


class KeyFileError(FoleySealError):
    """A key file is missing, malformed or readable by other users."""


class SigningError(FoleySealError):
    """C2PA signing or certificate handling failed."""


class StoreError(FoleySealError):
    """The manifest store could not be read or written."""


class ConfigError(FoleySealError):
    """The configuration is missing or invalid."""


class GenerationError(FoleySealError):
    """A soundtrack generator failed."""


_PUBLISHED = "foleyseal_published"


def note_published(exc: BaseException, paths: tuple[Path, ...]) -> None:
    """Record on ``exc`` (an error or an interrupt that stopped a run) the files the run had
    already published, each complete: :func:`published_before` reads them back."""
    known = published_before(exc)
    setattr(exc, _PUBLISHED, known + tuple(p for p in paths if p not in known))


def published_before(exc: BaseException) -> tuple[Path, ...]:
    """The files a run stopped by ``exc`` had already published (complete, marked and recorded):
    a run stops before its next file, it does not take back the ones before."""
    return getattr(exc, _PUBLISHED, ())
