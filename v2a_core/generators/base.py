"""The generator protocol: any video-to-audio model behind one call.

A generator takes a video clip, a prompt, a negative prompt, a seed and a duration and
returns a :class:`~v2a_core.types.Soundtrack` (48 kHz stereo mix, optional stems and cue
sheet). Marking, signing and storing happen after it, in :mod:`v2a_core.pipeline`, for
every generator alike: no generator can produce an unmarked output through FoleySeal.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from provenance.core.errors import GenerationError
from v2a_core.types import Soundtrack
from v2a_core.video import probe

SEED_LIMIT = 2**32
"""Seeds are whole numbers with ``0 <= seed < SEED_LIMIT``. The built-in generator's random
streams take 32 bits of the seed (seeds 2**32 apart would give the same soundtrack), numpy's
legacy ``np.random.seed`` and many model demos accept no more, and the signed generation record
holds every such seed exactly (a JSON number, not a float)."""

#: progress(stage, fraction 0..1): stage names are "analyze", "plan", "render", "generate", "master".
StageProgress = Callable[[str, float], None]


@dataclass(frozen=True)
class GenerationRequest:
    video: Path
    prompt: str = ""
    negative_prompt: str = ""
    """What must not be heard (honoured strictly by the built-in generator)."""
    seed: int = 0
    """0 <= seed < :data:`SEED_LIMIT`."""
    duration_s: float | None = None
    """Seconds of video to score from its start; None for all of it."""
    loudness_lufs: float = -16.0
    """Integrated loudness of the result, LUFS (ITU-R BS.1770)."""
    stems: bool = True
    """Whether the caller keeps the stems (``--stems``); without, a generator may leave them out
    of its :class:`Soundtrack` (for a long video they cost hundreds of MB each)."""
    work_dir: Path | None = None
    """A folder for the generator's working files (the output's folder, on the disk the output
    goes to); None for the system's temporary folder. The built-in generator maps a long
    soundtrack's signals from unnamed files there instead of holding them in memory."""


@runtime_checkable
class Generator(Protocol):
    name: str
    version: str

    def generate(self, request: GenerationRequest, *, progress: StageProgress | None = None) -> Soundtrack:
        """A soundtrack for ``request.video`` (48 kHz stereo, as long as the video or ``duration_s``)."""
        ...


def scored_length_s(video_s: float, duration_s: float | None) -> float:
    """Seconds of video scored: its length ``video_s`` (0 when its header does not say), or
    ``duration_s`` (``--duration``) when that is shorter or the length unknown; 0 when neither
    is known."""
    if duration_s and video_s > 0:
        return float(min(duration_s, video_s))
    return float(duration_s or video_s or 0.0)


def soundtrack_length_s(request: GenerationRequest) -> float:
    """How long the soundtrack for ``request`` is, seconds: the video's length (from its header),
    or ``duration_s`` when that is shorter. :class:`GenerationError` when neither is known."""
    length = scored_length_s(probe(request.video).duration_s, request.duration_s)
    if length <= 0:
        raise GenerationError("cannot tell the video's duration", path=request.video)
    return float(length)
