"""Tags and cover pictures: read from any format, written in each format's own way, and carried
into a marked copy (``provenance.core.io.tags``, ``embed_file``)."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import av
import numpy as np
import pytest
import soundfile as sf

from provenance.core.io import Picture, Tags, copy_tags, copy_wav_chunks, read_audio, read_tags, write_audio, write_tags
from provenance.watermark import detect, new_key
from provenance.watermark.files import embed_file
from tests.conftest import make_test_audio
from tests.test_mark import make_signal

PAYLOAD = "0123456789abcdef"


def png(color: tuple[int, int, int] = (200, 30, 30), size: int = 8) -> bytes:
    """A real PNG image of one colour."""
    raw = b"".join(b"\x00" + bytes(color) * size for _ in range(size))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


TEXT = {"title": "Rain on a tin roof", "artist": "Field Recorder", "album": "Weather", "album_artist": "Various",
        "genre": "Ambient", "track": "3/12", "date": "2024", "comment": "recorded at dawn", "mood": "calm"}
COVER = Picture(png(), "image/png", 3, "front")


@pytest.mark.parametrize("ext", ["flac", "ogg", "opus", "mp3", "m4a", "wav", "aiff"])
def test_tags_and_a_cover_round_trip_in_every_tagged_format(tmp_path, ext):
    path = tmp_path / f"song.{ext}"
    write_audio(path, make_test_audio(48_000, 2, 1.0))
    assert write_tags(path, Tags(TEXT, (COVER,)))
    got = read_tags(path)
    assert got.text.items() >= TEXT.items(), got.text
    assert [(p.data, p.mime, p.kind) for p in got.pictures] == [(COVER.data, COVER.mime, COVER.kind)]


@pytest.mark.parametrize("ext", ["au", "aac", "mkv"])
def test_formats_without_tags_say_so(tmp_path, ext):
    path = tmp_path / f"song.{ext}"
    write_audio(path, make_test_audio(48_000, 2, 1.0))
    before = path.read_bytes()
    assert write_tags(path, Tags(TEXT)) is False
    assert path.read_bytes() == before


def _libsndfile_tagged(path: Path, seconds: float = 6.0) -> Path:
    """Tags written by libsndfile (WAV INFO chunk, FLAC/Ogg Vorbis comments)."""
    audio = make_signal(seconds=seconds)
    with sf.SoundFile(str(path), "w", audio.sample_rate, audio.channels,
                      subtype="VORBIS" if path.suffix == ".ogg" else "PCM_16") as f:
        f.title, f.artist, f.album, f.genre = TEXT["title"], TEXT["artist"], TEXT["album"], TEXT["genre"]
        f.write(audio.samples.T)
    return path


def _ffmpeg_tagged(path: Path, seconds: float = 6.0) -> Path:
    """Tags and a cover written by FFmpeg's muxer (ID3v2 with APIC, or iTunes atoms with covr)."""
    audio = make_signal(seconds=seconds)
    with av.open(str(path), "w", format="mp3" if path.suffix == ".mp3" else "ipod") as out:
        out.metadata.update({"title": TEXT["title"], "artist": TEXT["artist"], "album": TEXT["album"],
                             "genre": TEXT["genre"], "track": TEXT["track"]})
        stream = out.add_stream("libmp3lame" if path.suffix == ".mp3" else "aac", rate=audio.sample_rate,
                                layout="stereo")
        x = audio.samples
        for j in range(0, x.shape[1], 1152):
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(x[:, j:j + 1152]), format="fltp", layout="stereo")
            frame.sample_rate, frame.pts = audio.sample_rate, j
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


@pytest.mark.parametrize(
    "source, out",
    [("wav", "flac"), ("flac", "flac"), ("ogg", "mp3"), ("mp3", "mp3"), ("mp3", "m4a"), ("m4a", "m4a"),
     ("m4a", "opus"), ("flac", "wav")],
)
def test_a_marked_copy_keeps_the_tags_and_cover_but_not_the_old_encoding(tmp_path, source, out):
    src = tmp_path / f"in.{source}"
    (_ffmpeg_tagged if source in ("mp3", "m4a") else _libsndfile_tagged)(src)
    if source in ("mp3", "flac", "m4a"):
        # a cover, added by mutagen to a file FFmpeg or libsndfile wrote
        assert write_tags(src, Tags({}, (COVER,)))
    before = read_tags(src)
    assert before.text["title"] == TEXT["title"]
    key = new_key()
    dst = embed_file(src, tmp_path / f"out.{out}", key, PAYLOAD)
    after = read_tags(dst)
    for name in ("title", "artist", "album", "genre") + (("track",) if source in ("mp3", "m4a") else ()):
        assert after.text.get(name) == before.text[name], (name, after.text)
    assert [p.data for p in after.pictures] == [p.data for p in before.pictures]
    assert detect(read_audio(dst), key).payload == PAYLOAD


@pytest.mark.parametrize("ext", ["mp3", "m4a", "flac", "ogg"])
def test_between_files_of_one_tag_system_every_tag_is_kept_as_it_is(tmp_path, ext):
    """Through FFmpeg's generic names a second artist was lost, lyrics, BPM and ISRC became
    user-defined text frames that players do not show, ratings and URLs were dropped, keys were
    lower-cased and a Vorbis COMMENT became DESCRIPTION."""
    import mutagen
    from mutagen import id3
    from mutagen.mp4 import MP4FreeForm

    src = tmp_path / f"in.{ext}"
    (_ffmpeg_tagged if ext in ("mp3", "m4a") else _libsndfile_tagged)(src)
    f = mutagen.File(str(src))
    if ext == "mp3":
        f.tags.setall("TPE1", [id3.TPE1(encoding=3, text=["A1", "A2"])])
        f.tags.add(id3.USLT(encoding=3, lang="eng", desc="", text="la la"))
        f.tags.add(id3.TBPM(encoding=3, text=["120"]))
        f.tags.add(id3.TXXX(encoding=3, desc="MyKey", text=["v"]))
        f.tags.add(id3.POPM(email="x@y", rating=196, count=3))
        f.tags.add(id3.WXXX(encoding=3, desc="site", url="https://example.org/"))
    elif ext == "m4a":
        f.tags["\xa9ART"] = ["B1", "B2"]
        f.tags["tmpo"] = [120]
        f.tags["cpil"] = True
        f.tags["----:com.apple.iTunes:ISRC"] = [MP4FreeForm(b"USRC17607839")]
    else:
        f.tags["ARTIST"] = ["One", "Two"]
        f.tags["COMMENT"] = ["hello"]
        f.tags["MY_KEY"] = ["v"]
    f.save()
    before = mutagen.File(str(src)).tags
    dst = embed_file(src, tmp_path / f"out.{ext}", new_key(), PAYLOAD)
    after = mutagen.File(str(dst)).tags
    if ext == "mp3":
        for key in ("TPE1", "USLT::eng", "TBPM", "TXXX:MyKey", "POPM:x@y", "WXXX:site", "TIT2"):
            assert after[key] == before[key], key
        assert after["TPE1"].text == ["A1", "A2"]
    elif ext == "m4a":
        for key in ("\xa9ART", "tmpo", "cpil", "----:com.apple.iTunes:ISRC", "\xa9nam"):
            assert after[key] == before[key], key
    else:
        assert after["ARTIST"] == ["One", "Two"] and after["COMMENT"] == ["hello"] and after["MY_KEY"] == ["v"]
        assert "DESCRIPTION" not in after


@pytest.mark.parametrize("source, out", [("mp3", "flac"), ("m4a", "mp3"), ("m4a", "ogg"), ("flac", "m4a"),
                                         ("ogg", "mp3")])
def test_every_value_of_a_multi_valued_tag_crosses_tag_systems(tmp_path, source, out):
    """Across tag systems only the first artist of an MP3 or M4A survived (FFmpeg reads one value
    of an ID3 frame or MP4 atom), and a Vorbis source's artists arrived joined into one "A;B"."""
    import mutagen
    from mutagen import id3

    src = tmp_path / f"in.{source}"
    (_ffmpeg_tagged if source in ("mp3", "m4a") else _libsndfile_tagged)(src)
    f = mutagen.File(str(src))
    if source == "mp3":
        f.tags.setall("TPE1", [id3.TPE1(encoding=3, text=["One", "Two"])])
    elif source == "m4a":
        f.tags["\xa9ART"] = ["One", "Two"]
    else:
        f.tags["ARTIST"] = ["One", "Two"]
    f.save()
    assert read_tags(src).text["artist"] == ("One", "Two")
    dst = embed_file(src, tmp_path / f"out.{out}", new_key(), PAYLOAD)
    tags = mutagen.File(str(dst)).tags
    got = {"mp3": lambda: tags["TPE1"].text, "m4a": lambda: tags["\xa9ART"]}.get(out, lambda: tags["ARTIST"])()
    assert list(got) == ["One", "Two"]
    assert read_tags(dst).text["title"] == TEXT["title"]  # single values stay single


@pytest.mark.parametrize("source, out", [("flac", "mp3"), ("flac", "m4a"), ("mp3", "flac"), ("mp3", "m4a")])
def test_bpm_isrc_and_lyrics_land_in_the_target_formats_own_fields(tmp_path, source, out):
    """Across formats they became user-defined text (TXXX:bpm, a freeform atom), which players
    do not show as BPM, ISRC or lyrics."""
    import mutagen
    from mutagen import id3

    src = tmp_path / f"in.{source}"
    (_ffmpeg_tagged if source == "mp3" else _libsndfile_tagged)(src)
    f = mutagen.File(str(src))
    if source == "mp3":
        f.tags.add(id3.TBPM(encoding=3, text=["98"]))
        f.tags.add(id3.TSRC(encoding=3, text=["USRC17607839"]))
        f.tags.add(id3.USLT(encoding=3, lang="eng", desc="", text="la la"))
    else:
        f.tags["BPM"], f.tags["ISRC"], f.tags["LYRICS"] = ["98"], ["USRC17607839"], ["la la"]
    f.save()
    tags = mutagen.File(str(embed_file(src, tmp_path / f"out.{out}", new_key(), PAYLOAD))).tags
    if out == "mp3":
        assert (tags["TBPM"].text, tags["TSRC"].text, tags["USLT::eng"].text) == (["98"], ["USRC17607839"], "la la")
    elif out == "m4a":
        assert tags["tmpo"] == [98] and tags["\xa9lyr"] == ["la la"]
        assert tags["----:com.apple.iTunes:ISRC"] == [b"USRC17607839"]
    else:
        assert (tags["BPM"], tags["ISRC"], tags["LYRICS"]) == (["98"], ["USRC17607839"], ["la la"])


def test_what_described_the_old_encoding_is_not_carried(tmp_path):
    """An iTunes encoder's gapless padding (iTunSMPB) and the encoder's name would describe the
    old file, not the re-encoded copy (its padding would cut the new one's first samples)."""
    from mutagen.mp4 import MP4, MP4FreeForm

    src = _ffmpeg_tagged(tmp_path / "in.m4a")
    tagged = MP4(str(src))
    tagged["----:com.apple.iTunes:iTunSMPB"] = [MP4FreeForm(b" 00000000 00000840 000001C0 0000000000046E00")]
    tagged["\xa9too"] = ["iTunes 12.9"]
    tagged.save()
    with av.open(str(src)) as c:
        assert {"iTunSMPB", "encoder"} <= set(c.metadata)  # FFmpeg reads them
    assert not {"itunsmpb", "encoder"} & set(read_tags(src).text)
    dst = embed_file(src, tmp_path / "out.m4a", new_key(), PAYLOAD)
    with av.open(str(dst)) as c:
        assert "iTunSMPB" not in c.metadata and c.metadata.get("encoder") != "iTunes 12.9"
        assert c.metadata["title"] == TEXT["title"]
    # Within ID3 a comment's key holds its language (COMM:iTunSMPB:eng): an MP3 marked into an
    # MP3 kept the old encoding's delay and length, and its Sound Check, byte for byte.
    from mutagen.id3 import COMM, ID3

    mp3 = _ffmpeg_tagged(tmp_path / "in.mp3")
    tags = ID3(str(mp3))
    for desc, text in (("iTunSMPB", " 00000000 00000840 000001CC 0000000000081398"), ("iTunNORM", " 000002A8"),
                       ("", "a plain comment"), ("short", "a described comment")):
        tags.add(COMM(encoding=3, lang="eng", desc=desc, text=[text]))
    tags.save()
    got = ID3(str(embed_file(mp3, tmp_path / "out.mp3", new_key(), PAYLOAD)))
    assert sorted(f.desc for f in got.getall("COMM")) == ["", "short"], got.getall("COMM")


def test_odd_keys_from_other_formats_become_valid_vorbis_names(tmp_path):
    path = tmp_path / "song.flac"
    write_audio(path, make_test_audio(48_000, 2, 1.0))
    assert write_tags(path, Tags({"rating=5": "x", "caf\u00e9": "y"}))
    got = read_tags(path).text
    assert got.get("rating_5") == "x" and got.get("caf_") == "y", got


def test_copy_tags_skips_a_source_ffmpeg_cannot_read(tmp_path):
    target = tmp_path / "out.flac"
    write_audio(target, make_test_audio(48_000, 2, 1.0))
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"\x00" * 64)
    assert copy_tags(junk, target) is False


def _chunk(cid: bytes, data: bytes) -> bytes:
    return cid + len(data).to_bytes(4, "little") + data + b"\0" * (len(data) % 2)


def _bext(time_reference: int) -> bytes:
    """A Broadcast WAV ``bext`` chunk (EBU Tech 3285, version 1)."""
    fields = (b"Rain, take 3".ljust(256, b"\0") + b"FoleyRig".ljust(32, b"\0") + b"REF0042".ljust(32, b"\0")
              + b"2024-05-01" + b"06:30:00" + time_reference.to_bytes(8, "little") + (1).to_bytes(2, "little")
              + b"\0" * 64 + b"\0" * 190)
    return fields + b"A=PCM,F=48000,W=16,M=stereo\r\n"


def _broadcast_wav(path: Path, seconds: float = 6.0) -> tuple[Path, list[bytes]]:
    """A WAV written by libsndfile with Broadcast WAV, iXML and cue chunks added after its data."""
    write_audio(path, make_signal(seconds=seconds))
    extra = [_chunk(b"bext", _bext(48_000 * 3600 * 6 + 123)),
             _chunk(b"iXML", b"<?xml version=\"1.0\"?><BWFXML><SCENE>12A</SCENE><TAKE>3</TAKE></BWFXML>"),
             _chunk(b"cue ", (1).to_bytes(4, "little") + (1).to_bytes(4, "little") + (96_000).to_bytes(4, "little")
                    + b"data" + (0).to_bytes(4, "little") * 2 + (96_000).to_bytes(4, "little"))]
    data = path.read_bytes() + b"".join(extra)
    path.write_bytes(data[:4] + (len(data) - 8).to_bytes(4, "little") + data[8:])
    return path, extra


def test_a_broadcast_wav_keeps_its_bext_ixml_and_cue_chunks_byte_for_byte(tmp_path):
    """A production sound file's origin, time code (samples since midnight), scene and take, and
    its cue points: the marked copy has every one of those chunks as it was."""
    src, extra = _broadcast_wav(tmp_path / "take3.wav")
    with av.open(str(src)) as c:
        assert c.metadata["time_reference"] == str(48_000 * 3600 * 6 + 123)  # FFmpeg reads the bext
    key = new_key()
    dst = embed_file(src, tmp_path / "take3_marked.wav", key, PAYLOAD)
    data = dst.read_bytes()
    for chunk in extra:
        assert data.count(chunk) == 1, chunk[:4]
    assert int.from_bytes(data[4:8], "little") == len(data) - 8
    with av.open(str(dst)) as c:
        assert c.metadata["time_reference"] == str(48_000 * 3600 * 6 + 123)
        assert c.metadata["encoded_by"] == "FoleyRig"  # FFmpeg names the originator so
    marked = read_audio(dst)
    assert marked.frames == read_audio(src).frames
    assert detect(marked, key).payload == PAYLOAD


def _fmt_mask(path: Path) -> int:
    data = path.read_bytes()
    at = data.index(b"fmt ") + 8
    assert int.from_bytes(data[at : at + 2], "little") == 0xFFFE  # WAVE_FORMAT_EXTENSIBLE
    return int.from_bytes(data[at + 20 : at + 24], "little")


@pytest.mark.parametrize("channels, mask", [(8, 0x63F), (6, 0x60F)])
def test_a_wav_keeps_its_speaker_layout(tmp_path, channels, mask):
    """libsndfile writes its own default mask for the channel count: a 7.1 file's side pair
    (0x63F) became the front-of-centre pair (0xFF), a 5.1 with side surrounds (0x60F) a 5.1
    with back surrounds (0x3F): the same samples, sent to other speakers."""
    src = tmp_path / "surround.wav"
    sig = make_signal(seconds=6.0)
    sf.write(src, np.repeat(sig.samples[:1], channels, axis=0).T, sig.sample_rate, format="WAVEX", subtype="PCM_16")
    data = bytearray(src.read_bytes())
    at = data.index(b"fmt ") + 8
    data[at + 20 : at + 24] = mask.to_bytes(4, "little")
    src.write_bytes(bytes(data))
    dst = embed_file(src, tmp_path / "marked.wav", new_key(), PAYLOAD)
    assert _fmt_mask(dst) == mask


@pytest.mark.parametrize("layout, mask", [("7.1", 0x63F), ("5.1(side)", 0x60F), ("7.1(wide)", 0xFF)])
def test_a_surround_flac_keeps_its_speakers_in_a_wav(tmp_path, layout, mask):
    """A 7.1 FLAC stem marked into a WAV came out 7.1(wide) (0xFF): its side surrounds labelled
    as the front-of-centre pair. The WAV now gets the mask of the FLAC's layout."""
    channels = av.AudioLayout(layout).nb_channels
    sig = make_signal(seconds=6.0)
    samples = np.repeat(sig.samples[:1], channels, axis=0) * np.linspace(0.2, 1.0, channels)[:, None]
    src = tmp_path / "stem.flac"
    with av.open(str(src), "w") as out:
        stream = out.add_stream("flac", rate=sig.sample_rate, layout=layout)
        frame = av.AudioFrame.from_ndarray((samples * 32767).astype(np.int16).T.reshape(1, -1), format="s16",
                                           layout=layout)
        frame.sample_rate = sig.sample_rate
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            out.mux(packet)
    dst = embed_file(src, tmp_path / "marked.wav", new_key(), PAYLOAD)
    assert _fmt_mask(dst) == mask
    with av.open(str(dst)) as c:
        assert c.streams.audio[0].codec_context.layout.name == layout
    # every channel stays where it was (the mask relabels, it does not move samples)
    levels = np.sqrt(np.mean(np.square(read_audio(dst).samples), axis=1))
    assert np.all(np.diff(levels) > 0), levels


def test_wav_chunks_go_only_between_riff_wave_files(tmp_path):
    src, _ = _broadcast_wav(tmp_path / "take.wav", seconds=1.0)
    flac = tmp_path / "take.flac"
    write_audio(flac, make_test_audio(48_000, 2, 1.0))
    before = flac.read_bytes()
    assert copy_wav_chunks(src, flac) is False and flac.read_bytes() == before
    assert copy_wav_chunks(flac, src) is False
