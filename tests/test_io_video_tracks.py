"""Rewriting a video's sound loses nothing else: every audio track (language, title, default
flag), the subtitles, attachments, chapters and title are kept (``provenance.core.io``)."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from tests._multitrack import CHAPTERS, Track, describe, multitrack_video, subtitle_packets
from tests._shared import audio_with_a_timestamp_jump
from tests.conftest import make_test_audio
from provenance.core import io
from provenance.core.audio import Audio
from provenance.core.errors import FormatError, InputError

RATE = 48_000
SECONDS = 3.0


def _tracks() -> list[Track]:
    # seeds 0 and 1 give the two tracks different tone phases; the tracks differ by a factor
    # of level, and by which channel tone sits where (the second track is the first reversed)
    first = make_test_audio(RATE, 2, SECONDS, seed=0, level=0.4)
    second = Audio(np.ascontiguousarray(make_test_audio(RATE, 2, SECONDS, seed=1, level=0.1).samples[::-1]), RATE)
    return [Track(first, "eng", "English", True), Track(second, "fra", "Commentaire", False)]


def _dominant_hz(x: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(x.size)))
    return float(np.fft.rfftfreq(x.size, 1 / RATE)[np.argmax(spectrum)])


def _video_packets(path: Path) -> list[bytes]:
    with av.open(str(path)) as c:
        return [bytes(p) for p in c.demux(c.streams.video) if p.size]


@pytest.fixture(params=[".mkv", ".mp4"])
def film(request, tmp_path) -> Path:
    return multitrack_video(tmp_path / f"film{request.param}", _tracks(), seconds=SECONDS)


def test_audio_tracks_are_counted_and_read_one_by_one(film):
    assert io.audio_track_count(film) == 2
    assert io.main_audio_track(film) == 0
    for track, source in enumerate(_tracks()):
        info = io.audio_info(film, track=track)
        assert (info.sample_rate, info.channels) == (RATE, 2)
        blocks = list(io.iter_audio_blocks(film, RATE, track=track))
        samples = np.concatenate([b.samples for b in blocks], axis=1)
        for channel in range(2):
            expected = _dominant_hz(source.audio.samples[channel])
            assert abs(_dominant_hz(samples[channel]) - expected) < 5
    with pytest.raises(InputError, match="has 2 audio track"):
        io.audio_info(film, track=2)
    with pytest.raises(InputError, match="track is a number"):
        io.audio_info(film, track="1")


def test_rewriting_each_audio_track_keeps_everything_else(film, tmp_path):
    out = tmp_path / f"out{film.suffix}"
    sources = [io.iter_audio_blocks(film, RATE // 2, track=t) for t in range(2)]
    halved = [(Audio(b.samples * 0.5, b.sample_rate) for b in blocks) for blocks in sources]
    io.rewrite_audio_tracks_stream(film, halved, out)

    assert describe(out) == describe(film)
    assert describe(out)["chapters"] == [(t, a, b) for t, a, b in CHAPTERS]
    assert _video_packets(out) == _video_packets(film)
    assert subtitle_packets(out) == subtitle_packets(film)
    for track in range(2):
        before = np.concatenate([b.samples for b in io.iter_audio_blocks(film, RATE, track=track)], axis=1)
        after = np.concatenate([b.samples for b in io.iter_audio_blocks(out, RATE, track=track)], axis=1)
        ratio = np.sqrt(np.mean(after**2) / np.mean(before**2))
        assert ratio == pytest.approx(0.5, abs=0.05), f"track {track} is not its own source, halved"


def test_a_matroska_rewrite_keeps_subtitles_and_attachments(tmp_path):
    film = multitrack_video(tmp_path / "film.mkv", _tracks(), seconds=SECONDS)
    out = tmp_path / "out.mkv"
    io.rewrite_audio_tracks_stream(film, [io.iter_audio_blocks(film, RATE, track=t) for t in range(2)], out)
    kinds = [s["type"] for s in describe(out)["streams"]]
    assert kinds == ["video", "audio", "audio", "subtitle", "attachment"]
    assert describe(out)["streams"][3]["language"] == "deu"
    assert [text for _, text in subtitle_packets(out)] == [b"Guten Tag", b"Auf Wiedersehen"]
    with av.open(str(out)) as c:
        assert c.streams[4].metadata["filename"] == "notes.txt"


def test_a_new_soundtrack_replaces_every_audio_track_and_keeps_the_rest(tmp_path):
    film = multitrack_video(tmp_path / "film.mkv", _tracks(), seconds=SECONDS)
    out = tmp_path / "scored.mkv"
    io.replace_audio_track(film, make_test_audio(RATE, 2, SECONDS, seed=5), out, start_s=0.0)
    before, after = describe(film), describe(out)
    assert [s["type"] for s in after["streams"]] == ["video", "audio", "subtitle", "attachment"]
    new = after["streams"][1]
    assert (new["language"], new["title"], new["default"]) == (None, None, True)
    assert after["title"] == before["title"] == "A film"
    assert after["chapters"] == before["chapters"]
    assert subtitle_packets(out) == subtitle_packets(film)


def test_a_video_without_sound_gets_its_soundtrack_after_the_picture(tmp_path):
    film = multitrack_video(tmp_path / "silent.mkv", [], seconds=SECONDS)
    out = tmp_path / "scored.mkv"
    io.replace_audio_track(film, make_test_audio(RATE, 2, SECONDS), out)
    assert [s["type"] for s in describe(out)["streams"]] == ["video", "audio", "subtitle", "attachment"]


def test_text_subtitles_are_converted_where_the_container_needs_another_text_format(tmp_path):
    """SubRip cannot go into MP4 as it is: it is written as MP4 text, each cue's words and times
    kept (it was refused, and before that dropped)."""
    film = multitrack_video(tmp_path / "film.mkv", _tracks(), seconds=SECONDS)
    out = tmp_path / "out.mp4"
    io.rewrite_audio_tracks_stream(film, [io.iter_audio_blocks(film, RATE, track=t) for t in range(2)], out)
    subtitle = describe(out)["streams"][3]
    assert (subtitle["type"], subtitle["codec"], subtitle["language"]) == ("subtitle", "mov_text", "deu")
    with av.open(str(out)) as c:
        cues = [(round(float(p.pts * p.time_base), 3), round(float(p.duration * p.time_base), 3), bytes(p)[2:])
                for p in c.demux(c.streams.subtitles[0]) if p.size > 2]  # 2 bytes: a gap between cues
    assert cues == [(0.5, 1.0, b"Guten Tag"), (2.0, 0.8, b"Auf Wiedersehen")]
    assert describe(out)["chapters"] == describe(film)["chapters"]


def test_subtitles_the_output_cannot_hold_or_convert_are_named_before_writing(tmp_path, monkeypatch):
    """Bitmap subtitles (DVD, Blu-ray) cannot be converted as text: refused, naming the container
    that holds them. (Shown with SubRip and MP4's text format taken away: FFmpeg cannot make a
    bitmap subtitle stream from Python.)"""
    from provenance.core.io import video

    monkeypatch.setattr(video, "_TEXT_SUBTITLE_ENCODERS", {})
    film = multitrack_video(tmp_path / "film.mkv", _tracks(), seconds=SECONDS)
    out = tmp_path / "out.mp4"
    with pytest.raises(FormatError, match=r"cannot hold film.mkv's srt subtitles.*write \.mkv instead"):
        io.rewrite_audio_tracks_stream(film, [io.iter_audio_blocks(film, RATE, track=t) for t in range(2)], out)
    with pytest.raises(FormatError, match="srt subtitles"):
        io.check_video_output(film, out)
    assert list(tmp_path.glob("out*")) == []


def test_rewrite_errors_name_the_track_and_leave_nothing(tmp_path):
    film = multitrack_video(tmp_path / "film.mkv", _tracks(), seconds=SECONDS)
    out = tmp_path / "out.mkv"
    with pytest.raises(InputError, match="has 2 audio track.*1 were given"):
        io.rewrite_audio_tracks_stream(film, [io.iter_audio_blocks(film, RATE)], out)
    bad = make_test_audio(RATE, 2, SECONDS)
    bad.samples[1, RATE] = np.nan
    with pytest.raises(InputError, match=r"audio track 1.*NaN"):
        io.rewrite_audio_tracks_stream(film, [[make_test_audio(RATE, 2, SECONDS)], [bad]], out)
    with pytest.raises(InputError, match=r"audio track 0.*2 channel"):
        io.rewrite_audio_tracks_stream(film, [[make_test_audio(RATE, 1, SECONDS)], [bad]], out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["film.mkv", "film.srt"]


@pytest.mark.parametrize("suffix, codec, out_suffix, expected", [
    (".mov", "pcm_s24le", ".mov", "pcm_s24le"), (".mp4", "pcm_s16le", ".mp4", "pcm_s16le"),
    (".mkv", "flac", ".mkv", "flac"), (".mp4", "flac", ".mp4", "flac"), (".mov", "alac", ".mov", "alac"),
    (".mkv", "alac", ".mkv", "alac"), (".mkv", "flac", ".mov", "alac"),  # MOV holds no FLAC
])
def test_a_lossless_track_stays_lossless(tmp_path, suffix, codec, out_suffix, expected):
    """A production's PCM or FLAC track was re-encoded as AAC at 192 kbps: now PCM is written as
    PCM of its depth, FLAC and ALAC in their codec at 24 bits (they were written as PCM, several
    times larger), sample for sample what was given (to the 24- or 16-bit step)."""
    source = Track(make_test_audio(RATE, 2, SECONDS, seed=3, level=0.5), "eng", "Production", True, codec=codec)
    film = multitrack_video(tmp_path / f"film{suffix}", [source], seconds=SECONDS)
    given = np.concatenate([b.samples for b in io.iter_audio_blocks(film, RATE)], axis=1) * 0.5
    out = tmp_path / f"out{out_suffix}"
    io.rewrite_audio_tracks_stream(film, [[Audio(given, RATE)]], out)
    with av.open(str(out)) as c:
        assert c.streams.audio[0].codec_context.name == expected
    got = io.read_audio(out).samples
    step = 2.0 ** -(15 if expected == "pcm_s16le" else 23)
    assert got.shape == given.shape
    assert np.max(np.abs(got - given)) <= step / 2 + 1e-9


def test_lossy_tracks_keep_their_codec_and_bitrate(tmp_path):
    """MP3 stays MP3 at its own 320 kbps (above the 192 kbps default); Opus stays Opus; a codec
    the container cannot hold gets its default."""
    tracks = [Track(make_test_audio(RATE, 2, SECONDS, seed=4), "eng", "Music", True, codec="libmp3lame", kbps=320),
              Track(make_test_audio(RATE, 2, SECONDS, seed=5), "fra", "Dub", False, codec="libopus", kbps=64)]
    film = multitrack_video(tmp_path / "film.mkv", tracks, seconds=SECONDS)
    out = tmp_path / "out.mkv"
    io.rewrite_audio_tracks_stream(film, [io.iter_audio_blocks(film, RATE, track=t) for t in range(2)], out)
    with av.open(str(out)) as c:
        mp3, opus = (s.codec_context for s in c.streams.audio)
        assert (mp3.name, opus.name) == ("mp3float", "opus")
        assert mp3.bit_rate >= 300_000
    forced = tmp_path / "forced.mkv"
    io.rewrite_audio_tracks_stream(film, [io.iter_audio_blocks(film, RATE, track=t) for t in range(2)], forced,
                                   codec="aac")
    with av.open(str(forced)) as c:
        assert [s.codec_context.name for s in c.streams.audio] == ["aac", "aac"]


def test_streams_in_a_codec_ffmpeg_does_not_know_are_named_not_crashed_on(tmp_path):
    """A damaged header can leave a stream without a codec: the writer raised AttributeError
    ('NoneType' object has no attribute 'name'), an internal error, on such a video stream."""
    film = multitrack_video(tmp_path / "film.mkv", _tracks(), seconds=SECONDS).read_bytes()
    assert film.count(b"V_MPEG4/ISO/AVC") == 1 and film.count(b"A_AAC") == 2
    no_video = tmp_path / "no_video_codec.mkv"
    no_video.write_bytes(film.replace(b"V_MPEG4/ISO/AVC", b"V_XXXXX/ISO/AVC"))
    no_audio = tmp_path / "no_audio_codec.mkv"
    no_audio.write_bytes(film.replace(b"A_AAC", b"A_XXX", 1))
    audio = make_test_audio(RATE, 2, SECONDS)
    with pytest.raises(FormatError, match="video stream 0 is in a codec FFmpeg does not know"):
        io.replace_audio_track(no_video, audio, tmp_path / "out.mkv")
    with pytest.raises(FormatError, match="video stream 0 is in a codec FFmpeg does not know"):
        io.check_video_output(no_video, tmp_path / "out.mkv")
    with pytest.raises(FormatError, match="audio track 0 is in a codec FFmpeg does not know"):
        io.audio_info(no_audio, track=0)
    # read with no track named, the file gives the track whose codec is known
    assert io.main_audio_track(no_audio) == 1
    assert io.read_audio(no_audio).frames == io.read_audio(no_audio, track=1).frames > 0
    assert not (tmp_path / "out.mkv").exists()


@pytest.mark.parametrize("suffix", [".mkv", ".mp4"])
def test_audio_after_a_gap_in_its_timestamps_keeps_its_time(tmp_path, suffix):
    """Audio packets a recorder dropped leave a jump in the track's timestamps, which players fill
    with silence. The reader joined the samples end to end, so a marked copy played everything
    after a 0.3 s gap 0.3 s early against the picture (and a 0.5 s gap was refused as truncation)."""
    rng = np.random.default_rng(3)
    x = (0.05 * rng.standard_normal((2, int(4.0 * RATE)))).astype(np.float32)
    click = int(2.5 * RATE)
    x[:, click:click + 48] = 0.9
    film = multitrack_video(tmp_path / f"film{suffix}", [Track(Audio(x, RATE), "eng", "English", True)],
                            seconds=4.0, subtitles=False, attachment=False)
    holed = tmp_path / f"holed{suffix}"
    gap = (1.0, 1.3)
    with av.open(str(film)) as src, av.open(str(holed), "w") as dst:
        out = {s.index: dst.add_stream_from_template(s) for s in src.streams if s.type in ("audio", "video")}
        for packet in src.demux():
            if not packet.size or packet.stream.index not in out:  # the demuxer's flush packets
                continue
            if packet.stream.type == "audio" and gap[0] <= float(packet.pts * packet.time_base) < gap[1]:
                continue
            packet.stream = out[packet.stream.index]
            dst.mux(packet)

    def click_s(path: Path) -> float:
        return float(np.argmax(np.abs(io.read_audio(path).samples[0]))) / RATE

    whole, read = io.read_audio(film), io.read_audio(holed)
    assert abs(read.frames - whole.frames) <= 1024, (read.frames, whole.frames)
    assert abs(click_s(holed) - 2.5) < 0.002, click_s(holed)
    assert not read.samples[:, int(1.05 * RATE):int(1.25 * RATE)].any()  # the gap plays as silence
    rewritten = tmp_path / f"rewritten{suffix}"
    io.replace_audio_track(holed, read, rewritten)
    assert abs(click_s(rewritten) - 2.5) < 0.002, click_s(rewritten)

    # a timestamp 30 s on is damage, not lost audio: no long silence is made of it
    leap = audio_with_a_timestamp_jump(film, tmp_path / f"leap{suffix}", at_s=2.0, by_s=30.0)
    with pytest.raises(FormatError, match=r"timestamps jump by 30\.\d s at 2\.\d+ s: the file is damaged") as err:
        io.read_audio(leap)
    assert err.value.path == str(leap)


@pytest.mark.parametrize("out_suffix", [".mov", ".mp4", ".mkv"])
def test_a_camera_movs_timecode_track_is_kept(tmp_path, out_suffix):
    """Nearly every camera's and editor's MOV has a timecode (tmcd) track. Copied into a MOV it
    failed at write time with "cannot write the mov file (corrupt, truncated or unsupported data):
    Invalid argument" (FFmpeg: "avg_frame_rate not set for tmcd track"), blaming the input."""
    source = tmp_path / "camera.mov"
    with av.open(str(source), "w") as out:
        video = out.add_stream("libx264", rate=25)
        video.width, video.height, video.pix_fmt = 64, 64, "yuv420p"
        video.metadata["timecode"] = "01:00:00:00"  # the muxer writes the tmcd track from it
        sound = out.add_stream("aac", rate=RATE, layout="stereo")
        for i in range(50):
            frame = av.VideoFrame.from_ndarray(np.full((64, 64, 3), i * 4, np.uint8), format="rgb24")
            frame.pts = i
            for packet in video.encode(frame):
                out.mux(packet)
        for packet in video.encode():
            out.mux(packet)
        x = make_test_audio(RATE, 2, 2.0).samples
        for j in range(0, x.shape[1], 1024):
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(x[:, j:j + 1024]), format="fltp", layout="stereo")
            frame.sample_rate, frame.pts = RATE, j
            for packet in sound.encode(frame):
                out.mux(packet)
        for packet in sound.encode():
            out.mux(packet)
    with av.open(str(source)) as c:
        assert [s.type for s in c.streams] == ["video", "audio", "data"]  # the timecode track
    marked = tmp_path / f"marked{out_suffix}"
    io.replace_audio_track(source, io.read_audio(source), marked)
    with av.open(str(marked)) as c:
        assert c.streams.video[0].metadata.get("timecode", c.streams.video[0].metadata.get("TIMECODE")) == "01:00:00:00"
        timecode_tracks = [s for s in c.streams if s.type == "data" and s.metadata.get("timecode") == "01:00:00:00"]
        assert len(timecode_tracks) == (0 if out_suffix == ".mkv" else 1)  # Matroska holds it as a tag
    assert _video_packets(marked) == _video_packets(source)
