"""Tags: the title, artist, album ... and the cover pictures of an audio file, carried from an
input to the output made from it, so that marking a song does not strip it.

PyAV (FFmpeg) reads the tags of every format under FFmpeg's generic names (``title``,
``album_artist``, ``track`` ...), never the C2PA manifest a signed input carries; mutagen writes
them in the output format's own way: Vorbis comments (FLAC, Ogg Vorbis, Opus), ID3 (MP3, WAV,
AIFF) or MP4 atoms (M4A, MP4, MOV). Other formats (AU, W64, CAF, raw AAC, Matroska audio) have no
tags written. Between WAV files the chunks themselves are carried, byte for byte (Broadcast WAV's
``bext``, ``iXML``, cue points: :func:`copy_wav_chunks`).
"""

from __future__ import annotations

import base64
import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av
import mutagen
from mutagen import id3
from mutagen.aiff import AIFF
from mutagen.flac import FLAC
from mutagen.flac import Picture as FlacPicture
from mutagen.mp3 import MP3
from mutagen.mp4 import MP4, MP4Cover, MP4FreeForm
from mutagen.oggopus import OggOpus
from mutagen.oggvorbis import OggVorbis
from mutagen.wave import WAVE

from provenance.core.errors import FormatError
from provenance.core.io.common import PathLike, _wrapped
from provenance.core.io.read import main_audio_stream

PICTURE_TYPES = (
    "Other", "32x32 pixels 'file icon'", "Other file icon", "Cover (front)", "Cover (back)",
    "Leaflet page", "Media (e.g. label side of CD)", "Lead artist/lead performer/soloist", "Artist/performer",
    "Conductor", "Band/Orchestra", "Composer", "Lyricist/text writer", "Recording Location",
    "During recording", "During performance", "Movie/video screen capture", "A bright coloured fish",
    "Illustration", "Band/artist logotype", "Publisher/Studio logotype",
)
"""The ID3/FLAC picture types, in FFmpeg's words (its ``comment`` tag of a cover stream); a
picture's ``kind`` is the position here."""

_NOT_CARRIED = frozenset({
    "encoder", "major_brand", "minor_version", "compatible_brands", "duration", "creation_time",
    "handler_name", "vendor_id", "itunsmpb", "itunnorm", "tlen", "metadata_block_picture",
    "waveformatextensible_channel_mask",
})
"""Tags that describe the file as encoded (its encoder, brands, length, gapless padding), which
the re-encoded output states for itself, or that are pictures read another way."""

_IMAGE_MIME = {"mjpeg": "image/jpeg", "png": "image/png", "bmp": "image/bmp", "gif": "image/gif",
               "webp": "image/webp", "tiff": "image/tiff"}


@dataclass(frozen=True)
class Picture:
    """An embedded picture (cover art)."""

    data: bytes
    mime: str
    """``image/jpeg``, ``image/png`` ..."""
    kind: int = 3
    """ID3/FLAC picture type (3: front cover; :data:`PICTURE_TYPES`)."""
    description: str = ""


@dataclass(frozen=True)
class Tags:
    """What a file says about its content: text tags under FFmpeg's generic lower-case names
    (``title``, ``artist``, ``album``, ``album_artist``, ``date``, ``genre``, ``track``,
    ``disc``, ``comment``, ``composer``, ``copyright`` ..., or the file's own key) and pictures."""

    text: dict[str, str | tuple[str, ...]] = field(default_factory=dict)
    """A name's value, or its values where the tag holds several (two artists, two genres)."""
    pictures: tuple[Picture, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.text or self.pictures)


def read_tags(path: PathLike) -> Tags:
    """The tags and pictures of ``path`` (any format FFmpeg opens; a video's container tags).
    FormatError for a file FFmpeg cannot open."""
    path = Path(path)
    text: dict[str, str | tuple[str, ...]] = {}
    pictures: list[Picture] = []
    with _wrapped(path, "read the tags"), av.open(str(path)) as container:
        sources = [container.metadata]
        if "ogg" in container.format.name.split(",") and container.streams.audio:
            # Ogg keeps its comments on the stream; other formats' stream tags are technical
            sources.append(main_audio_stream(container).metadata)
        for tags in sources:
            for key, value in tags.items():
                low = key.lower()
                if low in _NOT_CARRIED or low.startswith(("id3v2_priv.", "_statistics")) or not value:
                    continue
                text.setdefault(low, value)
        covers = [s for s in container.streams.video if s.disposition & av.stream.Disposition.attached_pic]
        images = _first_packets(container, covers)
        for stream in covers:
            mime = _IMAGE_MIME.get(stream.codec_context.name) if stream.codec_context is not None else None
            if mime is None or not images.get(stream.index):
                continue
            comment = stream.metadata.get("comment", "")
            kind = PICTURE_TYPES.index(comment) if comment in PICTURE_TYPES else 3
            pictures.append(Picture(images[stream.index], mime, kind, stream.metadata.get("title", "")))
    _add_every_value(path, text)
    return Tags(text, tuple(pictures))


def _add_every_value(path: Path, text: dict[str, str | tuple[str, ...]]) -> None:
    """Replace, in ``text``, the values FFmpeg read of multi-valued tags by all of them: it reads
    only the first value of an ID3 frame or MP4 atom, and joins Vorbis comments with ";" (a
    title may hold one of its own). Files mutagen cannot read keep FFmpeg's values."""
    try:
        audio = mutagen.File(str(path))
    except (mutagen.MutagenError, OSError, ValueError):
        return
    system = _tag_system(audio)
    if audio is None or not audio.tags or system is None:
        return
    for key in list(text):
        values = _native_values(audio.tags, system, key)
        if len(values) > 1:
            text[key] = tuple(values)


def _native_values(frames: Any, system: str, key: str) -> list[str]:
    """The text values the tag system stores for FFmpeg's generic ``key`` ([] if it stores none)."""
    if system == "id3":
        frame = frames.get(_ID3_FRAMES.get(key, ""))
        return [str(v) for v in frame.text] if frame is not None and hasattr(frame, "text") else []
    if system == "mp4":
        values = frames.get(_MP4_ATOMS.get(key, ""), [])
        return [v for v in values if isinstance(v, str)]
    return list(frames.get(_VORBIS_KEYS.get(key, key.upper()), []))


def _values(value: str | tuple[str, ...]) -> list[str]:
    """A tag's value(s) as the list the tag systems store."""
    return [value] if isinstance(value, str) else list(value)


def _first_packets(container: av.container.InputContainer, streams: list[av.stream.Stream]) -> dict[int, bytes]:
    """The first packet of each of ``streams`` (an attached picture is one packet, read first)."""
    found: dict[int, bytes] = {}
    if not streams:
        return found  # demux() of no streams would read them all
    for packet in container.demux(streams):
        if packet.size and packet.stream.index not in found:
            found[packet.stream.index] = bytes(packet)
            if len(found) == len(streams):
                break
    return found


def write_tags(path: PathLike, tags: Tags) -> bool:
    """Write ``tags`` into ``path`` in its format's own way, replacing none of the tags it has
    (an encoder's) unless ``tags`` names them. Returns False for a format without tags
    (nothing written); FormatError if writing fails."""
    path = Path(path)
    if not tags:
        return True
    with _writing_tags(path):
        audio = mutagen.File(str(path))
        write = {"vorbis": _write_vorbis, "id3": _write_id3, "mp4": _write_mp4}.get(_tag_system(audio))
        if write is None:
            return False
        write(audio, tags)
        audio.save()
    return True


def _tag_system(audio: Any) -> str | None:
    """Which tag system a mutagen file uses: ``vorbis`` (FLAC, Ogg Vorbis, Opus), ``id3`` (MP3,
    WAV, AIFF), ``mp4``; None for a format with none mutagen writes."""
    if isinstance(audio, (FLAC, OggVorbis, OggOpus)):
        return "vorbis"
    if isinstance(audio, (MP3, WAVE, AIFF)):
        return "id3"
    return "mp4" if isinstance(audio, MP4) else None


@contextlib.contextmanager
def _writing_tags(path: Path) -> Iterator[None]:
    """mutagen's failures while writing ``path``'s tags, as a :class:`FormatError` naming it."""
    try:
        yield
    except (mutagen.MutagenError, OSError, ValueError) as exc:
        raise FormatError(f"could not write the tags (title, artist, cover ...): {exc}", path=path) from exc


def copy_tags(source: PathLike, target: PathLike) -> bool:
    """Carry ``source``'s tags and pictures over to ``target`` (a file made from it: the marked
    copy). Between files of one tag system (ID3, MP4 atoms, Vorbis comments) the tags are
    copied as they are (every value of a multi-valued tag, lyrics, ratings, URLs, the same
    frame and key names: :func:`_copy_native`); otherwise through FFmpeg's generic names.
    Returns False when ``target``'s format holds no tags, or FFmpeg cannot read ``source``'s (a
    file libsndfile alone decodes): nothing is written then."""
    if _copy_native(Path(source), Path(target)):
        return True
    try:
        tags = read_tags(source)
    except FormatError:
        return False
    return write_tags(target, tags)


_ID3_NOT_CARRIED = frozenset({"TSSE", "TLEN"})
"""ID3 frames (by id) that describe the old encoding: its encoder, its length."""
_ID3_COMMENTS_NOT_CARRIED = frozenset({"itunsmpb", "itunnorm", "itunpgap"})
"""Descriptions of the comment frames (``COMM``) in which iTunes keeps the old encoding's gapless
delay and padding and its loudness: kept, they would trim the new encoding wrongly."""
_MP4_NOT_CARRIED = frozenset({"\xa9too", "----:com.apple.iTunes:iTunSMPB", "----:com.apple.iTunes:iTunNORM"})
_VORBIS_NOT_CARRIED = frozenset({"encoder"})
_C2PA_MIMES = ("application/c2pa", "application/x-c2pa-manifest-store")


def _copy_native(source: Path, target: Path) -> bool:
    """Copy the tags of ``source`` into ``target`` in their own tag system, when both files use
    the same one; False (nothing written) otherwise. The C2PA manifest ``source`` may carry in
    its tags (an ID3 GEOB frame) and what describes the old encoding are left out."""
    try:
        src = mutagen.File(str(source))
    except (mutagen.MutagenError, OSError, ValueError):
        return False  # e.g. a FLAC named .wav: FFmpeg's reading (the generic way) still works
    with _writing_tags(target):
        dst = mutagen.File(str(target))
        system = _tag_system(src)
        if src is None or dst is None or not src.tags or system is None or _tag_system(dst) != system:
            return False
        {"vorbis": _copy_vorbis, "id3": _copy_id3, "mp4": _copy_mp4}[system](src, dst)
        dst.save()
    return True


def _copy_mp4(src: MP4, dst: MP4) -> None:
    if dst.tags is None:
        dst.add_tags()
    for key, value in src.tags.items():
        if key not in _MP4_NOT_CARRIED:
            dst.tags[key] = value


def _copy_vorbis(src: FLAC | OggVorbis | OggOpus, dst: FLAC | OggVorbis | OggOpus) -> None:
    if dst.tags is None:
        dst.add_tags()
    names = {k.lower(): k for k, _ in reversed(list(src.tags))}  # each name as first written
    for low, name in names.items():
        if low not in _VORBIS_NOT_CARRIED and low != "metadata_block_picture":
            dst.tags[name] = [v for k, v in src.tags if k.lower() == low]  # ARTIST=One, ARTIST=Two stay two
    pictures = list(src.pictures) if isinstance(src, FLAC) else [
        FlacPicture(base64.b64decode(b)) for b in src.tags.get("metadata_block_picture", [])]
    if isinstance(dst, FLAC):
        dst.clear_pictures()
        for picture in pictures:
            dst.add_picture(picture)
    elif pictures:
        dst.tags["METADATA_BLOCK_PICTURE"] = [base64.b64encode(p.write()).decode("ascii") for p in pictures]


def _copy_id3(src: MP3 | WAVE | AIFF, dst: MP3 | WAVE | AIFF) -> None:
    if dst.tags is None:
        dst.add_tags()
    for key, frame in src.tags.items():
        if not _id3_carried(frame):
            continue
        dst.tags[key] = frame


def _id3_carried(frame: Any) -> bool:
    """Whether an ID3 ``frame`` says something about the content: not the old encoding's encoder,
    length or gapless padding, nor the C2PA manifest of the source (the output gets its own). A
    comment's key holds its language (``COMM:iTunSMPB:eng``), so it is told by its description."""
    if frame.FrameID in _ID3_NOT_CARRIED:
        return False
    if frame.FrameID == "COMM":
        return frame.desc.lower() not in _ID3_COMMENTS_NOT_CARRIED
    return not (frame.FrameID == "GEOB" and frame.mime.lower() in _C2PA_MIMES)


# --- Vorbis comments ----------------------------------------------------------------------

_VORBIS_KEYS = {"album_artist": "ALBUMARTIST", "track": "TRACKNUMBER", "disc": "DISCNUMBER",
                "comment": "DESCRIPTION", "tbpm": "BPM", "tsrc": "ISRC"}
"""FFmpeg's generic names whose Vorbis comment has another name (the reverse of its reading)."""


def _write_vorbis(audio: FLAC | OggVorbis | OggOpus, tags: Tags) -> None:
    if audio.tags is None:
        audio.add_tags()
    for key, value in tags.text.items():
        audio.tags[_vorbis_key(key)] = _values(value)
    if not tags.pictures:
        return
    blocks = [_flac_picture(p) for p in tags.pictures]
    if isinstance(audio, FLAC):
        audio.clear_pictures()
        for block in blocks:
            audio.add_picture(block)
    else:
        audio.tags["METADATA_BLOCK_PICTURE"] = [base64.b64encode(b.write()).decode("ascii") for b in blocks]


def _vorbis_key(key: str) -> str:
    """The Vorbis comment name for ``key``: printable ASCII without ``=`` (another format's
    free-form key may hold anything), upper case by custom."""
    name = "LYRICS" if key.startswith("lyrics-") else _VORBIS_KEYS.get(key, key.upper())  # FFmpeg: USLT as lyrics-<lang>
    return "".join(c if 0x20 <= ord(c) <= 0x7D and c != "=" else "_" for c in name) or "_"


def _flac_picture(picture: Picture) -> FlacPicture:
    block = FlacPicture()
    block.data, block.mime, block.type, block.desc = picture.data, picture.mime, picture.kind, picture.description
    return block


# --- ID3 ----------------------------------------------------------------------------------

_ID3_FRAMES = {
    "title": "TIT2", "artist": "TPE1", "album": "TALB", "album_artist": "TPE2", "composer": "TCOM",
    "genre": "TCON", "copyright": "TCOP", "encoded_by": "TENC", "language": "TLAN", "performer": "TPE3",
    "disc": "TPOS", "publisher": "TPUB", "track": "TRCK", "date": "TDRC", "grouping": "TIT1",
    "album-sort": "TSOA", "artist-sort": "TSOP", "title-sort": "TSOT", "bpm": "TBPM", "isrc": "TSRC",
    "tbpm": "TBPM", "tsrc": "TSRC",
}
"""FFmpeg's generic names and the ID3v2.4 text frames they come from."""


def _write_id3(audio: MP3 | WAVE | AIFF, tags: Tags) -> None:
    if audio.tags is None:
        audio.add_tags()
    frames = audio.tags
    for key, value in tags.text.items():
        values = _values(value)
        if key == "comment":
            frames.setall("COMM", [id3.COMM(encoding=3, lang="eng", desc="", text=values)])
        elif key == "lyrics" or key.startswith("lyrics-"):  # FFmpeg reads USLT as lyrics-<lang>
            lang = key.partition("-")[2][:3] or "eng"
            frames.setall("USLT", [id3.USLT(encoding=3, lang=lang, desc="", text="\n".join(values))])
        elif key in _ID3_FRAMES:
            frame = _ID3_FRAMES[key]
            frames.setall(frame, [getattr(id3, frame)(encoding=3, text=values)])
        else:
            frames.setall(f"TXXX:{key}", [id3.TXXX(encoding=3, desc=key, text=values)])
    if tags.pictures:
        frames.delall("APIC")
        for p in tags.pictures:
            frames.add(id3.APIC(encoding=3, mime=p.mime, type=p.kind, desc=p.description, data=p.data))


# --- MP4 atoms ----------------------------------------------------------------------------

_MP4_ATOMS = {
    "title": "\xa9nam", "artist": "\xa9ART", "album": "\xa9alb", "album_artist": "aART", "date": "\xa9day",
    "genre": "\xa9gen", "comment": "\xa9cmt", "composer": "\xa9wrt", "copyright": "cprt", "grouping": "\xa9grp",
    "lyrics": "\xa9lyr", "description": "desc", "synopsis": "ldes", "show": "tvsh", "network": "tvnn",
    "episode_id": "tven", "sort_name": "sonm", "sort_artist": "soar", "sort_album": "soal",
    "sort_album_artist": "soaa", "sort_composer": "soco",
}
"""FFmpeg's generic names and the iTunes atoms they come from."""


def _write_mp4(audio: MP4, tags: Tags) -> None:
    if audio.tags is None:
        audio.add_tags()
    for key, value in tags.text.items():
        values = _values(value)
        pair = _number_pair(values[0]) if key in ("track", "disc") else None
        if pair is not None:
            audio.tags["trkn" if key == "track" else "disk"] = [pair]
        elif key in ("bpm", "tbpm") and values[0].strip().isdigit():
            audio.tags["tmpo"] = [int(values[0])]
        elif key in ("isrc", "tsrc"):
            audio.tags["----:com.apple.iTunes:ISRC"] = [MP4FreeForm(v.encode("utf-8")) for v in values]
        elif key.startswith("lyrics-"):
            audio.tags["\xa9lyr"] = values
        elif key in _MP4_ATOMS:
            audio.tags[_MP4_ATOMS[key]] = values
        else:
            audio.tags[f"----:com.apple.iTunes:{key}"] = [MP4FreeForm(v.encode("utf-8")) for v in values]
    covers = [p for p in tags.pictures if p.mime in ("image/jpeg", "image/png")]
    if covers:
        audio.tags["covr"] = [MP4Cover(p.data, MP4Cover.FORMAT_JPEG if p.mime == "image/jpeg" else MP4Cover.FORMAT_PNG)
                              for p in covers]


def _number_pair(value: str) -> tuple[int, int] | None:
    """``"3/12"`` -> (3, 12), ``"3"`` -> (3, 0); None if it is not such a number."""
    number, _, total = value.partition("/")
    try:
        return int(number), int(total) if total else 0
    except ValueError:
        return None


# --- WAV chunks ---------------------------------------------------------------------------

_WAV_CHUNKS_NOT_CARRIED = frozenset({b"fmt ", b"data", b"fact", b"PEAK", b"C2PA", b"JUNK", b"junk", b"PAD ",
                                     b"FLLR", b"ds64"})
"""Chunks that describe the audio as encoded (format, length, peaks), the C2PA manifest (the
output gets its own), and padding."""
_WAV_CHUNK_MAX_BYTES = 64 << 20


def copy_wav_chunks(source: PathLike, target: PathLike) -> bool:
    """Append to the WAV ``target`` every chunk of the WAV ``source`` that says something about
    its content rather than its encoding: Broadcast WAV's ``bext`` (originator, time reference),
    ``iXML`` (production sound metadata), cue points, loops, ``LIST`` INFO tags, an ``id3 ``
    tag ..., byte for byte (sample positions stay right: a marked copy keeps the rate and the
    length). Returns False, writing nothing, unless both are RIFF WAVE files (not RF64) and the
    result stays under 4 GiB. FormatError if ``target`` cannot be written."""
    source, target = Path(source), Path(target)
    chunks = _wav_chunks(source)
    if chunks is None or not _is_riff_wave(target):
        return False
    carried = [(cid, data) for cid, data in chunks if cid not in _WAV_CHUNKS_NOT_CARRIED]
    extra = sum(8 + len(data) + len(data) % 2 for _, data in carried)
    size = target.stat().st_size
    if size + extra >= 1 << 32:
        return False
    source_fmt = dict(chunks).get(b"fmt ", b"")
    mask_at, mask = _channel_mask_patch(_extensible_mask(source_fmt), source_fmt[2:4], target)
    try:
        with open(target, "r+b") as f:
            f.seek(size + size % 2)
            for cid, data in carried:
                f.write(cid + len(data).to_bytes(4, "little") + data + b"\0" * (len(data) % 2))
            f.seek(4)
            f.write((size + size % 2 + extra - 8).to_bytes(4, "little"))
            if mask_at is not None:
                f.seek(mask_at)
                f.write(mask.to_bytes(4, "little"))
    except OSError as exc:
        raise FormatError(f"could not write the WAV chunks (bext, iXML, cues ...): {exc}", path=target) from exc
    return True


_EXTENSIBLE = 0xFFFE


def _channel_mask_patch(mask: int | None, channels: bytes, target: Path) -> tuple[int | None, int]:
    """Where in ``target`` to write the speaker mask ``mask`` (the source's, of ``channels``
    channels: a ``fmt `` chunk's two bytes) so that its channels
    go to the source's speakers: (offset, mask), or (None, 0) when nothing is to change.
    libsndfile writes its own default for the channel count (7.1 wide for 8 channels), which sent
    a 7.1 file's side pair to the front-of-centre speakers. A source without a mask (None: plain
    PCM) keeps libsndfile's default, the speakers in order, as players read such a file."""
    if mask is None:
        return None, 0
    for offset, cid, fmt in _wav_chunk_offsets(target):
        if cid == b"fmt ":
            ours = _extensible_mask(fmt)
            if ours is None or ours == mask or fmt[2:4] != channels:
                return None, 0
            return offset + 20, mask
    return None, 0


_WAV_SPEAKERS = ("FL", "FR", "FC", "LFE", "BL", "BR", "FLC", "FRC", "BC", "SL", "SR", "TC", "TFL", "TFC", "TFR",
                 "TBL", "TBC", "TBR")
"""The speakers of a WAV speaker mask, bit 0 first, in FFmpeg's names (its own layouts use the
same bits, so the names of a FLAC's or an M4A's layout give the mask)."""


def _layout_mask(source: Path) -> int | None:
    """The WAV speaker mask of the speakers of ``source``'s audio (FFmpeg's layout), or None when
    there is none to give: a format FFmpeg cannot read, a speaker a WAV mask has no bit for, or
    speakers out of the mask's order (a WAV's channels come in the order of its bits)."""
    try:
        with av.open(str(source)) as container:
            names = [c.name for c in main_audio_stream(container).codec_context.layout.channels]
    except (av.FFmpegError, FormatError, OSError, ValueError, IndexError):
        return None
    if not names or any(n not in _WAV_SPEAKERS for n in names):
        return None
    bits = [_WAV_SPEAKERS.index(n) for n in names]
    return sum(1 << b for b in bits) if bits == sorted(set(bits)) else None


def _layout(source: Path) -> tuple[int | None, bytes]:
    """(:func:`_layout_mask` of ``source``, its number of channels as a ``fmt `` chunk holds it)."""
    mask = _layout_mask(source)
    return mask, (mask.bit_count() if mask is not None else 0).to_bytes(2, "little")


def keep_speakers(source: PathLike, target: PathLike) -> None:
    """Give the WAV ``target``, made from the non-WAV ``source`` (a 7.1 FLAC, a 5.1(side) M4A),
    the speaker mask of ``source``'s layout: libsndfile's default for the channel count would
    send a 7.1's side pair to the front-of-centre speakers. Nothing changes for other targets."""
    target = Path(target)
    if not _is_riff_wave(target):
        return
    at, mask = _channel_mask_patch(*_layout(Path(source)), target)
    if at is None:
        return
    try:
        with open(target, "r+b") as f:
            f.seek(at)
            f.write(mask.to_bytes(4, "little"))
    except OSError as exc:
        raise FormatError(f"could not write the WAV speaker mask: {exc}", path=target) from exc


def _extensible_mask(fmt: bytes) -> int | None:
    """The speaker mask (``dwChannelMask``) of a WAVE_FORMAT_EXTENSIBLE ``fmt `` chunk's data;
    None for another format."""
    if len(fmt) >= 24 and int.from_bytes(fmt[:2], "little") == _EXTENSIBLE:
        return int.from_bytes(fmt[20:24], "little")
    return None


def _wav_chunks(path: Path) -> list[tuple[bytes, bytes]] | None:
    """The chunks of a RIFF WAVE file as (id, data), the ``data`` chunk's data left out (empty);
    None for anything else. Chunks larger than 64 MiB are left out too."""
    if not _is_riff_wave(path):
        return None
    try:
        return [(cid, data) for _, cid, data in _wav_chunk_offsets(path)]
    except OSError:
        return None


def _wav_chunk_offsets(path: Path) -> list[tuple[int, bytes, bytes]]:
    """(offset of the data in the file, id, data) of each chunk of a RIFF WAVE file, as
    :func:`_wav_chunks` reads them. OSError if it cannot be read."""
    with open(path, "rb") as f:
        f.seek(12)
        end = path.stat().st_size
        chunks = []
        while f.tell() + 8 <= end:
            header = f.read(8)
            cid, size = header[:4], int.from_bytes(header[4:], "little")
            start = f.tell()
            size = min(size, end - start)
            if cid != b"data" and size <= _WAV_CHUNK_MAX_BYTES:
                chunks.append((start, cid, f.read(size)))
            elif cid == b"data":
                chunks.append((start, cid, b""))
            f.seek(start + size + size % 2)
        return chunks


def _is_riff_wave(path: Path) -> bool:
    """Whether ``path`` starts as a RIFF WAVE file (not RF64)."""
    try:
        with open(path, "rb") as f:
            head = f.read(12)
    except OSError:
        return False
    return len(head) == 12 and head[:4] == b"RIFF" and head[8:] == b"WAVE"


def carry_metadata(source: PathLike, target: PathLike) -> None:
    """Everything ``source`` says about its content, into ``target`` (a file made from it):
    between WAV files their chunks (:func:`copy_wav_chunks`), otherwise the tags and pictures
    (:func:`copy_tags`) and, into a WAV, the speakers (:func:`keep_speakers`)."""
    if not copy_wav_chunks(source, target):
        copy_tags(source, target)
        keep_speakers(source, target)
