"""``generate``: video -> soundtrack -> watermarked, signed, stored output.

:func:`generate_soundtrack` runs a generator and returns the audio (nothing is written).
:func:`generate` is the one way FoleySeal writes a generated soundtrack: every output,
candidate and stem goes through :func:`provenance.mark.mark` (payload -> watermark ->
C2PA signature with the generation record -> store), so no unmarked output can be made.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from provenance.core.atomic import atomic_write_bytes, output_error
from provenance.core.audio import Audio
from provenance.core.c2pa_types import MarkResult
from provenance.core.config import Settings
from provenance.core.arguments import flag_argument, path_argument
from provenance.core.errors import InputError, note_published
from provenance.core.io import check_video_output
from v2a_core.generators import SEED_LIMIT, GenerationRequest, StageProgress, load_generator
from v2a_core.generators.base import scored_length_s
from v2a_core.generators.external import DEFAULT_TIMEOUT_S
from v2a_core.types import LAYERS, Soundtrack
from v2a_core.video import probe

if TYPE_CHECKING:
    from provenance.mark import OutputSnapshot

VIDEO_SUFFIXES = (".mp4", ".mov", ".m4v", ".mkv", ".webm")
AUDIO_SUFFIXES = (".wav", ".flac", ".mp3", ".m4a", ".ogg", ".opus")

#: progress(stage, fraction): stages of generation plus "mark".
PipelineProgress = Callable[[str, float], None]

MAX_CANDIDATES = 32
"""Most seeded variants one run renders (``--candidates``)."""


@dataclass(frozen=True)
class GenerateOptions:
    """What to generate and where the extra outputs go. Checked when made: a wrong type or value
    is an :class:`InputError` naming the argument, not a TypeError deep in the pipeline."""

    prompt: str = ""
    negative_prompt: str = ""
    seed: int = 0
    candidates: int = 1
    """Seeded variants: seeds seed, seed+1, ...; outputs named ``name-1.ext``, ``name-2.ext``..."""
    loudness_lufs: float = -16.0
    generator: str = "builtin"
    generator_command: str | None = None
    """Command template for the ``external`` generator."""
    generator_timeout_s: float = DEFAULT_TIMEOUT_S
    """Seconds the ``external`` generator's command may run before it is stopped (an error)."""
    stems_dir: Path | None = None
    cue_sheet_path: Path | None = None
    include_prompts: bool = True
    """Put the prompts into the signed generation record (False keeps them private)."""
    duration_s: float | None = None

    def __post_init__(self) -> None:
        _check_text("prompt", self.prompt)
        _check_text("negative_prompt", self.negative_prompt)
        _check_candidates(self.candidates)
        _check_numbers(seed=self.seed, loudness_lufs=self.loudness_lufs, duration_s=self.duration_s,
                       candidates=self.candidates)
        _check_text("generator", self.generator)
        if self.generator_command is not None:
            _check_text("generator_command", self.generator_command)
        if not (_is_number(self.generator_timeout_s) and self.generator_timeout_s > 0):
            raise InputError(
                f"generator_timeout_s must be a number of seconds above 0, got {self.generator_timeout_s!r}"
            )
        flag_argument("include_prompts", self.include_prompts)  # "no" would publish the prompts
        for name in ("stems_dir", "cue_sheet_path"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, path_argument(name, value))


@dataclass(frozen=True)
class MarkedFile:
    path: Path
    kind: str
    """``soundtrack`` or ``stem``."""
    seed: int
    payload: str
    """Watermark payload (hex) carried by the file."""
    record_id: str
    """Manifest id in the store."""
    layer: str | None = None


@dataclass(frozen=True)
class GenerateResult:
    outputs: tuple[MarkedFile, ...]
    stems: tuple[MarkedFile, ...] = ()
    cue_sheets: tuple[Path, ...] = ()
    loudness_lufs: tuple[float, ...] = field(default_factory=tuple)
    true_peak_dbtp: tuple[float, ...] = field(default_factory=tuple)
    notes: tuple[str, ...] = ()
    """For people: words of the prompt or negative prompt that named no sound, and what was not
    written and why (stems too silent to carry the watermark, a cue sheet the generator does not
    make)."""


SOUND_FLOOR_DBFS = -60.0
"""Level above which a 20 ms stretch of a soundtrack counts as sound, dBFS (peak). Generated
soundtracks are mastered to about -16 LUFS, so this is some 45 dB below the programme."""
_SOUND_FRAME_S = 0.02


def sound_seconds(audio: Audio, floor_dbfs: float = SOUND_FLOOR_DBFS) -> float:
    """Seconds of ``audio`` that hold sound: 20 ms frames whose peak over all channels is above
    ``floor_dbfs``. The watermark rides on sound (silence is left unmarked), so this is what it has."""
    frame = max(1, int(round(_SOUND_FRAME_S * audio.sample_rate)))
    n = audio.frames // frame * frame
    floor = 10.0 ** (floor_dbfs / 20.0)
    loud = 0
    for start in range(0, n, frame * 4096):  # in blocks: a long soundtrack needs no big temporary
        block = np.abs(audio.samples[:, start : min(n, start + frame * 4096)]).max(axis=0)
        loud += int(np.count_nonzero(block.reshape(-1, frame).max(axis=1) > floor))
    tail = audio.samples[:, n:]
    if tail.size and np.abs(tail).max() > floor:
        loud += 1
    return min(audio.duration_s, loud * frame / audio.sample_rate)


def _is_number(x: object) -> bool:
    """A finite int or float (not a bool)."""
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _check_text(name: str, value: object) -> None:
    """:class:`InputError` unless ``value`` is a str (None, bytes or a list would fail deep inside)."""
    if not isinstance(value, str):
        raise InputError(f"{name} must be text (a str), got {value!r:.60}")


def _check_candidates(candidates: object) -> None:
    """:class:`InputError` unless ``candidates`` is a whole number from 1 to :data:`MAX_CANDIDATES`."""
    if not (isinstance(candidates, int) and not isinstance(candidates, bool) and 1 <= candidates <= MAX_CANDIDATES):
        raise InputError(f"candidates must be a whole number from 1 to {MAX_CANDIDATES}, got {candidates!r}")


def _generator(options: GenerateOptions):
    if options.generator == "external":
        if not options.generator_command:
            raise InputError("the external generator needs a command template (--generator-command)")
        return load_generator("external", command=options.generator_command, timeout_s=options.generator_timeout_s)
    return load_generator(options.generator)


def generate_soundtrack(
    video: str | Path,
    *,
    prompt: str = "",
    negative_prompt: str = "",
    seed: int = 0,
    loudness_lufs: float = -16.0,
    generator: str = "builtin",
    generator_command: str | None = None,
    duration_s: float | None = None,
    progress: StageProgress | None = None,
    generator_timeout_s: float = DEFAULT_TIMEOUT_S,
) -> Soundtrack:
    """A soundtrack for ``video`` (not marked, not written anywhere)."""
    # GenerateOptions checks every argument's type and range first (InputError naming it)
    opts = GenerateOptions(prompt=prompt, negative_prompt=negative_prompt, seed=seed, loudness_lufs=loudness_lufs,
                           generator=generator, generator_command=generator_command, duration_s=duration_s,
                           generator_timeout_s=generator_timeout_s)
    video = path_argument("video", video)
    probe(video)  # a clear error for a missing, corrupt or audio-only file before any work
    gen = _generator(opts)
    request = GenerationRequest(video, prompt, negative_prompt, int(seed), duration_s, float(loudness_lufs))
    return gen.generate(request, progress=progress)


def check_seeds(seed: object, candidates: int = 1) -> None:
    """:class:`InputError` unless ``seed`` and every candidate's seed ``seed .. seed + candidates -
    1`` are whole numbers from 0 to ``SEED_LIMIT - 1`` (what the generators and the signed
    record hold exactly)."""
    if not (isinstance(seed, int) and not isinstance(seed, bool) and 0 <= seed < SEED_LIMIT):
        raise InputError(f"seed must be a whole number from 0 to {SEED_LIMIT - 1}, got {seed!r}")
    if seed + candidates - 1 >= SEED_LIMIT:
        raise InputError(
            f"seed {seed} with {candidates} candidates needs seeds up to {seed + candidates - 1}; "
            f"the largest seed is {SEED_LIMIT - 1}"
        )


def _check_numbers(*, seed: object, loudness_lufs: object, duration_s: object, candidates: int = 1) -> None:
    """:class:`InputError` for a seed that is no whole number from 0 to 2**32 - 1 (for every
    candidate: seeds ``seed .. seed + candidates - 1``), a loudness target outside -70..-5 LUFS,
    or a duration that is not a number of seconds above 0 (None: the whole video)."""
    check_seeds(seed, candidates)
    if not (_is_number(loudness_lufs) and -70.0 <= loudness_lufs <= -5.0):  # type: ignore[operator]
        raise InputError(f"loudness target {loudness_lufs!r} LUFS is outside -70..-5 LUFS")
    if duration_s is not None and not (_is_number(duration_s) and duration_s > 0):  # type: ignore[operator]
        raise InputError(f"duration must be a number of seconds above 0, got {duration_s!r}")


def _numbered(path: Path, k: int, n: int) -> Path:
    return path if n == 1 else path.with_name(f"{path.stem}-{k}{path.suffix}")


@dataclass(frozen=True)
class _Outputs:
    """Every path one run may write, worked out (and checked) before any work is done."""

    targets: tuple[Path, ...]
    """The soundtrack of each candidate: OUTPUT, or OUTPUT-1, OUTPUT-2, ..."""
    cue_sheets: tuple[Path, ...]
    """The cue sheet of each candidate (empty without ``cue_sheet_path``)."""
    stems_dir: Path | None
    found: dict[Path, OutputSnapshot] = field(default_factory=dict)
    """What lay at each soundtrack's and stem's path when the run began
    (:class:`provenance.mark.OutputSnapshot`): mark replaces only that, so of two runs writing
    one output the later fails instead of replacing the other's published file unseen."""

    def stem(self, target: Path, layer: str) -> Path:
        """Where the ``layer`` stem of the soundtrack ``target`` goes."""
        assert self.stems_dir is not None
        return self.stems_dir / f"{target.stem}-{layer}.flac"

    def files(self) -> list[_OutputFile]:
        """Every file this run may write: soundtracks, their C2PA sidecars, cue sheets, and the
        stems of the built-in layers (other generators' layers are checked as they are written)."""
        from provenance.c2pa.sign import can_embed, mime_for
        from provenance.c2pa.sidecar import sidecar_path

        n = len(self.targets)
        files: list[_OutputFile] = []
        for k, target in enumerate(self.targets, 1):
            what = "the output" if n == 1 else f"candidate output {k}"
            files.append(_OutputFile(what, target))
            if not can_embed(mime_for(target)):
                files.append(_OutputFile(f"the C2PA sidecar of {what}", sidecar_path(target)))
            if self.stems_dir is not None:
                files += [_OutputFile(f"the {layer} stem of {what}", self.stem(target, layer), folder_made=True)
                          for layer in LAYERS]
        for k, sheet in enumerate(self.cue_sheets, 1):
            files.append(_OutputFile("the cue sheet" if n == 1 else f"cue sheet {k}", sheet))
        return files


@dataclass(frozen=True)
class _OutputFile:
    what: str
    """How an error names it: "the output", "cue sheet 2", "the music stem of the output"..."""
    path: Path
    folder_made: bool = False
    """Its folder is made by the run (the stems folder), so it need not exist yet."""


def _file_key(path: Path) -> tuple:
    """What makes two paths one file: the device and inode of an existing file (so hard links
    match too), else the path with symlinks and ``..`` resolved."""
    try:
        st = path.stat()
        return ("inode", st.st_dev, st.st_ino)
    except OSError:  # not there yet
        return ("path", str(path.resolve()))


def _plan_outputs(video: Path, output: Path, options: GenerateOptions) -> _Outputs:
    """The paths of every output, checked before any work: a writable kind of file, in a folder
    that exists (the stems folder may be missing: it is made later), none of them the input
    video, a directory, or another of the run's outputs. Raises :class:`InputError`; creates nothing."""
    suffix = output.suffix.lower()
    if suffix not in VIDEO_SUFFIXES + AUDIO_SUFFIXES:
        raise InputError(
            f"cannot write {suffix or 'a file without extension'}; use one of "
            f"{', '.join(VIDEO_SUFFIXES + AUDIO_SUFFIXES)}",
            path=output,
        )
    n = options.candidates
    sheet = options.cue_sheet_path
    outputs = _Outputs(
        targets=tuple(_numbered(output, k, n) for k in range(1, n + 1)),
        cue_sheets=tuple(_numbered(sheet, k, n) for k in range(1, n + 1)) if sheet is not None else (),
        stems_dir=options.stems_dir,
    )
    if outputs.stems_dir is not None:
        _check_stems_dir(outputs.stems_dir)
    if suffix in VIDEO_SUFFIXES:
        # the video's picture and subtitles are copied as they are: the container must hold them
        check_video_output(video, output)
    video_key = _file_key(video)
    seen: dict[tuple, _OutputFile] = {}
    for f in outputs.files():
        key = _file_key(f.path)
        _check_output_file(f, key == video_key)
        if key in seen:
            raise InputError(f"{f.what} and {seen[key].what} are the same file; give them different names",
                             path=f.path)
        seen[key] = f
        if outputs.stems_dir is not None:
            _check_not_stems_dir(f, outputs.stems_dir)
    from provenance.mark import OutputSnapshot

    return dataclasses.replace(outputs, found={f.path: OutputSnapshot.of(f.path) for f in outputs.files()})


def _check_not_stems_dir(f: _OutputFile, stems_dir: Path) -> None:
    """:class:`InputError` when the run would make the stems folder where it writes ``f``, or
    inside it (``f`` a file, the folder not there yet: each write would find the other's path
    taken, after all the work)."""
    folder, path = stems_dir.resolve(), f.path.resolve()
    if path == folder:
        raise InputError(f"{f.what} and the stems folder are the same path; give them different names", path=f.path)
    if path in folder.parents:
        raise InputError(f"the stems folder would be made inside {f.what}, a file; choose another folder",
                         path=stems_dir)


def _check_output_file(f: _OutputFile, is_video: bool) -> None:
    """:class:`InputError` when ``f`` is the input video, a directory, or in a folder that does
    not exist (and is not made by the run); :class:`OutputError` when its folder takes no new
    file (read-only, or no permission), found by making and removing one."""
    from provenance.core.atomic import check_writable

    if is_video:
        raise InputError(f"{f.what} is the input video; it would be overwritten: choose another path", path=f.path)
    if f.path.is_dir():
        raise InputError(f"{f.what} is a directory, not a file", path=f.path)
    if not f.folder_made:
        if not f.path.parent.is_dir():
            raise InputError(f"the folder of {f.what} does not exist", path=f.path.parent)
        check_writable(f.path)


def _check_stems_dir(stems_dir: Path) -> None:
    """:class:`InputError` when the stems folder is a file (the input video, say), or when no
    folder can be made there (an ancestor is a file). A missing folder is made later."""
    if stems_dir.exists() and not stems_dir.is_dir():
        raise InputError("the stems folder is a file, not a folder", path=stems_dir)
    for parent in stems_dir.parents:
        if parent.exists():
            if not parent.is_dir():
                raise InputError(f"cannot make the stems folder: {parent} is a file", path=stems_dir)
            break


@contextlib.contextmanager
def _made_folder(path: Path | None) -> Iterator[None]:
    """Make ``path`` and its missing parents (as ``bench sync --out`` does) for the block; when
    it ends, remove again the folders made here that are still empty, so a failed run leaves no
    trace and a run that wrote nothing there (a generator that makes no stems) leaves no empty
    folder. None: nothing to make."""
    if path is None or path.is_dir():
        yield
        return
    made = [p for p in (path, *path.parents) if not p.exists()]
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise output_error(exc, path) from exc
    try:
        yield
    finally:
        for folder in made:  # deepest first
            with contextlib.suppress(OSError):  # not empty (a stem was published), or gone
                folder.rmdir()


def _check_working_space(folder: Path, declared_s: float, duration_s: float | None) -> None:
    """:class:`InputError` before any work when ``folder`` (the output's) has less free disk than
    a soundtrack this long certainly needs for its working files (a long video scored to the
    end would otherwise fail after its analysis, minutes in)."""
    from v2a_core.render.buffers import Buffers, disk_needed_bytes

    length_s = scored_length_s(declared_s, duration_s)
    need = disk_needed_bytes(length_s, Buffers(folder))
    if need == 0:
        return
    free = shutil.disk_usage(folder).free
    if free < need:
        length = f"{length_s / 60:.0f} minutes" if length_s >= 60 else f"{length_s:.0f} s"
        raise InputError(
            f"scoring {length} of video needs about {need / 1e9:.1f} GB of free space here "
            f"for working files; {free / 1e9:.1f} GB is free: free some, or write the output to another disk",
            path=folder,
        )


def _check_long_enough(video: Path, declared_s: float, duration_s: float | None) -> None:
    """:class:`InputError` before any work when the soundtrack would be too short to carry the
    watermark (:data:`~provenance.watermark.MIN_EMBED_S`): ``duration_s`` (``--duration``) below
    it, or a video whose header says it is shorter (0: the header does not say; the length decoded
    is checked after generation). Between that and one block, the read-back decides."""
    from provenance.watermark.embed import MIN_EMBED_S, READS_BACK_FROM_S

    need = MIN_EMBED_S
    if duration_s is not None and duration_s < need:
        raise InputError(
            f"--duration {duration_s:g} s is too short: a soundtrack needs at least {need:.2f} s to carry "
            f"the FoleySeal watermark, and its payload reads back in most from about {READS_BACK_FROM_S:g} s; "
            f"ask for {READS_BACK_FROM_S:g} s or more",
            path=video,
        )
    if 0 < declared_s < need:
        raise InputError(
            f"the video is {declared_s:.2f} s long; a soundtrack needs at least {need:.2f} s to carry the "
            "FoleySeal watermark",
            path=video,
        )


def _checked_settings(settings: Settings | None) -> Settings:
    """The settings, with the signing identity and watermark key loaded once: missing or
    unreadable keys fail now, not after minutes of analysis and rendering."""
    from provenance.core.config import load_settings
    from provenance.keys.signers import load_identity
    from provenance.watermark.keys import load_home_key

    checked = settings or load_settings()
    load_identity(checked)
    load_home_key(checked)
    return checked


def _deliver(video: Path, path: Path, audio: Audio, record: dict, options: GenerateOptions, settings,
             found: OutputSnapshot | None = None) -> MarkResult:
    """Watermark, sign and store ``audio`` made for ``video`` as ``path``.

    The audio goes to mark() in memory: it is watermarked there, read back, written once, into a
    copy of the video (video stream copied) or as an audio file, tagged 24-bit for WAV and FLAC,
    and read back from that file (UnreadableMarkError, nothing published, unless the detector
    finds the payload both times: an output too silent to carry the mark, or whose codec took it,
    is never published as marked)."""
    from provenance.mark import mark

    return mark(video, path, settings=settings, generation_record=record, source_video=video,
                include_prompts=options.include_prompts, generated=True, title=path.name,
                audio=Audio(audio.samples, audio.sample_rate, subtype="PCM_24"), confirm=True, found=found)


def _too_short(audio: Audio) -> bool:
    """Whether ``audio`` failed its read-back for its length: shorter than one watermark block,
    and mostly sound (else its quiet is the likelier cause)."""
    from provenance.watermark import min_duration_s

    return audio.duration_s < min_duration_s() and sound_seconds(audio) >= 0.5 * audio.duration_s


def _too_little_sound(what: str, audio: Audio) -> str:
    """Why ``audio`` (``what``: "the soundtrack", "the events stem") cannot carry the watermark,
    and what to change, for an error or a note."""
    from provenance.watermark.embed import READS_BACK_FROM_S, min_duration_s

    sound_s, need = sound_seconds(audio), min_duration_s()
    if _too_short(audio):
        return (f"{what} is {audio.duration_s:.2f} s long, shorter than one {need:.2f} s watermark block, which "
                "holds the whole payload: too little of it to read back (in most soundtracks it reads back from "
                f"about {READS_BACK_FROM_S:g} s)")
    if sound_s == 0:
        said = f"{what} is silent (nothing louder than {SOUND_FLOOR_DBFS:g} dBFS)"
    else:
        said = (f"{what} holds {sound_s:.2f} s of sound (louder than {SOUND_FLOOR_DBFS:g} dBFS) "
                f"in {audio.duration_s:.2f} s")
    if sound_s < need:
        # a read-back decided it (a mix of 1.9 s of bounces can carry the mark, a stem of 1.4 s
        # did not): the figure is where reading it back becomes reliable, not a hard limit
        said += f"; too little to read the watermark back (it reads reliably from {need:.2f} s of sound)"
    else:  # a lone tone, say: the mark lives in the level differences of bands across 250-5500 Hz
        said += ("; yet the watermark cannot be read back from it: too little of its sound spreads over "
                 "250-5500 Hz, where the mark lives")
    return said


QUIET_TARGET_LUFS = -40.0
"""Below this loudness target (LUFS) much of a soundtrack falls under the -60 dBFS floor of sound
that carries the mark: the refusal then also says to raise ``--loudness``."""


def _advice(generator: str, loudness_lufs: float) -> str:
    """What a user can change when the soundtrack of ``generator``, mastered to ``loudness_lufs``
    (LUFS), has too little sound."""
    if generator == "builtin":
        said = ("loosen --negative-prompt, or ask in --prompt for a sound that lasts (an ambience such as "
                "'room tone', or music)")
    else:
        said = f"the generator {generator!r} made no more sound than that; check its output"
    if loudness_lufs < QUIET_TARGET_LUFS:  # then the likeliest cause, the user's own setting: said first
        said = (f"raise --loudness: at {loudness_lufs:g} LUFS much of the soundtrack is quieter than "
                f"{SOUND_FLOOR_DBFS:g} dBFS, which carries no mark; or {said}")
    return said


def _deliver_mix(video: Path, target: Path, track: Soundtrack, record: dict, options: GenerateOptions,
                 settings: Settings, generator: str, found: OutputSnapshot | None = None) -> MarkResult:
    """:func:`_deliver` the mix, or :class:`InputError` saying why it cannot carry the mark and
    what to change (checked before marking when it is silent, by reading the mark back otherwise)."""
    from provenance.core.errors import MarkLostInEncodingError, UnreadableMarkError

    def refuse() -> InputError:
        advice = ("ask for a longer --duration, or score a longer video" if _too_short(track.mix)
                  else _advice(generator, options.loudness_lufs))
        advice += "".join(f" ({note})" for note in track.notes)
        return InputError(f"{_too_little_sound('the soundtrack', track.mix)}: {advice}; nothing was written",
                          path=video)

    if sound_seconds(track.mix) == 0:
        raise refuse()
    try:
        return _deliver(video, target, track.mix, record, options, settings, found)
    except MarkLostInEncodingError as exc:  # the sound carried it; the output's codec did not
        raise InputError(f"{exc.message}; nothing was written", path=target) from exc
    except UnreadableMarkError as exc:
        raise refuse() from exc


def _deliver_stem(video: Path, path: Path, audio: Audio, layer: str, record: dict, options: GenerateOptions,
                  settings: Settings, found: OutputSnapshot | None = None) -> MarkResult | str:
    """:func:`_deliver` one stem, or a note saying why it was not written: a stem too silent to
    carry the mark (a few blips) is left out rather than published unmarked or failing the run."""
    from provenance.core.errors import MarkLostInEncodingError, UnreadableMarkError

    def note() -> str:
        return f"{path.name} not written: {_too_little_sound(f'the {layer} stem', audio)}"

    if sound_seconds(audio) == 0:
        return note()
    try:
        return _deliver(video, path, audio, record, options, settings, found)
    except MarkLostInEncodingError as exc:
        return f"{path.name} not written: {exc.message}"
    except UnreadableMarkError:
        return note()


def finite_or_none(x: float) -> float | None:
    """``x`` rounded to 0.01 for a JSON record, or None where JSON has no number: a silent
    soundtrack's loudness (-inf LUFS) or one a generator did not measure (NaN)."""
    return round(float(x), 2) if math.isfinite(x) else None


def _record(track: Soundtrack, options: GenerateOptions, gen_name: str, gen_version: str, video: Path,
            seed: int, candidate: int, layer: str | None) -> dict:
    sheet = track.cue_sheet
    params = {
        "loudness_lufs": options.loudness_lufs,
        "candidates": options.candidates,
        "candidate": candidate,
        "sample_rate": track.mix.sample_rate,
        "measured_loudness_lufs": finite_or_none(track.loudness_lufs),
        "true_peak_dbtp": finite_or_none(track.true_peak_dbtp),
    }
    if layer:
        params["stem"] = layer
    if sheet is not None:
        if options.include_prompts:
            # what the prompts chose and removed: with private prompts, "excluded" spelled the
            # negative prompt back ("birds" -> animal.birds) and the palette the prompt's sounds
            params["palette"] = list(sheet.palette.categories)
            params["excluded"] = list(sheet.palette.excluded)
        params["cues"] = len(sheet.cues)
    return {
        "generator": gen_name,
        "generator_version": gen_version,
        "prompt": options.prompt,
        "negative_prompt": options.negative_prompt,
        "seed": seed,
        "source_video": video.name,
        "parameters": params,
    }


def generate(
    video: str | Path,
    output: str | Path,
    options: GenerateOptions = GenerateOptions(),
    *,
    settings=None,
    progress: PipelineProgress | None = None,
) -> GenerateResult:
    """Generate ``options.candidates`` soundtracks for ``video`` and write each, marked, to ``output``.

    ``output`` is a video (``.mp4``/``.mov``/...: the video stream copied, AAC audio) or an
    audio file (``.wav``/``.flac``/``.mp3``/``.m4a``/...). Stems (one per layer) go to
    ``options.stems_dir``, each marked too; the cue sheet goes to ``options.cue_sheet_path``.
    Nothing is half-written: every file is published by an atomic rename.
    """
    if not isinstance(options, GenerateOptions):  # its fields were checked when it was made
        raise InputError(f"options must be a GenerateOptions, got {type(options).__name__}")
    video, output = path_argument("video", video), path_argument("output", output)
    info = probe(video)  # a clear error for a missing, corrupt or audio-only file before any work
    _check_long_enough(video, info.duration_s, options.duration_s)
    planned = _plan_outputs(video, output, options)
    _check_working_space(planned.targets[0].parent, info.duration_s, options.duration_s)
    gen = _generator(options)
    settings = _checked_settings(settings)
    with _made_folder(planned.stems_dir):
        return _generate_all(video, planned, options, gen, settings, progress)


@dataclass
class _Published:
    """What a run has published so far, candidate by candidate."""

    outputs: list[MarkedFile] = field(default_factory=list)
    stems: list[MarkedFile] = field(default_factory=list)
    sheets: list[Path] = field(default_factory=list)
    loud: list[float] = field(default_factory=list)
    """Integrated loudness of each output, LUFS."""
    peaks: list[float] = field(default_factory=list)
    """True peak of each output, dBTP."""
    notes: list[str] = field(default_factory=list)

    def paths(self) -> tuple[Path, ...]:
        return tuple([f.path for f in self.outputs] + [f.path for f in self.stems] + self.sheets)

    def result(self) -> GenerateResult:
        return GenerateResult(tuple(self.outputs), tuple(self.stems), tuple(self.sheets), tuple(self.loud),
                              tuple(self.peaks), tuple(self.notes))


def _generate_all(video: Path, planned: _Outputs, options: GenerateOptions, gen, settings: Settings,
                  progress: PipelineProgress | None) -> GenerateResult:
    """Generate, mark and write every candidate to the checked paths of ``planned``; an error or
    interrupt names the files already published (:func:`provenance.core.errors.published_before`)."""
    done = _Published()
    try:
        _each_candidate(video, planned, options, gen, settings, progress, done)
    except BaseException as exc:
        note_published(exc, done.paths())
        raise
    return done.result()


def _each_candidate(video: Path, planned: _Outputs, options: GenerateOptions, gen, settings: Settings,
                    progress: PipelineProgress | None, done: _Published) -> None:
    """Generate, mark and publish each candidate in turn, recording each file in ``done``."""
    from provenance.watermark import MIN_EMBED_S

    need = MIN_EMBED_S
    for k in range(1, options.candidates + 1):
        seed = options.seed + k - 1

        def stage(name: str, fraction: float, k: int = k) -> None:
            if progress:
                progress(name if options.candidates == 1 else f"{name} {k}/{options.candidates}", fraction)

        request = GenerationRequest(video, options.prompt, options.negative_prompt, seed, options.duration_s,
                                    options.loudness_lufs, stems=options.stems_dir is not None,
                                    work_dir=planned.targets[k - 1].parent)
        track = gen.generate(request, progress=stage)
        if track.cue_sheet is not None:  # words the generator had no sound for: said once, not per candidate
            done.notes += [n for n in track.cue_sheet.palette.unmatched_notes() if n not in done.notes]
        done.notes += [n for n in track.notes if n not in done.notes]
        if options.stems_dir is None:
            track.stems = {}  # a generator that made them anyway: free them before marking
        elif not track.stems:
            note = f"no stems written: the generator {gen.name!r} makes none (only a mix)"
            if note not in done.notes:
                done.notes.append(note)
        if track.mix.duration_s < need:  # the header said long enough, or nothing
            raise InputError(
                f"the soundtrack is {track.mix.duration_s:.2f} s long (the part of the video that decodes); "
                f"a soundtrack needs at least {need:.2f} s to carry the FoleySeal watermark",
                path=video,
            )
        target = planned.targets[k - 1]
        stage("mark", 0.0)
        record = _record(track, options, gen.name, getattr(gen, "version", "?"), video, seed, k, None)
        result = _deliver_mix(video, target, track, record, options, settings, gen.name, planned.found.get(target))
        done.outputs.append(MarkedFile(target, "soundtrack", seed, result.payload, result.record.id))
        for layer, audio in track.stems.items():
            stem_path = planned.stem(target, layer)
            stem_record = _record(track, options, gen.name, getattr(gen, "version", "?"), video, seed, k, layer)
            r = _deliver_stem(video, stem_path, audio, layer, stem_record, options, settings, planned.found.get(stem_path))
            if isinstance(r, str):
                done.notes.append(r)
            else:
                done.stems.append(MarkedFile(stem_path, "stem", seed, r.payload, r.record.id, layer))
        stage("mark", 1.0)
        if planned.cue_sheets and track.cue_sheet is not None:
            sheet_path = planned.cue_sheets[k - 1]
            atomic_write_bytes(sheet_path, (track.cue_sheet.to_json() + "\n").encode())
            done.sheets.append(sheet_path)
        elif planned.cue_sheets:
            done.notes.append(f"{planned.cue_sheets[k - 1].name} not written: the generator {gen.name!r} makes no cue sheet")
        done.loud.append(track.loudness_lufs)
        done.peaks.append(track.true_peak_dbtp)
        del track  # the next candidate's soundtrack is made without this one beside it
