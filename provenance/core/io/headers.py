"""What a media file's first bytes say: its format, and how much audio data its header declares.

libsndfile and FFmpeg read what is there of a file cut short without a word: an AIFF, CAF,
W64, RF64 or AU file cut to 60 % of its bytes was marked and signed as a 9 s file where its
header declared 15 s. These formats and WAV all state the size of their audio data chunk up
front; comparing it with the bytes after the chunk's start tells a file cut short (a download
or copy interrupted) from a whole one.
"""

from __future__ import annotations

import struct
from pathlib import Path

_SCAN_BYTES = 1 << 20
"""How far into a file the data chunk is looked for (metadata chunks before it are small)."""

# Wave64's GUIDs begin with the four-character codes of their RIFF counterparts.
_W64_RIFF = b"riff\x2e\x91\xcf\x11\xa5\xd6\x28\xdb\x04\xc1\x00\x00"
_W64_DATA = b"data\xf3\xac\xd3\x11\x8c\xd1\x00\xc0\x4f\x8e\xdb\x8a"
_WAV_UNKNOWN_LENGTH = 0xFFFFFF00
"""A WAV data size of 0, or of this or more, is a stream's placeholder (length unknown)."""

# The formats, as words for a message; those with a declared data length first.
_WAV, _RF64, _AIFF, _CAF, _AU, _W64 = "a WAV", "an RF64 WAV", "an AIFF", "a CAF", "an AU", "a Wave64"
_DECLARING = frozenset({_WAV, _RF64, _AIFF, _CAF, _AU, _W64})
_SIGNATURES = ((b"fLaC", "a FLAC"), (b"OggS", "an Ogg"), (b"ID3", "an MP3"), (b"caff", _CAF), (b".snd", _AU),
               (_W64_RIFF, _W64))
"""Signatures at a file's start, and the format each names (:func:`_kind`)."""


def declared_data_shortfall(path: Path) -> tuple[int, int] | None:
    """``(declared, held)`` bytes of audio data when ``path`` is a WAV, AIFF/AIFC, CAF, Wave64,
    RF64/BW64 or AU file whose header declares more than the file holds after the data chunk's
    start; None for a whole file, a stream of unknown length, or any other format."""
    with open(path, "rb") as fh:
        if _kind(fh.read(16)) not in _DECLARING:
            return None
        size = fh.seek(0, 2)
        fh.seek(0)
        head = fh.read(_SCAN_BYTES)
    found = _data_chunk(head)
    if found is None:
        return None
    start, declared = found
    held = max(0, size - start)
    return (declared, held) if declared > held else None


def unknown_length_before_chunks(path: Path) -> int | None:
    """The data size field (0xFFFFFF00 and above: a stream's "length unknown") of a WAV whose
    audio is followed by chunks (a C2PA manifest, LIST tags, ``bext``...), else None.

    Readers take a "length unknown" data chunk to run to the end of the file, as a stream writes
    it; chunks after it would be read as samples (a signed WAV's manifest as a burst of full-scale
    noise). Such a header was damaged: a writer that adds chunks after the audio knows its length.
    The chunks are told by a chain of known chunk ids and sizes that ends exactly at the end of
    the file (within its last 64 MiB)."""
    with open(path, "rb") as fh:
        if _kind(fh.read(16)) != _WAV:
            return None
        fh.seek(0)
        found = _walk(fh.read(_SCAN_BYTES), 12, b"data", "<I", header=8, align=2)
        if found is None or found[1] < _WAV_UNKNOWN_LENGTH:
            return None
        size = fh.seek(0, 2)
        start = max(found[0], size - _TAIL_SCAN_BYTES)
        fh.seek(start)
        tail = fh.read()
    for cid in _TRAILING_CHUNKS:
        at = tail.find(cid)
        while at >= 0:
            if (start + at - found[0]) % 2 == 0 and _chains_to_end(tail, at):
                return found[1]
            at = tail.find(cid, at + 1)
    return None


_TRAILING_CHUNKS = (b"C2PA", b"LIST", b"id3 ", b"ID3 ", b"bext", b"iXML", b"cue ", b"smpl", b"inst", b"JUNK",
                    b"junk", b"PAD ", b"PEAK", b"acid", b"cart", b"_PMX", b"axml", b"DISP", b"umid")
"""Chunks that writers put after a WAV's audio."""
_TAIL_SCAN_BYTES = 64 << 20


def _chains_to_end(tail: bytes, at: int) -> bool:
    """Whether known chunks (:data:`_TRAILING_CHUNKS`), one after another from ``at``, end
    exactly at the end of ``tail`` (a chunk's odd size padded, or not, at the very end)."""
    while at + 8 <= len(tail) and tail[at : at + 4] in _TRAILING_CHUNKS:
        size = int.from_bytes(tail[at + 4 : at + 8], "little")
        at += 8 + size
        if at == len(tail):
            return True
        at += size % 2
    return at == len(tail)


def is_rf64(path: Path) -> bool:
    """Whether ``path`` is an RF64 or BW64 file (a WAV over 4 GiB, or one written so): named
    ``.wav``, yet c2pa's WAV parser, which expects ``RIFF``, cannot embed a manifest into it."""
    return kind_by_signature(path) == _RF64


def kind_by_signature(path: Path) -> str | None:
    """The media format whose signature the first bytes of ``path`` hold, as words for a
    message (``an MP4 or MOV``, ``a WAV``, ``an RF64 WAV`` ...); None for none (or unreadable)."""
    try:
        with open(path, "rb") as fh:
            return _kind(fh.read(16))
    except OSError:
        return None


def _kind(head: bytes) -> str | None:
    """The format whose signature ``head`` (a file's first 16 bytes or more) starts with."""
    if head[4:8] == b"ftyp":
        return "an MP4 or MOV"
    if head[:4] == b"\x1aE\xdf\xa3":
        return "a Matroska or WebM"
    if head[:4] == b"RIFF" and head[8:12] in (b"WAVE", b"AVI "):
        return _WAV if head[8:12] == b"WAVE" else "an AVI"
    if head[:4] in (b"RF64", b"BW64") and head[8:12] == b"WAVE":
        return _RF64
    if head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
        return _AIFF
    return next((kind for magic, kind in _SIGNATURES if head.startswith(magic)), None)


def _data_chunk(head: bytes) -> tuple[int, int] | None:
    """(offset of the audio data, its declared size in bytes) from a file's first bytes."""
    kind = _kind(head)
    if kind == _WAV:
        found = _walk(head, 12, b"data", "<I", header=8, align=2)
        return None if found is None or not 0 < found[1] < _WAV_UNKNOWN_LENGTH else found
    if kind == _AU and len(head) >= 12:  # offset and size in a fixed header
        offset, declared = struct.unpack(">II", head[4:12])
        return None if declared == 0xFFFFFFFF else (offset, declared)
    if kind == _AIFF:
        return _walk(head, 12, b"SSND", ">I", header=8, align=2)
    if kind == _CAF:
        found = _walk(head, 8, b"data", ">q", header=12, align=1)
        return None if found is None or found[1] < 0 else found  # -1: length unknown (a stream)
    if kind == _W64:
        found = _walk(head, 40, _W64_DATA, "<Q", header=24, align=8, id_len=16)
        return None if found is None else (found[0], found[1] - 24)  # a W64 size counts its header
    if kind == _RF64 and head[12:16] == b"ds64" and len(head) >= 36:
        declared = struct.unpack("<Q", head[28:36])[0]  # ds64: RIFF size, then data size
        found = _walk(head, 12, b"data", "<I", header=8, align=2)
        return None if found is None else (found[0], declared)
    return None


def _walk(head: bytes, pos: int, wanted: bytes, size_fmt: str, *, header: int, align: int,
          id_len: int = 4) -> tuple[int, int] | None:
    """Walk the chunks of ``head`` from ``pos`` (each: an id of ``id_len`` bytes, a size packed as
    ``size_fmt``, the body padded to ``align``) to ``wanted``: (offset of its body, its size).
    ``header`` is the length of a chunk's id and size; an AIFF ``SSND`` body starts with 8 bytes
    of offset and block size, which count in its size like the samples."""
    size_len = struct.calcsize(size_fmt)
    while pos + id_len + size_len <= len(head):
        chunk_id = head[pos : pos + id_len]
        (size,) = struct.unpack(size_fmt, head[pos + id_len : pos + id_len + size_len])
        if chunk_id == wanted:
            return pos + header, size
        if size < 0:
            return None
        body = size - header if id_len == 16 else size  # Wave64 sizes include the chunk's header
        pos += header + body + (-body % align if align > 1 else 0)
    return None
