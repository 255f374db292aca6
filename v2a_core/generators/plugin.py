"""Generators from other packages (entry points), held to the contract FoleySeal's own keep.

A plug-in returns whatever its model made: any rate, any number of channels, any length, no
loudness measured. :class:`PluginGenerator` gives its soundtrack the treatment the external
command's output gets (:func:`v2a_core.render.conform.conform`: 48 kHz stereo, the video's length
or ``--duration``, mastered to ``--loudness`` with true peak <= -1 dBTP), and turns a plug-in's
failure (an exception, a result that is no soundtrack, NaN samples) into a
:class:`GenerationError` naming the plug-in: a broken plug-in must not look like a FoleySeal bug.
"""

from __future__ import annotations

import re

from provenance.core.audio import Audio
from provenance.core.errors import FoleySealError, GenerationError, InputError
from v2a_core.generators.base import GenerationRequest, Generator, StageProgress, soundtrack_length_s
from v2a_core.render.buffers import Buffers
from v2a_core.render.conform import conform
from v2a_core.types import CueSheet, Soundtrack

MESSAGE_CHARS = 2000
"""Most characters of a plug-in's exception message quoted in an error."""
_LAYER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
"""A stem's layer name: it becomes part of a file name (``OUT-<layer>.flac``)."""


class PluginGenerator:
    """Runs the plug-in ``inner`` (registered as ``entry_name``) and conforms what it returns."""

    def __init__(self, entry_name: str, inner: Generator) -> None:
        self.entry_name = entry_name
        self.inner = inner
        self.name = str(getattr(inner, "name", entry_name))
        self.version = str(getattr(inner, "version", "?"))

    def generate(self, request: GenerationRequest, *, progress: StageProgress | None = None) -> Soundtrack:
        """The plug-in's soundtrack for ``request``, conformed (see the module docstring)."""
        length_s = soundtrack_length_s(request)
        track = self._call(request, progress)
        checked = _checked(self.entry_name, track)
        out = conform(checked.mix, length_s, target_lufs=request.loudness_lufs, generator=self.name,
                      seed=request.seed, stems=checked.stems, cue_sheet=checked.cue_sheet,
                      buffers=Buffers(request.work_dir))
        if progress:
            progress("master", 1.0)
        return out

    def _call(self, request: GenerationRequest, progress: StageProgress | None) -> object:
        try:
            return self.inner.generate(request, progress=progress)
        except FoleySealError as exc:  # a FoleySeal function the plug-in called: its words, and whose call
            raise GenerationError(f"generator {self.entry_name!r} failed: {exc}") from exc
        except (Exception, SystemExit) as exc:  # the plug-in's own failure: name it, exit 3, not "internal
            # error", nor a sys.exit() code of its own that reads as one of FoleySeal's
            raise GenerationError(f"generator {self.entry_name!r} failed: {describe(exc)}") from exc


def describe(exc: BaseException) -> str:
    """``Type: message`` of a plug-in's exception, at most :data:`MESSAGE_CHARS` characters of it."""
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= MESSAGE_CHARS else text[:MESSAGE_CHARS] + "..."


def _checked(entry_name: str, track: object) -> Soundtrack:
    """``track`` if it is a usable :class:`Soundtrack`, else :class:`GenerationError` naming the
    plug-in and the fault."""
    who = f"generator {entry_name!r}"
    if not isinstance(track, Soundtrack):
        raise GenerationError(f"{who} returned {type(track).__name__}, not a Soundtrack")
    _checked_audio(f"the soundtrack of {who}", track.mix)
    if not isinstance(track.stems, dict):
        raise GenerationError(f"{who} returned stems as {type(track.stems).__name__}, not a dict of layer -> Audio")
    for layer, audio in track.stems.items():
        if not (isinstance(layer, str) and _LAYER_NAME.fullmatch(layer)):
            raise GenerationError(f"{who} returned a stem named {layer!r}; layer names are letters, digits, - and _")
        _checked_audio(f"the {layer} stem of {who}", audio)
    if track.cue_sheet is not None and not isinstance(track.cue_sheet, CueSheet):
        raise GenerationError(f"{who} returned a cue sheet of type {type(track.cue_sheet).__name__}")
    return track


def _checked_audio(what: str, audio: object) -> None:
    """:class:`GenerationError` unless ``audio`` is :class:`Audio` with usable rate, channels and samples."""
    if not isinstance(audio, Audio):
        raise GenerationError(f"{what} is {type(audio).__name__}, not Audio")
    try:
        audio.validate(what=what)
    except InputError as exc:
        raise GenerationError(exc.message) from exc
