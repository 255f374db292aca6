"""File-level watermarking: stream a file through the embedder or detector with bounded memory."""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import numpy as np

from provenance.core import io
from provenance.core.audio import Audio, check_audio_params
from provenance.core.atomic import atomic_path, reported_as, same_file
from provenance.core.errors import InputError, MarkLostInEncodingError, UnreadableMarkError
from provenance.core.io.read import _rechunk
from provenance.core.results import Detection
from provenance.watermark.clipping import clipped_fraction, clipped_samples
from provenance.watermark.detect import DEFAULT_THRESHOLD, check_threshold, detect, detect_features
from provenance.watermark.embed import ChunkEmbedder, marked_blocks, require_duration
from provenance.watermark.keys import WatermarkKey, as_key
from provenance.watermark.known import KnownPayloads
from provenance.watermark.layout import DEFAULT_PARAMS, WatermarkParams
from provenance.watermark.model import resample
from provenance.watermark.segments import merge_segments


def embed_file(
    in_path: str | Path,
    out_path: str | Path,
    key: WatermarkKey | bytes | str | Path,
    payload: bytes | str,
    *,
    strength: float = 1.0,
    params: WatermarkParams = DEFAULT_PARAMS,
    audio: Audio | None = None,
    confirm: bool = False,
    with_store: bool = True,
    progress: Callable[[str, float], None] | None = None,
) -> Path:
    """Watermark a file into ``out_path``, keeping rate, channels, (where possible) format, and
    the tags and cover pictures (:func:`io.carry_metadata`; a video's other streams, :mod:`io.video`).

    Audio is streamed in 9.6 s chunks (``embed.CHUNK_S``), so a 2-hour file needs well under 1 GB. The output
    is written to a temporary file and renamed only on success. Video inputs get their
    audio track replaced, streamed the same way, and their video stream copied.

    ``audio``, when given, is marked instead of ``in_path``'s own track: a soundtrack made
    for the video ``in_path`` (its first sample plays with the first picture), written into
    a copy of that video, or as an audio file when ``out_path`` is an audio format. This
    spares a generator staging its soundtrack in an intermediate file.

    With ``confirm``, the mark is read back from the file written, through its codec, before it
    replaces ``out_path`` (and, with ``audio``, from the marked audio in memory first): unless the
    detector names ``payload``, :class:`UnreadableMarkError` (:class:`MarkLostInEncodingError`
    when only the encoded file lost it) and ``out_path`` is left as it was. It reads as a verifier
    holding the manifest store would (``with_store``: the payload may be matched among the issued
    ones, :data:`READ_BACK_RECORDS`), or as the bare detector, ``foleyseal watermark detect``.
    Audio with too little sound (silence, a few short sounds), a ``strength`` too low, or a
    lossy encoder can leave no readable mark.

    ``progress``, if given, is called as ``progress(stage, share)``: ``"marking"`` and the share
    (0-1) of ``in_path``'s audio marked after each chunk, then ``"reading back"`` and the share
    of the file written read back (a file input with ``confirm``).
    """
    in_path, out_path = Path(in_path), Path(out_path)
    info = io.audio_info(in_path) if audio is None else None  # a folder or a missing input is said first
    _check_output_name(in_path, out_path)
    key = as_key(key)
    check = _ReadBack(key, payload, params, with_store, strength) if confirm else None
    if audio is not None:
        return _embed_given(audio, in_path, out_path, key, payload, strength, params, check)
    assert info is not None
    check_audio_params(info.sample_rate, info.channels, path=in_path)
    if info.frames <= 0:
        raise InputError("audio has no samples (zero length)", path=in_path)
    require_duration(info.duration_s, params, in_path)
    with atomic_path(out_path) as tmp, reported_as(tmp, out_path):
        _embed_stream(in_path, tmp, info, key, payload, strength, params, progress)
        if check is not None:
            check.file(tmp, out_path, after_memory=False, source=in_path, progress=progress)
    return out_path


PRIOR_MARK_WINDOW_S = 30.0
"""How much of a file's start is read for a watermark it already carries, seconds: the mark
repeats every 4.32 s through a marked file, so its start tells."""


def prior_payload(path: str | Path, key: WatermarkKey | bytes | str | Path) -> str | None:
    """The payload of ``key``'s watermark that the file at ``path`` already carries (marking it
    again replaces it), or None. Read on the file's own timeline (no speed or pitch search):
    re-marking a marked file is the case, not an edited copy of one."""
    found = detect(io.read_audio(path, duration_s=PRIOR_MARK_WINDOW_S), as_key(key), search=False)
    return found.payload if found.found else None


def _embed_stream(in_path: Path, out_path: Path, info: io.AudioInfo, key: WatermarkKey, payload: bytes | str,
                  strength: float, params: WatermarkParams,
                  progress: Callable[[str, float], None] | None = None) -> None:
    """Mark ``in_path``'s audio (a video's audio track) into ``out_path`` chunk by chunk: one
    chunk and its context in memory at a time, the same marks as :func:`embed` over the whole.
    A video's marked track goes into a copy of the video, or alone into an audio ``out_path``."""
    if io.is_video(in_path) and io.is_video_extension(out_path):
        _embed_video(in_path, out_path, info, key, payload, strength, params, progress)
        return
    emb = ChunkEmbedder(key, payload, info.sample_rate, strength=strength, params=params, path=in_path)
    chunks = _chunks_with_context(in_path, emb.chunk, emb.pad)
    marked = _reporting(_marked_chunks(emb, chunks), info.frames, progress)
    subtype = io.output_subtype(out_path, info.subtype)
    with io.AudioWriter(out_path, info.sample_rate, info.channels, subtype=subtype,
                        frames_hint=_plain_wav_hint(in_path, info)) as writer:
        for block in marked:
            writer.write(block)
    # the song's title, artist, album and cover stay with it (a video's title, for its track;
    # a Broadcast WAV's origin and time reference)
    io.carry_metadata(in_path, out_path)


def _plain_wav_hint(in_path: Path, info: io.AudioInfo) -> int | None:
    """The length to tell a WAV writer (frames) when the marked copy should be a plain WAV: a
    plain WAV input, or a mono/stereo one of another format. Without it the writer starts an RF64
    and ends a WAVE_FORMAT_EXTENSIBLE file, which older tools refuse for plain stereo, and which
    a WAVE_FORMAT_EXTENSIBLE input or a surround input needs (its speaker layout). A header's
    length may be an estimate (MP3): the margin keeps a file near 4 GiB on the RF64 side."""
    import soundfile as sf

    major = None
    if info.format == "wav":  # asked of a WAV only: libsndfile's libmpg123 prints on stderr of an MP3
        try:
            major = sf.info(os.fsencode(in_path)).format
        except (sf.LibsndfileError, RuntimeError, OSError, ValueError):
            pass
    plain = major == "WAV" if major in ("WAV", "WAVEX") else info.channels <= 2
    return int(info.frames * 1.05) + info.sample_rate if plain else None


def _check_output_name(in_path: Path, out_path: Path) -> None:
    """:class:`InputError` for an output that is the input itself (the unmarked original would be
    gone: `mark` refuses it too) or has no extension to name the format it is written in."""
    if same_file(in_path, out_path):
        raise InputError("output is the input file; marking writes a new file and the unmarked original "
                         "would be lost: choose another output name", path=out_path)
    if not out_path.suffix:
        raise InputError("output has no file extension to name its format; use one of "
                         f"{', '.join('.' + f for f in sorted(io.WRITE_FORMATS))}", path=out_path)


def _embed_video(in_path: Path, out_path: Path, info: io.AudioInfo, key: WatermarkKey, payload: bytes | str,
                 strength: float, params: WatermarkParams,
                 progress: Callable[[str, float], None] | None) -> None:
    """Mark every audio track of the video ``in_path`` (languages, commentary: any of them can be
    extracted and passed on) into a copy of it, ``out_path``; the video packets are copied as the
    marked chunks are encoded alongside them. ``info`` describes the main track, whose share
    marked is reported to ``progress`` (the one a verifier reads, and the read-back checks)."""
    main = io.main_audio_track(in_path)
    tracks = []
    for track in range(io.audio_track_count(in_path)):
        track_info = info if track == main else io.audio_info(in_path, track=track)
        check_audio_params(track_info.sample_rate, track_info.channels, what=f"audio track {track}", path=in_path)
        emb = ChunkEmbedder(key, payload, track_info.sample_rate, strength=strength, params=params, path=in_path)
        marked = _marked_chunks(emb, _chunks_with_context(in_path, emb.chunk, emb.pad, track=track))
        tracks.append(_reporting(marked, info.frames, progress) if track == main else marked)
    io.rewrite_audio_tracks_stream(in_path, tracks, out_path)


def _marked_chunks(emb: ChunkEmbedder, chunks: Iterable[tuple[int, np.ndarray, np.ndarray]]) -> Iterator[np.ndarray]:
    """Each chunk marked by ``emb``, bound when called (a generator expression in _embed_video's
    loop looked ``emb`` up when it ran, after the loop, and marked every track with the last
    track's embedder: at its sample rate, a broadcast error for tracks of other rates)."""
    for start, x, padded in chunks:
        yield emb.apply(x, start, padded)


def _reporting(blocks: Iterator[np.ndarray], total_frames: int,
               progress: Callable[[str, float], None] | None) -> Iterator[np.ndarray]:
    """``blocks`` as they are, calling ``progress("marking", share)`` with the share of
    ``total_frames`` passed on (a header's length can be an estimate: capped at 1)."""
    done = 0
    for block in blocks:
        yield block
        done += block.shape[-1]
        if progress is not None and total_frames > 0:
            progress("marking", min(1.0, done / total_frames))


def _embed_given(audio: Audio, video: Path, out_path: Path, key: WatermarkKey, payload: bytes | str,
                 strength: float, params: WatermarkParams, check: "_ReadBack | None") -> Path:
    """Mark in-memory ``audio`` and write it into a copy of ``video`` or, for an audio ``out_path``,
    alone. The marked audio is made block by block as it is read back and again as it is written
    (marking 48 kHz stereo runs at several hundred times real time, a fraction of the encoding),
    so an hour of soundtrack never has a second, marked copy in memory."""
    # marked_blocks() validates rate, channels and samples; the length check here names the file
    require_duration(audio.duration_s, params, video)

    def marked() -> Iterator[np.ndarray]:
        return marked_blocks(audio, key, payload, strength=strength, params=params)

    if check is not None:
        check.memory(marked(), audio.sample_rate, audio.duration_s)
    with atomic_path(out_path) as tmp, reported_as(tmp, out_path):
        if io.is_video_extension(out_path):
            io.replace_audio_track_stream(video, marked(), tmp, sample_rate=audio.sample_rate,
                                          channels=audio.channels, start_s=io.video_start_s(video))
        else:
            subtype = io.output_subtype(out_path, audio.subtype)
            with io.AudioWriter(tmp, audio.sample_rate, audio.channels, subtype=subtype,
                                frames_hint=audio.frames) as writer:
                for block in marked():
                    writer.write(block)
        if check is not None:
            check.file(tmp, out_path, after_memory=True)
    return out_path


@dataclasses.dataclass(frozen=True)
class _ReadBack:
    """Reading a fresh mark back (:func:`embed_file` with ``confirm``), with no speed or pitch
    search (nothing has happened to the audio yet). The embedder leaves silence unmarked and the
    mark rides on the sound, so audio with too little sound carries no readable mark: this is
    how it shows. Cost on 48 kHz stereo: about 0.1 s per 10 s when the payload decodes on its
    own (0.7 s for 60 s), up to 0.5 s more for sparse audio whose payload is named by matching,
    and the decoding of the file written."""

    key: WatermarkKey
    payload: bytes | str
    params: WatermarkParams
    with_store: bool
    strength: float

    @property
    def expected(self) -> str:
        from provenance.watermark.embed import payload_hex

        # as the detector reports it: " 0xABCD..." was embedded right, then never matched
        return payload_hex(self.payload, self.params.payload_bits)

    def _known(self):
        from provenance.watermark.known import PayloadSet

        return PayloadSet([self.expected], decoys=READ_BACK_RECORDS - 1) if self.with_store else None

    def _missed(self, found: Detection) -> bool:
        return not (found.found and found.payload == self.expected)

    def memory(self, marked: Iterator[np.ndarray], sample_rate: int, duration_s: float) -> None:
        """:class:`UnreadableMarkError` unless the marked audio, given as consecutive blocks at
        ``sample_rate`` (Hz) lasting ``duration_s`` (s), carries the payload: read as
        :func:`detect_file` reads a file, in windows, so any length fits in memory."""
        pieces = (Audio(x, sample_rate) for x in _rechunk(marked, int(sample_rate * _PIECE_S)))
        found = _detect_stream(pieces, sample_rate, duration_s, self.key, threshold=DEFAULT_THRESHOLD,
                               params=self.params, search=False, known=self._known())
        if found is None or self._missed(found):
            what = _what_failed(found) if found is not None else "not found"
            cause = self._too_short(duration_s) or "the audio has too little sound to carry it"
            raise UnreadableMarkError(f"read back right after embedding, the watermark is {what}: "
                                      f"{self._strength_first(cause)}")

    def file(self, path: Path, name: Path, *, after_memory: bool, source: Path | None = None,
             progress: Callable[[str, float], None] | None = None) -> None:
        """:class:`UnreadableMarkError` unless the file just written at ``path`` (its temporary
        name; ``name`` when published) carries the payload (read in windows, so any length fits
        in memory). The error names ``source``, the input, when the cause may be its audio (too
        little sound), else ``name`` (its encoder took the mark)."""
        found = detect_file(path, self.key, params=self.params, search=False, known=self._known(),
                            progress=None if progress is None else lambda share: progress("reading back", share))
        if not self._missed(found):
            return
        fmt = path.suffix.lstrip(".").upper()
        info = io.audio_info(path)
        lossless = info.subtype not in io.LOSSY_SUBTYPES
        if after_memory:
            raise MarkLostInEncodingError(
                f"the mark read back from the audio before encoding, but in the {fmt} file written it is "
                f"{_what_failed(found)}: write a lossless format (WAV, FLAC) or a higher bitrate",
                path=name,
            )
        causes = (_level_cause(path) or self._too_short(info.duration_s)
                  or ("the audio has too little sound to carry it (silence, a few short sounds) or too little "
                      "variety (a steady tone)"))
        if not lossless:
            causes += f", or the {fmt} encoder took it (a lossless format, WAV or FLAC, keeps more)"
        if (tracks := io.audio_track_count(path)) > 1:
            causes += (f"; of its {tracks} audio tracks, all marked, the mark is read back from the main one (the "
                       "one players pick), so that is the track that needs the sound")
        raise UnreadableMarkError(
            f"read back from the file written, the watermark is {_what_failed(found)}: {self._strength_first(causes)}",
            path=source if source is not None else name,
        )

    def _too_short(self, duration_s: float) -> str | None:
        """The cause of a missed read-back when the audio (``duration_s``, s) is shorter than one
        payload block; None when it is not."""
        from provenance.watermark.embed import READS_BACK_FROM_S, min_duration_s

        block = min_duration_s(self.params)
        if duration_s >= block:
            return None
        said = (f"the audio is {duration_s:.2f} s long, shorter than one {block:.2f} s watermark block, so it holds "
                f"only part of the coded payload")
        if self.with_store:
            return said + ", too little (or too little sound) to name it even among the issued payloads"
        return (said + ", too little to decode on its own; `foleyseal mark` reads it back as a verifier holding "
                "the manifest store does, matched among the issued payloads, which names it in most files from "
                f"{READS_BACK_FROM_S:g} s (or embed without reading back, for a mark that is found but whose payload "
                "may not be)")

    def _strength_first(self, causes: str) -> str:
        """``causes`` of a missed read-back, after the strength when the user turned it down (then
        the likeliest cause: at strength 0.05 even full orchestral music fails)."""
        if self.strength >= 1.0:
            return causes
        return f"at strength {self.strength:g} the mark may be too weak to find (1.0 is the default); else {causes}"


def _level_cause(path: Path) -> str | None:
    """Why a file's level leaves no room for the mark, when it does (None otherwise): samples
    beyond full scale (a float file at +20 dB), or much of it clipped flat at full scale. Only
    asked once a read-back failed, so the extra pass over the file costs nothing on success."""
    peak, flat, total = 0.0, 0, 0
    info = io.audio_info(path)
    for block in io.iter_audio_blocks(path, max(1, info.sample_rate * 10)):
        x = np.abs(block.samples)
        peak = max(peak, float(x.max(initial=0.0)))
        flat += int(np.count_nonzero(x >= 0.999))
        total += x.size
    if peak > 1.0:
        return (f"its samples reach {peak:.3g} times full scale ({20 * math.log10(peak):+.1f} dBFS): turn it "
                "down below 0 dBFS first")
    if total and flat / total > 0.01:
        return (f"{100 * flat / total:.1f} % of its samples are clipped flat at full scale, which leaves the "
                "mark no room: use a version with headroom")
    return None


READ_BACK_RECORDS = 10**6
"""Issued payloads a manifest store is assumed to hold when a read-back (:func:`embed_file` with
``confirm``) lets a mark be named by matching: the false-match bound is taken for a store of a
million records."""


def _what_failed(found: Detection) -> str:
    what = "found, but its payload could not be read" if found.found else "not found"
    return f"{what} (presence p = {found.p_value:.2g})"


def _chunks_with_context(path: Path, chunk: int, pad: int, *, track: int | None = None):
    """Yield (start, samples, padded samples) for consecutive chunks, zero context outside the
    file (``track``: which of a video's audio streams, as in :func:`io.iter_audio_blocks`).

    The reader raises on NaN/Inf samples as it reaches them, so nothing is checked again here."""
    blocks = io.iter_audio_blocks(path, chunk, track=track)
    if track is not None:
        blocks = _naming_track(blocks, path, track)
    prev_tail: np.ndarray | None = None
    current: np.ndarray | None = None
    start = 0
    for block in blocks:
        nxt = block.samples
        if current is not None:
            yield start, current, _pad(current, prev_tail, nxt, pad)
            prev_tail = current[:, -pad:] if current.shape[1] >= pad else current
            start += current.shape[1]
        current = nxt
    if current is None:
        where = "audio" if track is None else f"audio track {track}"
        raise InputError(f"{where} has no samples (zero length)", path=path)
    yield start, current, _pad(current, prev_tail, None, pad)


def _naming_track(blocks: Iterator[Audio], path: Path, track: int) -> Iterator[Audio]:
    """``blocks`` of audio track ``track``; an InputError they raise (NaN samples, damage,
    no samples) says which track."""
    try:
        yield from blocks
    except InputError as error:
        raise type(error)(f"audio track {track}: {error.message}", path=path) from error


def _pad(x: np.ndarray, before: np.ndarray | None, after: np.ndarray | None, pad: int) -> np.ndarray:
    ch = x.shape[0]
    left = before[:, -pad:] if before is not None else np.zeros((ch, 0), np.float32)
    right = after[:, :pad] if after is not None else np.zeros((ch, 0), np.float32)
    left = np.pad(left, ((0, 0), (pad - left.shape[1], 0)))
    right = np.pad(right, ((0, 0), (0, pad - right.shape[1])))
    return np.concatenate([left, x, right], axis=1)


LONG_FILE_WINDOW_S = 600.0
""":func:`detect_file` reads a file longer than this (seconds) in overlapping windows of this
length, so its memory stays bounded (a few hundred MB at any length and rate); a shorter file is
read in one piece. The windows' p-values carry a union bound over their number."""
LONG_FILE_OVERLAP_S = 10.0
"""Overlap of consecutive windows (seconds): more than two 4.32 s blocks, so that a mark that
straddles a window edge is whole in one of them."""


def detect_file(
    path: str | Path,
    key: WatermarkKey | bytes | str | Path,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    params: WatermarkParams = DEFAULT_PARAMS,
    search: bool = True,
    known: KnownPayloads | None = None,
    progress: Callable[[float], None] | None = None,
    track: int | None = None,
) -> Detection:
    """Detect the watermark in a file (audio, or a video's audio track), streaming the decode.
    ``search`` and ``known`` are :func:`~provenance.watermark.detect`'s; ``progress``, if given,
    is called with the share (0-1) of the file read after each window. ``track`` picks one of
    several audio streams (:func:`io.audio_track_count`; default: the main one).

    A file of up to :data:`LONG_FILE_WINDOW_S` is read in one piece (as :func:`detect` reads
    it). A longer one is read window by window: each window's p-value is multiplied by the number
    of windows (a union bound, so the false-positive rate stays at ``threshold``), the segments of
    the windows that pass are joined on the file's timeline, and the payload is that of the
    passing window with the smallest p-value (``details["windows"]``, ``details["window_start_s"]``)."""
    check_threshold(threshold)  # before the file is read, as detect() does
    path = Path(path)
    key = as_key(key)
    info = io.audio_info(path, track=track)
    check_audio_params(info.sample_rate, info.channels, path=path)
    blocks = io.iter_audio_blocks(path, int(info.sample_rate * _PIECE_S), track=track)
    det = _detect_stream(blocks, info.sample_rate, info.duration_s, key, threshold=threshold, params=params,
                         search=search, known=known, progress=progress)
    if det is None:
        raise InputError("audio has no samples (zero length)", path=path)
    return on_file_timeline(det, info.start_s)


_PIECE_S = 30
"""Seconds of audio turned into analysis samples at a time (a multiple of 25 ms, see below)."""


def _detect_stream(blocks: Iterator[Audio], sample_rate: int, duration_s: float, key: WatermarkKey, *,
                   threshold: float, params: WatermarkParams, search: bool, known: KnownPayloads | None,
                   progress: Callable[[float], None] | None = None) -> Detection | None:
    """:func:`detect_file`'s reading of consecutive ``blocks`` of audio at ``sample_rate`` (Hz)
    that last about ``duration_s`` (s; the number of windows, and so the union bound, is taken
    from it), in windows of :data:`LONG_FILE_WINDOW_S`; None when there are no samples."""
    rate = params.analysis_rate_hz
    window, overlap = int(LONG_FILE_WINDOW_S * rate), int(LONG_FILE_OVERLAP_S * rate)
    expected = _window_count(duration_s, LONG_FILE_WINDOW_S, LONG_FILE_OVERLAP_S)
    frames = [0]
    readings: list[tuple[float, Detection]] = []
    for start, x16, clipped16 in _windows(_analysis_pieces(blocks, sample_rate, params, frames), window, overlap):
        whole = not readings and x16.shape[-1] < window  # the only window: the file in one piece
        window_s = frames[0] / sample_rate if whole else x16.shape[-1] / rate
        readings.append((start / rate, detect_features(
            x16, key, duration_s=window_s, threshold=threshold / expected, params=params,
            source_rate_hz=sample_rate, search=search, clipped16=clipped16, known=known,
        )))
        if progress is not None and duration_s > 0:
            progress(min(1.0, (start + x16.shape[-1]) / rate / duration_s))
    if frames[0] == 0:
        return None
    if len(readings) == 1 and expected == 1:
        return readings[0][1]
    return _joined(readings, max(expected, len(readings)), threshold, frames[0] / sample_rate)


def _joined(readings: list[tuple[float, Detection]], tests: int, threshold: float, duration_s: float) -> Detection:
    """One detection for a file read in windows (``(start_s, detection)`` each): the smallest
    p-value times ``tests`` (a union bound), the segments of every window that passes after that
    bound on the file's timeline, and the payload of the passing window with the smallest p-value."""
    best_start, best = min(readings, key=lambda r: r[1].p_value)
    p_value = min(1.0, best.p_value * tests)
    passing = [(s, d) for s, d in readings if d.found and d.p_value * tests <= threshold]
    named = [(s, d) for s, d in passing if d.payload is not None]
    source_start, source = min(named, key=lambda r: r[1].p_value) if named else (best_start, best)
    details = {**source.details, "windows": len(readings), "window_start_s": source_start,
               "window_s": LONG_FILE_WINDOW_S}
    return Detection(
        found=p_value <= threshold,
        payload=source.payload if named else None,
        p_value=p_value,
        bit_confidence=source.bit_confidence,
        segments=merge_segments([seg.shifted(s) for s, d in passing for seg in d.segments]),
        threshold=threshold,
        duration_s=duration_s,
        speed=source.speed,
        pitch_semitones=source.pitch_semitones,
        details=details,
    )


def _window_count(duration_s: float, window_s: float, overlap_s: float) -> int:
    """How many windows :func:`_windows` makes of ``duration_s`` seconds (at least 1)."""
    if duration_s <= window_s:
        return 1
    return 1 + math.ceil((duration_s - window_s) / (window_s - overlap_s))


def _analysis_pieces(blocks: Iterator[Audio], sample_rate: int, params: WatermarkParams,
                     frames: list[int]) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """The mono mix of consecutive ``blocks`` (at ``sample_rate``) at the analysis rate and its
    clipped share per sample, in consecutive pieces; ``frames[0]`` counts the frames read."""
    # Blocks are a multiple of 25 ms at every rate that is a multiple of 40 Hz, so the 16 kHz
    # pieces join without gaps; a short overlap absorbs the resampler's edge transients.
    ov = int(sample_rate * 0.25)
    ov16 = ov * params.analysis_rate_hz // sample_rate
    tail: np.ndarray | None = None
    for b in blocks:
        mono = b.mono()
        frames[0] += mono.size
        joined = mono if tail is None else np.concatenate([tail, mono])
        y = resample(joined, sample_rate, params.analysis_rate_hz)
        if tail is not None:
            y = y[ov16:]
        # a clipped run that straddles two blocks loses its few edge samples: immaterial
        yield y, clipped_fraction(clipped_samples(b.samples), sample_rate, params.analysis_rate_hz, y.shape[-1])
        tail = mono[-ov:] if mono.size >= ov else mono


def _windows(pieces: Iterator[tuple[np.ndarray, np.ndarray]], window: int,
             overlap: int) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """``(start, samples, clipped)`` windows of ``window`` samples every ``window - overlap``; the
    last one ends where the signal ends (it overlaps its predecessor by more when the signal's
    length is not a whole number of hops). A signal shorter than ``window`` is one window."""
    hop = window - overlap
    buf: list[tuple[np.ndarray, np.ndarray]] = []
    held = start = 0
    last: tuple[np.ndarray, np.ndarray] | None = None
    for piece in pieces:
        buf.append(piece)
        held += piece[0].shape[-1]
        while held >= window:
            x, c = (np.concatenate(parts) for parts in zip(*buf))
            yield start, x[:window], c[:window]
            last = (x[:window], c[:window])
            buf, held, start = [(x[hop:], c[hop:])], x.shape[-1] - hop, start + hop
    if not buf or held == 0:
        return
    x, c = (np.concatenate(parts) for parts in zip(*buf))
    if last is None:
        yield start, x, c
    elif held > overlap:
        # Audio past the last window: a final, whole window that ends with the signal. ``buf``
        # starts at ``start``; ``last`` covered [start - hop, start + overlap).
        lx, lc = last
        yield start + held - window, np.concatenate([lx[held - overlap : hop], x]), np.concatenate([lc[held - overlap : hop], c])


def on_file_timeline(det: Detection, start_s: float) -> Detection:
    """``det`` with its segments moved from the audio's own time to the file's timeline, where
    the audio starts ``start_s`` seconds in (a video whose audio track starts after its picture):
    a player shows the mark's spans there."""
    if not start_s or not det.segments:
        return det
    return dataclasses.replace(det, segments=tuple(s.shifted(start_s) for s in det.segments),
                               details={**det.details, "audio_start_s": start_s})
