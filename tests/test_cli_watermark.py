"""The ``foleyseal watermark`` and ``keys new-watermark-key`` commands on real files, good and bad."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from foleyseal.cli import main
from provenance.core import io
from provenance.core.audio import Audio
from provenance.watermark import WatermarkKey
from provenance.watermark.keys import save_key

PAYLOAD = "00112233445566ff"


def run(argv: list[str], capsys) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    out, err = capsys.readouterr()
    return int(exc.value.code or 0), out, err


@pytest.fixture(scope="module")
def clip(corpus_dir, tmp_path_factory) -> Path:
    """6 s of real speech+music as a 16-bit WAV."""
    audio = io.read_audio(corpus_dir / "music_orchestral_short_cue.flac", start_s=3.0, duration_s=6.0)
    path = tmp_path_factory.mktemp("cli") / "clip.wav"
    io.write_audio(path, audio, subtype="PCM_16")
    return path


@pytest.fixture()
def key(tmp_path, capsys) -> Path:
    path = tmp_path / "wm.key"
    code, out, _ = run(["keys", "new-watermark-key", str(path)], capsys)
    assert code == 0 and "mode 0600" in out
    return path


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if ".tmp" in p.name)


@pytest.mark.parametrize("suffix", [".wav", ".flac", ".mp3", ".m4a"])
def test_embed_then_detect(clip, key, tmp_path, capsys, suffix):
    out = tmp_path / f"marked{suffix}"
    code, text, err = run(["watermark", "embed", str(clip), str(out), "--key", str(key), "--payload", PAYLOAD], capsys)
    assert code == 0, err
    assert out.exists() and not leftovers(tmp_path)
    info = io.audio_info(out)
    assert info.channels == io.audio_info(clip).channels
    code, text, err = run(["watermark", "detect", str(out), "--key", str(key), "--json"], capsys)
    report = json.loads(text)
    assert code == 0 and report["found"] and report["payload"] == PAYLOAD
    assert report["p_value"] < 1e-6 and report["segments"]


def test_detect_reads_the_audio_track_asked_for(clip, key, tmp_path, capsys):
    """A film whose first track is silent and whose second, the default, carries the sound:
    `watermark embed` marks both tracks (the silent one carries nothing), `detect` reads the
    main one, and `--track N` reads another; a track that is not there is bad input."""
    from tests._multitrack import Track, multitrack_video

    sound = io.read_audio(clip)
    silent = Audio(np.zeros((2, sound.frames), np.float32), sound.sample_rate)
    film = multitrack_video(tmp_path / "film.mkv", [Track(silent, "eng", "Silence", False),
                                                   Track(sound, "fra", "Sound", True)],
                            seconds=sound.duration_s)
    out = tmp_path / "marked.mkv"
    code, _, err = run(["watermark", "embed", str(film), str(out), "--key", str(key), "--payload", PAYLOAD], capsys)
    assert code == 0, err
    for extra, expected in (([], 0), (["--track", "1"], 0), (["--track", "0"], 1)):
        code, text, err = run(["watermark", "detect", str(out), "--key", str(key), "--json", *extra], capsys)
        assert code == expected, (extra, text, err)
        assert json.loads(text)["payload"] == (PAYLOAD if expected == 0 else None)
    code, _, err = run(["watermark", "detect", str(out), "--key", str(key), "--track", "2"], capsys)
    assert code == 3 and "has 2 audio track(s); there is no track 2" in err


def test_a_video_whose_audio_tracks_differ_in_rate_gets_each_marked_at_its_own(clip, key, tmp_path, capsys):
    """An AAC track at 48 kHz beside a FLAC one at 44.1 kHz: every track was marked by the last
    track's embedder, and the run crashed (internal error, exit 4: "operands could not be
    broadcast together")."""
    from scipy.signal import resample_poly

    from tests._multitrack import Track, multitrack_video

    sound = io.read_audio(clip)
    assert sound.sample_rate == 44_100
    slower = Audio(resample_poly(sound.samples, 160, 147, axis=1).astype(np.float32), 48_000)
    film = multitrack_video(tmp_path / "film.mkv", [Track(slower, "eng", "English", True),
                                                   Track(sound, "fra", "Francais", False, codec="flac")],
                            seconds=sound.duration_s)
    out = tmp_path / "marked.mkv"
    code, _, err = run(["watermark", "embed", str(film), str(out), "--key", str(key), "--payload", PAYLOAD], capsys)
    assert code == 0, err
    for track, rate in ((0, 48_000), (1, 44_100)):
        assert io.audio_info(out, track=track).sample_rate == rate
        code, text, err = run(["watermark", "detect", str(out), "--key", str(key), "--json", "--track", str(track)],
                              capsys)
        assert code == 0 and json.loads(text)["payload"] == PAYLOAD, (track, text, err)


def test_embed_says_when_the_output_codec_changed_the_rate(clip, key, tmp_path, capsys):
    """44.1 kHz into .opus is 48 kHz out: `mark` said so, `watermark embed` did not."""
    assert io.audio_info(clip).sample_rate == 44_100
    out = tmp_path / "marked.opus"
    code, _, err = run(["watermark", "embed", str(clip), str(out), "--key", str(key), "--payload", PAYLOAD], capsys)
    assert code == 0, err
    assert f"note: {out} holds the audio at 48000 Hz, not 44100 Hz: it was resampled for its codec" in err
    code, _, err = run(["watermark", "embed", str(clip), str(tmp_path / "same.flac"), "--key", str(key),
                        "--payload", PAYLOAD], capsys)
    assert code == 0 and "resampled" not in err, err


def test_a_96_khz_aac_file_keeps_its_mark_through_re_encoding(key, tmp_path, capsys):
    # Full-band noise coded by AAC at 96 kHz and 128 kbps, then marked and written back as AAC at
    # the default bitrate: at 96 kbps per channel (the 48 kHz default) the second encoding lost the
    # mark (p ~ 0.02); the default now grows with the rate above 48 kHz.
    rate = 96000
    rng = np.random.default_rng(7)
    t = np.arange(6 * rate) / rate
    noise = 0.1 * rng.standard_normal((2, t.size)) * (1 + np.sin(2 * np.pi * 0.5 * t))
    samples = (noise + 0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    src = tmp_path / "noise96k.m4a"
    io.write_audio(src, Audio(samples, rate), bitrate_kbps=128)
    out = tmp_path / "marked96k.m4a"
    code, _, err = run(["watermark", "embed", str(src), str(out), "--key", str(key), "--payload", PAYLOAD], capsys)
    assert code == 0, err
    info = io.audio_info(out)
    assert (info.sample_rate, info.channels, info.subtype) == (rate, 2, "AAC")
    code, text, err = run(["watermark", "detect", str(out), "--key", str(key), "--json"], capsys)
    report = json.loads(text)
    assert code == 0 and report["found"] and report["payload"] == PAYLOAD


def test_detect_reports_a_speed_change(clip, tmp_path, capsys):
    # a fixed key: where the pitch estimate lands on the search's 0.5 % frequency lattice
    # depends on the key, and the test must not
    key = save_key(WatermarkKey(bytes(range(32))), tmp_path / "fixed.key")
    marked = tmp_path / "marked.wav"
    code, _, err = run(["watermark", "embed", str(clip), str(marked), "--key", str(key), "--payload", PAYLOAD], capsys)
    assert code == 0, err
    audio = io.read_audio(marked)
    from scipy.signal import resample_poly

    faster = tmp_path / "faster.flac"  # played 5 % faster: every 21 samples become 20, same rate
    io.write_audio(faster, audio.with_samples(resample_poly(audio.samples, 20, 21, axis=-1).astype(np.float32)))
    code, text, err = run(["watermark", "detect", str(faster), "--key", str(key)], capsys)
    assert code == 0, err
    assert "FOUND" in text and PAYLOAD in text
    assert "speed x1.05" in text
    # 5 % faster raises the pitch by 12 log2(1.05) = 0.84 semitones; the search's frequency
    # lattice has 0.5 % (0.09 semitone) steps
    pitch = float(re.search(r"pitch ([+-][0-9.]+) semitones", text).group(1))
    assert pitch == pytest.approx(0.845, abs=0.09)


def test_wav_output_keeps_subtype(clip, key, tmp_path, capsys):
    for subtype in ("PCM_24", "FLOAT"):
        src = tmp_path / f"src_{subtype}.wav"
        sf.write(src, sf.read(clip)[0], io.audio_info(clip).sample_rate, subtype=subtype)
        out = tmp_path / f"out_{subtype}.wav"
        code, _, err = run(["watermark", "embed", str(src), str(out), "--key", str(key), "--payload", PAYLOAD], capsys)
        assert code == 0, err
        assert sf.info(out).subtype == subtype


@pytest.mark.parametrize("name, fmt, subtype, written", [
    ("aiff.aiff", "AIFF", "PCM_24", "PCM_24"),
    ("caf.caf", "CAF", "PCM_16", "PCM_16"),
    ("w64.w64", "W64", "FLOAT", "FLOAT"),
    ("au.au", "AU", "ULAW", "ULAW"),
    # read but not written: the WAV stays a WAV, in 16-bit PCM (this one was refused before)
    ("ima.wav", "WAV", "IMA_ADPCM", "PCM_16"),
])
def test_other_containers_and_encodings_are_marked_in_kind(clip, key, tmp_path, capsys, name, fmt, subtype, written):
    samples, rate = sf.read(clip)
    src = tmp_path / name
    sf.write(src, samples, rate, format=fmt, subtype=subtype)
    out = tmp_path / f"marked_{name}"
    code, _, err = run(["watermark", "embed", str(src), str(out), "--key", str(key), "--payload", PAYLOAD], capsys)
    assert code == 0, err
    info = sf.info(out)
    container = "WAV" if info.format == "WAVEX" else info.format  # WAVEX: WAV with a channel mask
    assert (container, info.subtype, info.samplerate, info.channels) == (fmt, written, rate, samples.shape[1])
    code, text, err = run(["watermark", "detect", str(out), "--key", str(key), "--json"], capsys)
    assert code == 0 and json.loads(text)["payload"] == PAYLOAD


def test_unmarked_file_exits_1(clip, key, capsys):
    code, text, _ = run(["watermark", "detect", str(clip), "--key", str(key)], capsys)
    assert code == 1 and "not found" in text


def _bad_inputs(tmp_path: Path, clip: Path) -> dict[str, Path]:
    bad: dict[str, Path] = {}
    (bad_empty := tmp_path / "empty.wav").write_bytes(b"")
    bad["empty"] = bad_empty
    data = clip.read_bytes()
    (t := tmp_path / "truncated.wav").write_bytes(data[:200])
    bad["truncated"] = t
    corrupt = bytearray(data)
    corrupt[0:4] = b"XXXX"
    (c := tmp_path / "corrupt.wav").write_bytes(bytes(corrupt))
    bad["corrupt"] = c
    (txt := tmp_path / "notes.wav").write_text("this is not audio\n" * 50)
    bad["text"] = txt
    nan = np.zeros((44100 * 5, 1), np.float32)
    nan[1000] = np.nan
    sf.write(tmp_path / "nan.wav", nan, 44100, subtype="FLOAT")
    bad["nan"] = tmp_path / "nan.wav"
    sf.write(tmp_path / "zero.wav", np.zeros((0, 1), np.float32), 44100)
    bad["zero-length"] = tmp_path / "zero.wav"
    sf.write(tmp_path / "short.wav", np.random.default_rng(0).normal(0, 0.1, (22050, 1)), 44100)
    bad["too short"] = tmp_path / "short.wav"
    bad["missing"] = tmp_path / "missing.wav"
    return bad


def test_bad_inputs_fail_cleanly(clip, key, tmp_path, capsys):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    for what, path in _bad_inputs(tmp_path, clip).items():
        out = out_dir / f"{what}.wav"
        code, _, err = run(["watermark", "embed", str(path), str(out), "--key", str(key), "--payload", PAYLOAD], capsys)
        assert code == 3, (what, err)
        assert err.startswith("error:") and str(path) in err, (what, err)
        assert not out.exists() and not leftovers(out_dir), what
        if what not in ("too short",):
            code, _, err = run(["watermark", "detect", str(path), "--key", str(key)], capsys)
            assert code == 3, (what, err)


def test_detect_on_a_damaged_file_points_to_the_verifier_that_reads_past_damage(clip, key, tmp_path, capsys):
    """A FLAC with bytes lost mid-file stopped `watermark detect` at libsndfile's "Internal
    psf_fseek() failed", with nothing said about where such a file can be read."""
    flac = tmp_path / "clip.flac"
    io.write_audio(flac, io.read_audio(clip))
    data = flac.read_bytes()
    (cut := tmp_path / "cut.flac").write_bytes(data[: len(data) * 2 // 5] + data[len(data) // 2:])
    code, _, err = run(["watermark", "detect", str(cut), "--key", str(key)], capsys)
    assert code == 3 and err.startswith("error:") and str(cut) in err, err
    assert "truncated or damaged" in err and "`foleyseal verify` reads a damaged file" in err, err
    assert ".;" not in err, err
    code, _, err = run(["watermark", "detect", str(tmp_path / "missing.flac"), "--key", str(key)], capsys)
    assert code == 3 and "foleyseal verify" not in err, err


def test_embed_writes_an_output_whose_name_leaves_no_room_for_a_sidecar(clip, key, tmp_path, capsys):
    """Looking for a stale .c2pa beside a 255-byte output raised "File name too long" after the
    output was written: exit 3 for a file that was marked."""
    out = tmp_path / ("d" * 251 + ".wav")
    code, _, err = run(["watermark", "embed", str(clip), str(out), "--key", str(key), "--payload", PAYLOAD], capsys)
    assert code == 0 and out.is_file(), err


def test_messages_name_the_real_fault(tmp_path, capsys):
    """A key file with the right header and no key was "bad header"; 4.3199 s of audio was
    "4.32 s long; too short ... at least 4.32 s needed" (the least is 1 s now: 0.9999 s is
    "0.999 s long")."""
    bad = tmp_path / "header-only.key"
    bad.write_text("foleyseal-watermark-key-v1\n")
    bad.chmod(0o600)
    short = tmp_path / "short.wav"
    sf.write(short, np.random.default_rng(0).standard_normal(int(48_000 * 0.9999)).astype(np.float32) * 0.1, 48_000)
    code, _, err = run(["watermark", "detect", str(short), "--key", str(bad)], capsys)
    assert code == 3 and "holds 0 words after its header line" in err and "bad header" not in err, err
    good = tmp_path / "good.key"
    run(["keys", "new-watermark-key", str(good)], capsys)
    code, _, err = run(["watermark", "embed", str(short), str(tmp_path / "o.wav"), "--key", str(good),
                        "--payload", PAYLOAD], capsys)
    assert code == 3 and "audio is 0.999 s long; too short to carry the watermark (at least 1.00 s" in err, err


def test_audio_shorter_than_a_block_is_marked_and_said_to_hold_part_of_the_payload(clip, tmp_path, capsys):
    """Audio under one 4.32 s block was refused as too short to carry the payload; from 1 s it is
    marked. Read back by the bare detector, a 1.5 s excerpt's payload does not decode: refused,
    saying why and what reads it (mark); without the read-back it is kept, with a note."""
    key = tmp_path / "fixed.key"  # a fixed key: whether a partial payload decodes depends on it
    key.write_text("foleyseal-watermark-key-v1\n" + "5a" * 32 + "\n")
    key.chmod(0o600)
    x, rate = sf.read(clip, dtype="float32", always_2d=True)
    short = tmp_path / "short.wav"
    sf.write(short, x[rate * 2: rate * 2 + int(1.5 * rate)], rate)
    out = tmp_path / "out.wav"
    args = ["watermark", "embed", str(short), str(out), "--key", str(key), "--payload", PAYLOAD]
    code, _, err = run(args, capsys)
    assert code == 3 and not out.exists(), err
    assert "found, but its payload could not be read" in err and "shorter than one 4.32 s watermark block" in err
    assert "`foleyseal mark`" in err, err
    code, _, err = run(args + ["--no-check"], capsys)
    assert code == 0 and out.exists(), err
    assert "note: " in err and "1.50 s long, shorter than one 4.32 s watermark block" in err, err
    code, text, _ = run(["watermark", "detect", str(out), "--key", str(key), "--json"], capsys)
    assert code == 0 and json.loads(text)["found"], text


def test_a_payload_written_with_0x_or_spaces_is_the_same_payload(clip, key, tmp_path, capsys):
    """" 0x0123..." was embedded right, then the read-back compared the decoded payload with the
    text as typed and refused the file, saying it had too little sound."""
    out = tmp_path / "marked.flac"
    code, text, err = run(["watermark", "embed", str(clip), str(out), "--key", str(key), "--payload",
                           " 0x" + PAYLOAD.upper(), "--json"], capsys)
    assert code == 0, err
    assert json.loads(text)["payload"] == PAYLOAD
    code, text, _ = run(["watermark", "detect", str(out), "--key", str(key), "--json"], capsys)
    assert code == 0 and json.loads(text)["payload"] == PAYLOAD


def test_bad_payloads_and_keys(clip, key, tmp_path, capsys):
    out = tmp_path / "o.wav"
    for payload in ("0011", "zz112233445566ff", "00112233445566ff00"):
        code, _, err = run(["watermark", "embed", str(clip), str(out), "--key", str(key), "--payload", payload], capsys)
        assert code == 3 and "payload" in err
    # an odd number of digits is a length problem, not "not hexadecimal"
    for payload, digits in (("00112233445566f", 15), ("00112233445566ff0", 17)):
        code, _, err = run(["watermark", "embed", str(clip), str(out), "--key", str(key), "--payload", payload], capsys)
        assert code == 3 and f"has {digits} hex digits" in err and "not hexadecimal" not in err, err
    os.chmod(key, 0o644)
    code, _, err = run(["watermark", "embed", str(clip), str(out), "--key", str(key), "--payload", PAYLOAD], capsys)
    assert code == 3 and "permissions" in err
    code, _, err = run(["watermark", "detect", str(clip), "--key", str(tmp_path / "nokey")], capsys)
    assert code == 3 and "not found" in err
    assert not out.exists()


@pytest.mark.parametrize("value", ["2", "inf", "nan", "-1", "0", "1"])
def test_a_threshold_that_is_no_p_value_is_a_usage_error(clip, key, capsys, value):
    """--threshold took any number: at 2 or inf every file was FOUND, at nan or -1 none was."""
    code, out, err = run(["watermark", "detect", str(clip), "--key", str(key), "--threshold", value], capsys)
    assert code == 2 and "'--threshold'" in err and "p-value" in err, err
    assert out == "" and "Traceback" not in err


@pytest.mark.parametrize("command", ["embed", "robustness"])
@pytest.mark.parametrize("value", ["2", "nan", "0.01", "-inf"])
def test_a_strength_out_of_range_is_a_usage_error(clip, key, tmp_path, capsys, command, value):
    """watermark embed --strength 2 exited 3 (bad input) after reading the file, bench robustness
    --strength 2 exited 2: both are the same usage error now, checked before any work."""
    out = tmp_path / "o.wav"
    argv = (["watermark", "embed", str(clip), str(out), "--key", str(key), "--payload", PAYLOAD]
            if command == "embed" else ["bench", "robustness", "--corpus", str(clip.parent), "--out", str(out)])
    code, _, err = run([*argv, "--strength", value], capsys)
    assert code == 2 and "'--strength'" in err and "0.05-1.0" in err, err
    assert not out.exists()


def test_a_mark_too_weak_to_find_is_refused_unless_asked_for(clip, key, tmp_path, capsys):
    """``--strength 0.1`` wrote, with exit 0, a mark that ``watermark detect`` could not find.
    The mark is read back from the file written, as ``detect`` reads it: refused with exit 3,
    OUTPUT left as it was; ``--no-check`` writes it anyway."""
    out = tmp_path / "weak.wav"
    out.write_bytes(b"an earlier output")
    args = ["watermark", "embed", str(clip), str(out), "--key", str(key), "--payload", PAYLOAD, "--strength", "0.1"]
    code, _, err = run(args, capsys)
    assert code == 3, err
    # the input is named: its audio (or the strength) is the cause, and the output was not written
    # the strength the user lowered is the likeliest cause, said first (it came after "too little sound")
    assert err.startswith(f"error: {clip}: read back from the file written, the watermark is not found"), err
    assert ": at strength 0.1 the mark may be too weak to find (1.0 is the default); else the audio" in err, err
    assert out.read_bytes() == b"an earlier output" and not leftovers(tmp_path)
    code, _, err = run([*args, "--no-check"], capsys)
    assert code == 0, err
    code, _, _ = run(["watermark", "detect", str(out), "--key", str(key)], capsys)
    assert code == 1  # written as asked, and indeed not found


def test_new_watermark_key_refuses_overwrite(key, capsys):
    before = key.read_bytes()
    code, _, err = run(["keys", "new-watermark-key", str(key)], capsys)
    assert code == 3 and "already exists (refusing to overwrite it; --force replaces it" in err
    assert key.read_bytes() == before
    assert (key.stat().st_mode & 0o777) == 0o600
    code, _, err = run(["keys", "new-watermark-key", str(key.parent)], capsys)
    assert code == 3 and "is a directory" in err


def test_console_script_help_and_usage_errors():
    exe = [sys.executable, "-m", "foleyseal.cli"]
    for args in (["--help"], ["watermark", "--help"], ["watermark", "embed", "--help"],
                 ["watermark", "detect", "--help"], ["keys", "new-watermark-key", "--help"]):
        res = subprocess.run(exe + args, capture_output=True, text=True, timeout=120)
        assert res.returncode == 0 and "Usage" in res.stdout, args
    res = subprocess.run(exe + ["watermark", "embed"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 2


def test_video_audio_track_is_marked(video_dir, key, tmp_path, capsys):
    src = video_dir / "real_movie_hello.mp4"
    out = tmp_path / "marked.mp4"
    code, _, err = run(["watermark", "embed", str(src), str(out), "--key", str(key), "--payload", PAYLOAD], capsys)
    assert code == 0, err
    assert io.is_video(out)
    code, text, _ = run(["watermark", "detect", str(out), "--key", str(key), "--json"], capsys)
    assert code == 0 and json.loads(text)["payload"] == PAYLOAD


@pytest.mark.parametrize("suffix", [".wav", ".flac"])
def test_a_video_marked_into_an_audio_file_gives_its_marked_track(video_dir, key, tmp_path, capsys, suffix):
    """An audio OUTPUT for a video INPUT is the video's audio track, marked (it was refused:
    "cannot write video with extension '.wav'")."""
    src = video_dir / "real_movie_hello.mp4"
    out = tmp_path / f"track{suffix}"
    code, _, err = run(["watermark", "embed", str(src), str(out), "--key", str(key), "--payload", PAYLOAD], capsys)
    assert code == 0, err
    assert not io.is_video(out)
    track, got = io.audio_info(src), io.audio_info(out)
    assert (got.sample_rate, got.channels, got.frames) == (track.sample_rate, track.channels, track.frames)
    code, text, _ = run(["watermark", "detect", str(out), "--key", str(key), "--json"], capsys)
    assert code == 0 and json.loads(text)["payload"] == PAYLOAD


def test_the_command_uses_one_blas_thread_unless_told_otherwise():
    """OpenBLAS's worker threads made a 3-minute embed take twice as long on a busy 2-core machine:
    the command sets one thread before numpy loads, and leaves a user's own setting alone."""
    probe = "import os, foleyseal.cli; print(os.environ['OPENBLAS_NUM_THREADS'])"
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1])
    got = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True)
    assert got.stdout.strip() == "1"
    got = subprocess.run([sys.executable, "-c", probe], env={**env, "OPENBLAS_NUM_THREADS": "3"},
                         capture_output=True, text=True, check=True)
    assert got.stdout.strip() == "3"


def test_long_jobs_show_their_progress_where_asked_and_nothing_otherwise(clip, key, tmp_path, monkeypatch):
    """``watermark embed``, ``detect`` and ``verify`` printed nothing for minutes on hours of audio. Where a
    person watches (a terminal, or FOLEYSEAL_PROGRESS set) each stage has a bar on stderr; piped
    into another program, stderr stays empty."""
    root = str(Path(__file__).resolve().parents[1])
    out = tmp_path / "marked.wav"

    def cli(*args: str, progress: bool) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if k != "FOLEYSEAL_PROGRESS"}
        env |= {"PYTHONPATH": root, **({"FOLEYSEAL_PROGRESS": "1"} if progress else {})}
        return subprocess.run([sys.executable, "-m", "foleyseal.cli", *args], env=env,
                              capture_output=True, text=True, timeout=120)

    embed = ["watermark", "embed", str(clip), str(out), "--key", str(key), "--payload", PAYLOAD]
    shown = cli(*embed, progress=True)
    assert shown.returncode == 0, shown.stderr
    assert re.search(r"marking clip\.wav .* 100%", shown.stderr), shown.stderr
    assert re.search(r"reading back clip\.wav .* 100%", shown.stderr), shown.stderr
    detect = cli("watermark", "detect", str(out), "--key", str(key), progress=True)
    assert detect.returncode == 0 and re.search(r"detecting marked\.wav .* 100%", detect.stderr), detect.stderr
    quiet = cli(*embed, progress=False)
    assert quiet.returncode == 0 and quiet.stderr == ""
    # `verify` of one file: a bar of its audio read (a batch has its bar of files)
    monkeypatch.setenv("FOLEYSEAL_HOME", str(tmp_path / "no_home"))
    verify = cli("verify", str(out), "--key", str(key), "--no-store", progress=True)
    assert re.search(r"verifying marked\.wav .* 100%", verify.stderr), verify.stderr
    assert "marked.wav" in verify.stdout
    assert cli("verify", str(out), "--key", str(key), "--no-store", progress=False).stderr == ""


def test_embed_refuses_to_mark_its_input_in_place_or_an_output_with_no_extension(clip, key, tmp_path, capsys):
    """`watermark embed a.wav a.wav` replaced the unmarked original, exit 0 (`mark` refuses it);
    an output named without an extension was blamed on '.tmp', the working file's suffix."""
    src = tmp_path / "a.wav"
    src.write_bytes(clip.read_bytes())
    before = src.read_bytes()
    code, _, err = run(["watermark", "embed", str(src), str(src), "--key", str(key), "--payload", PAYLOAD], capsys)
    assert code == 3 and "output is the input file" in err and src.read_bytes() == before
    (tmp_path / "link.wav").hardlink_to(src)
    code, _, err = run(["watermark", "embed", str(src), str(tmp_path / "link.wav"), "--key", str(key),
                        "--payload", PAYLOAD], capsys)
    assert code == 3 and "output is the input file" in err and src.read_bytes() == before
    code, _, err = run(["watermark", "embed", str(src), str(tmp_path / "marked"), "--key", str(key),
                        "--payload", PAYLOAD], capsys)
    assert code == 3 and "no file extension" in err and ".wav" in err and ".tmp" not in err
    assert leftovers(tmp_path) == []


def test_an_output_that_is_a_pipe_or_device_is_refused_not_replaced(clip, key, tmp_path, capsys):
    """Run as root, `sign x.wav /dev/null` would have replaced the system's /dev/null with a file:
    every writer renamed its output over whatever the path named."""
    fifo = tmp_path / "pipe.wav"
    os.mkfifo(fifo)
    code, _, err = run(["watermark", "embed", str(clip), str(fifo), "--key", str(key), "--payload", PAYLOAD], capsys)
    assert code == 3 and "is a pipe, not a file" in err
    assert fifo.is_fifo() and leftovers(tmp_path) == []
    from provenance.core.atomic import check_writable
    from provenance.core.errors import OutputError

    # only the check: a regression must not replace the machine's /dev/null running the tests
    with pytest.raises(OutputError, match="is a device, not a file"):
        check_writable("/dev/null")


def test_the_cli_leaves_reading_permission_to_the_file_reader(clip, key, tmp_path, capsys, monkeypatch):
    """An unreadable input was a usage error (exit 2, click's "path is not readable") on every
    command; it is bad input, exit 3, named by FoleySeal's own reader (and `verify` reports it per
    file instead of stopping the run)."""
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, *a, **k: False if str(p).endswith("clip.wav")
                        else real_access(p, mode, *a, **k))
    code, _, err = run(["watermark", "detect", str(clip), "--key", str(key)], capsys)
    assert code in (0, 1), err  # read by FoleySeal's reader, which a root user may use
    from provenance.core.errors import InputError
    from provenance.core.io.common import _wrapped

    with pytest.raises(InputError, match="cannot read it: permission denied"):
        with _wrapped(clip, "read it"):
            raise PermissionError(13, "Permission denied")


def test_a_plain_wav_stays_a_plain_wav_and_one_byte_short_is_truncated(clip, key, tmp_path, capsys):
    """Marked copies of plain WAVs came out as WAVE_FORMAT_EXTENSIBLE (written as RF64 of unknown
    length, downgraded on close), which older tools refuse; a WAV missing its last byte passed,
    its last frame dropped without a word (one byte was excused as a RIFF pad byte)."""
    assert sf.info(clip).format == "WAV"
    out = tmp_path / "marked.wav"
    code, _, err = run(["watermark", "embed", str(clip), str(out), "--key", str(key), "--payload", PAYLOAD], capsys)
    assert code == 0, err
    assert sf.info(out).format == "WAV"
    short = tmp_path / "short.wav"
    short.write_bytes(clip.read_bytes()[:-1])
    code, _, err = run(["watermark", "embed", str(short), str(tmp_path / "s.wav"), "--key", str(key),
                        "--payload", PAYLOAD], capsys)
    assert code == 3 and "file is truncated" in err


def test_audio_far_over_full_scale_is_named_as_such_not_as_too_little_sound(key, tmp_path, capsys):
    """A float WAV peaking at 10x full scale was refused as having "too little sound"."""
    x = 0.3 * np.random.default_rng(0).standard_normal((48_000 * 6, 2)).astype(np.float32)
    sf.write(tmp_path / "loud.wav", 10 * x / np.abs(x).max(), 48_000, subtype="FLOAT")
    code, _, err = run(["watermark", "embed", str(tmp_path / "loud.wav"), str(tmp_path / "o.wav"), "--key", str(key),
                        "--payload", PAYLOAD], capsys)
    assert code == 3 and "reach 10 times full scale (+20.0 dBFS)" in err and "too little sound" not in err


def test_with_json_an_error_is_json_on_stdout_too(key, tmp_path, capsys):
    """`--json` runs that failed left stdout empty: a program reading it had nothing to parse."""
    code, out, err = run(["watermark", "detect", str(tmp_path / "missing.wav"), "--key", str(key), "--json"], capsys)
    assert code == 3 and "file not found" in err
    assert json.loads(out) == {"error": "file not found", "file": str(tmp_path / "missing.wav"),
                               "kind": "InputError", "exit_code": 3}
    code, out, err = run(["watermark", "detect", str(tmp_path / "missing.wav"), "--key", str(key)], capsys)
    assert code == 3 and out == ""


def _commands(group, path=()):
    """(path, command) for every command under ``group`` (Typer's own click types: no isinstance)."""
    for name, cmd in group.commands.items():
        if hasattr(cmd, "commands"):
            yield from _commands(cmd, path + (name,))
        else:
            yield path + (name,), cmd


def test_no_help_text_breaks_a_sentence_mid_line():
    """Typer's help keeps a docstring's line breaks: `generate --help` showed its paragraphs cut
    at column 100 ("there is no way to write an unmarked one (the mark" / "is read back..."),
    however wide the terminal. A paragraph's lines (after the first, which Typer joins) may only
    end a sentence or a heading, or lead into an indented list."""
    import inspect

    import typer

    from foleyseal.cli import app

    broken = []
    for path, cmd in _commands(typer.main.get_command(app)):
        doc = inspect.cleandoc(cmd.help or "")
        for paragraph in doc.split("\n\n")[1:]:  # the first one Typer joins into one line
            lines = paragraph.split("\n")
            for line, nxt in zip(lines, lines[1:]):
                if not nxt.startswith(" ") and not line.rstrip().endswith((".", ":", ")")):
                    broken.append(f"{' '.join(path)}: {line!r}")
    assert len(list(_commands(typer.main.get_command(app)))) >= 15
    assert broken == [], broken


def test_a_rate_the_mark_cannot_be_embedded_at_is_named_with_its_file(key, tmp_path, capsys):
    """8001 Hz (inside 8-192 kHz, not a multiple of 25 Hz): refused without naming the file."""
    x = 0.1 * np.random.default_rng(3).standard_normal((8001 * 6, 1)).astype(np.float32)
    src = tmp_path / "odd.wav"
    sf.write(src, x, 8001)
    code, _, err = run(["watermark", "embed", str(src), str(tmp_path / "o.wav"), "--key", str(key), "--payload",
                        PAYLOAD], capsys)
    assert code == 3 and err.startswith(f"error: {src}: sample rate 8001 Hz is not a multiple of 25 Hz"), err
    assert "resample the audio first" in err and not (tmp_path / "o.wav").exists()


def test_embed_over_a_signed_file_names_the_sidecar_left_beside_it(clip, key, tmp_path, capsys):
    """`watermark embed` into x.ogg, where an earlier `mark` left x.ogg.c2pa: the old sidecar
    stayed without a word, and `verify x.ogg` said "credentials tampered" of the file just written."""
    out = tmp_path / "x.ogg"
    sidecar = tmp_path / "x.ogg.c2pa"
    sidecar.write_bytes(b"the manifest of the x.ogg this run replaces")
    code, _, err = run(["watermark", "embed", str(clip), str(out), "--key", str(key), "--payload", PAYLOAD], capsys)
    assert code == 0, err
    assert f"note: {sidecar} lies beside {out} but was not written for it" in err
    assert sidecar.read_bytes() == b"the manifest of the x.ogg this run replaces"  # said, not deleted
    sidecar.unlink()
    code, _, err = run(["watermark", "embed", str(clip), str(out), "--key", str(key), "--payload", PAYLOAD], capsys)
    assert code == 0 and "lies beside" not in err, err


def test_a_folder_given_as_input_is_said_before_the_output_name(key, tmp_path, capsys):
    """`sign DIR out` and `watermark embed DIR out` complained of OUTPUT's missing extension."""
    folder = tmp_path / "takes"
    folder.mkdir()
    code, _, err = run(["watermark", "embed", str(folder), str(tmp_path / "out"), "--key", str(key), "--payload",
                        PAYLOAD], capsys)
    assert code == 3 and err.startswith(f"error: {folder}: not a regular file"), err
    code, _, err = run(["sign", str(folder), str(tmp_path / "out")], capsys)
    assert code == 3 and err.startswith(f"error: {folder}: input is not a regular file"), err


@pytest.mark.parametrize("command", ["embed", "detect"])
def test_unsupported_channels_are_said_as_mark_says_them(key, tmp_path, capsys, command):
    """`watermark detect ch9.wav` said "ch9.wav has 9 channels" where `mark` says "ch9.wav: audio
    has 9 channels": the file is named the one way everywhere."""
    src = tmp_path / "ch9.wav"
    sf.write(src, 0.1 * np.ones((48_000 * 5, 9), np.float32), 48_000, subtype="PCM_16")
    args = ["watermark", command, str(src)]
    args += [str(tmp_path / "o.wav"), "--payload", PAYLOAD] if command == "embed" else []
    code, _, err = run([*args, "--key", str(key)], capsys)
    assert code == 3 and err.startswith(f"error: {src}: audio has 9 channels; supported: 1-8"), err


def test_embed_over_a_marked_file_says_the_old_payload_is_gone(clip, key, tmp_path, capsys):
    """`watermark embed` of a file already marked with this key replaced its payload without a
    word (`mark` says so): a registered output re-marked lost its link to its record silently."""
    first, second = tmp_path / "first.wav", tmp_path / "second.wav"
    code, _, err = run(["watermark", "embed", str(clip), str(first), "--key", str(key), "--payload", "11" * 8], capsys)
    assert code == 0 and "already carried" not in err, err
    code, _, err = run(["watermark", "embed", str(first), str(second), "--key", str(key), "--payload", "22" * 8], capsys)
    assert code == 0
    assert f"note: {first} already carried a watermark of this key, payload {'11' * 8}; {second} carries {'22' * 8}" in err
