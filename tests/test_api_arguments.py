"""The Python API with arguments a user may plausibly get wrong: each gets a FoleySealError that
names the problem (or, for integer PCM, the conversion every audio library makes), never a deep
numpy/pathlib error, a silent wrong result or a lost file."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

from provenance.core.audio import Audio
from provenance.core.errors import InputError, KeyFileError, OutputError, PayloadError
from provenance.core.io import write_audio
from provenance.mark import mark
from provenance.sign import sign
from provenance.watermark import embed, new_key
from tests.conftest import make_test_audio
from tests.test_mark import make_home

KEY = new_key()
PAYLOAD = "0123456789abcdef"


def test_integer_pcm_samples_are_read_at_full_scale():
    x = make_test_audio(16_000, 1, 1.0, seed=1).samples
    for dtype, scale in ((np.int16, 32768), (np.int32, 2**31)):
        pcm = np.round(x * (scale - 1)).astype(dtype)
        a = Audio(pcm, 16_000)
        assert a.samples.dtype == np.float32 and np.max(np.abs(a.samples - x)) < 1e-4, dtype
    assert np.allclose(Audio(np.array([[0, 128, 255]], np.uint8), 8000).samples, [[-1.0, 0.0, 127 / 128]])
    # big-endian PCM was refused as "no PCM format; give int16"
    big = np.array([[-32768, 0, 16384]], ">i2")
    assert np.allclose(Audio(big, 8000).samples, [[-1.0, 0.0, 0.5]])
    for bad in (np.array([[1, 2]], np.int64), np.array([[True, False]]), np.array([[1 + 2j]])):
        with pytest.raises(InputError, match="samples"):
            Audio(bad, 8000)


@pytest.mark.parametrize("rate", [float("nan"), float("inf"), 44100.7, "44100", None, 0, -8000, True])
def test_a_sample_rate_must_be_a_whole_number_of_hz(rate):
    with pytest.raises(InputError, match="sample rate must be a whole number of Hz above 0"):
        Audio(np.zeros((1, 100), np.float32), rate)  # type: ignore[arg-type]
    assert Audio(np.zeros((1, 100), np.float32), 44100.0).sample_rate == 44100


@pytest.mark.parametrize("payload", [np.arange(8), np.zeros(64, np.uint8), 12345, None, 1.5])
def test_a_payload_is_hex_or_bytes(payload):
    audio = make_test_audio(48_000, 1, 6.0, seed=2)
    with pytest.raises(PayloadError, match="hex text or 8 bytes"):
        embed(audio, KEY, payload)  # type: ignore[arg-type]
    assert embed(audio, KEY, memoryview(bytes.fromhex(PAYLOAD))).frames == audio.frames


def test_a_key_given_as_its_secret_is_refused_without_echoing_it():
    audio = make_test_audio(48_000, 1, 6.0, seed=2)
    secret = KEY.secret.hex()
    with pytest.raises(KeyFileError) as err:
        embed(audio, secret, PAYLOAD)  # type: ignore[arg-type]
    assert secret not in str(err.value) and "WatermarkKey(bytes.fromhex" in str(err.value)
    for wrong in (12345, None, {"secret": secret}):
        with pytest.raises(KeyFileError, match="a watermark key is a WatermarkKey"):
            embed(audio, wrong, PAYLOAD)  # type: ignore[arg-type]


def test_verify_reports_what_it_cannot_read_instead_of_raising(tmp_path):
    from detectors.verify import verify

    f = tmp_path / "a.wav"
    write_audio(f, make_test_audio(16_000, 1, 1.0))
    with open(f) as text:
        sources = [text, io.StringIO("x"), b"RIFF", None]
        for src in sources:
            r = verify(src, keyring=[])  # type: ignore[arg-type]
            assert r.verdict.value == "error" and "binary mode" in (r.error or ""), type(src)
    with open(f, "rb") as fh:
        assert verify(fh, keyring=[]).verdict.value == "no_evidence"


def test_verify_takes_keys_as_embed_does_and_names_wrong_arguments(tmp_path):
    """A keyring of key file paths or raw keys (what embed and detect take) gave a marked file
    `no_evidence` with "decoding failed", and one path string was read letter by letter; a
    settings or limits of the wrong type raised AttributeError."""
    from detectors.verify import verify
    from provenance.core.errors import KeyFileError
    from provenance.watermark import save_key

    key_file = save_key(KEY, tmp_path / "wm.key")
    marked = tmp_path / "marked.wav"
    write_audio(marked, embed(make_test_audio(48_000, 2, 8.0, seed=5), KEY, PAYLOAD))
    for keyring in ([KEY], [str(key_file)], [key_file], [KEY.secret], str(key_file), KEY):
        r = verify(marked, keyring=keyring)
        assert r.verdict.value in ("watermark_only", "watermark_unregistered"), (keyring, r.verdict, r.notes)
        assert r.watermark[0].found and r.watermark[0].payloads[0] == PAYLOAD
    with pytest.raises(KeyFileError, match="not found"):
        verify(marked, keyring=[tmp_path / "missing.key"])
    for kw, fragment in (({"keyring": 5}, "keyring must be a list"), ({"settings": "home"}, "settings must be"),
                         ({"limits": "x"}, "limits must be a VerifyLimits")):
        with pytest.raises(InputError, match=fragment):
            verify(marked, **kw)


def test_mark_refuses_to_replace_its_own_input(tmp_path):
    """(`sign X X` signs X in place: its audio is unchanged and its earlier credentials become the
    new manifest's parent, ``test_c2pa.test_re_signing_keeps_the_history_of_a_sidecar_signed_file``.)"""
    settings = make_home(tmp_path / "home")
    src = tmp_path / "in.wav"
    write_audio(src, make_test_audio(48_000, 2, 6.0, seed=3))
    before = src.read_bytes()
    (tmp_path / "linked.wav").hardlink_to(src)  # one file under two names, as `watermark embed` sees it
    (tmp_path / "symlink.wav").symlink_to(src)
    for same in (src, tmp_path / "." / "in.wav", tmp_path / "linked.wav", tmp_path / "symlink.wav"):
        with pytest.raises(InputError, match="output is the input file"):
            mark(src, same, settings=settings)
    assert src.read_bytes() == before and (tmp_path / "symlink.wav").is_symlink()
    # nor the video a soundtrack was made for (it was replaced by the audio-only output)
    from tests.test_c2pa import make_video

    video = make_video(tmp_path / "film.mp4", make_test_audio(48_000, 2, 2.0, seed=4), with_audio=False)
    film = video.read_bytes()
    with pytest.raises(InputError, match="output is the source video"):
        mark(src, video, settings=settings, source_video=video)
    assert video.read_bytes() == film


def test_mark_and_sign_name_arguments_of_the_wrong_type(tmp_path):
    """Before: TypeError from pathlib, a c2pa JSON error for a title of 5, and `generated="no"`
    (truthy) disclosed the file as AI-generated."""
    settings = make_home(tmp_path / "home")
    src = tmp_path / "in.wav"
    write_audio(src, make_test_audio(48_000, 2, 6.0, seed=3))
    out = tmp_path / "out.wav"
    for call in (mark, sign):
        for args, kw, fragment in (
            ((None, out), {}, "input_path must be a file path"),
            ((src, None), {}, "output_path must be a file path"),
            ((3, out), {}, "input_path must be a file path"),
            ((src, out), {"generated": "no"}, "generated must be True or False, got 'no'"),
            ((src, out), {"title": 5}, "title must be text"),
        ):
            with pytest.raises(InputError, match=fragment):
                call(*args, settings=settings, **kw)
    with pytest.raises(InputError, match="include_prompts must be True or False"):
        mark(src, out, settings=settings, include_prompts="no")
    # past c2pa's size for a manifest definition: was c2pa's raw StringTooLong (exit 4, internal error)
    with pytest.raises(InputError, match=r"the manifest would be too large for C2PA \(\d+ bytes of JSON\): shorten"):
        sign(src, out, settings=settings, title="x" * 3_000_000)
    assert not out.exists()


def test_an_output_path_that_is_a_directory_is_named(tmp_path):
    (tmp_path / "d.wav").mkdir()
    with pytest.raises((InputError, OutputError), match="is a directory"):
        write_audio(tmp_path / "d.wav", make_test_audio(16_000, 1, 1.0))
    assert [p.name for p in tmp_path.iterdir()] == ["d.wav"]


@pytest.mark.parametrize(
    "kw, fragment",
    [({"seed": "abc"}, "seed"), ({"seed": -1}, "seed"), ({"seed": 2**32}, "seed"), ({"seed": 2**63}, "seed"),
     ({"seed": 2**64 + 1}, "seed"), ({"loudness_lufs": float("nan")}, "loudness"),
     ({"duration_s": 0}, "duration"), ({"duration_s": float("nan")}, "duration"), ({"duration_s": -1}, "duration")],
)
def test_generate_soundtrack_checks_its_numbers_first(tmp_path, kw, fragment):
    from v2a_core.pipeline import generate_soundtrack

    with pytest.raises(InputError, match=fragment):
        generate_soundtrack(tmp_path / "not-even-there.mp4", **kw)


def test_wrong_argument_types_are_named():
    from benchmarks.attacks import get_attack, parse_attacks
    from benchmarks.watermarkers import build_watermarkers
    from provenance.core.io import read_audio
    from provenance.watermark import detect

    audio = make_test_audio(48_000, 1, 6.0, seed=2)
    for threshold in (float("nan"), -1, 2, 0, None, "1e-6"):
        with pytest.raises(InputError, match="threshold is a p-value"):
            detect(audio, KEY, threshold=threshold)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="from a file path, not BytesIO"):
        read_audio(io.BytesIO(b"RIFF"))  # type: ignore[arg-type]
    with pytest.raises(InputError, match="named by a string"):
        get_attack(None)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="comma-separated names in a string"):
        parse_attacks(["mp3_64k"])  # type: ignore[arg-type]
    assert [w.name for w in build_watermarkers("lsb")] == ["lsb"]  # type: ignore[arg-type]


def test_detect_file_checks_its_threshold_as_detect_does(tmp_path):
    """detect_file passed any threshold on: 2 reported every file as marked, nan none."""
    from provenance.watermark.embed import check_strength
    from provenance.watermark.files import detect_file

    path = tmp_path / "a.wav"
    write_audio(path, make_test_audio(48_000, 1, 6.0, seed=2))
    for threshold in (float("nan"), -1, 2, 0, 1, float("inf")):
        with pytest.raises(InputError, match="threshold is a p-value"):
            detect_file(path, KEY, threshold=threshold)
    for strength in (float("nan"), 0.0, 2, True):
        with pytest.raises(InputError, match="strength"):
            check_strength(strength)


@pytest.mark.parametrize(
    "kw, fragment",
    [({"candidates": 1.5}, "candidates must be a whole number from 1 to 32"), ({"candidates": "2"}, "candidates"),
     ({"candidates": 0}, "candidates"), ({"candidates": 33}, "candidates"), ({"candidates": True}, "candidates"),
     ({"prompt": None}, "prompt must be text"), ({"negative_prompt": ["music"]}, "negative_prompt must be text"),
     ({"prompt": b"rain"}, "prompt must be text"), ({"include_prompts": "no"}, "include_prompts"),
     ({"stems_dir": 3}, "stems_dir must be a file path"), ({"cue_sheet_path": b"c.json"}, "cue_sheet_path"),
     ({"generator": None}, "generator must be text"), ({"seed": 2**40}, "seed")],
)
def test_generate_options_name_the_wrong_argument(kw, fragment):
    from v2a_core.pipeline import GenerateOptions

    with pytest.raises(InputError, match=fragment):
        GenerateOptions(**kw)


def test_generate_and_generate_soundtrack_check_their_arguments_first(tmp_path):
    from v2a_core.pipeline import GenerateOptions, generate, generate_soundtrack

    missing = tmp_path / "not-even-there.mp4"
    for kw, fragment in (({"prompt": None}, "prompt must be text"), ({"negative_prompt": 3}, "negative_prompt"),
                         ({"prompt": "rain", "generator": 1}, "generator")):
        with pytest.raises(InputError, match=fragment):
            generate_soundtrack(missing, **kw)
    for video in (None, 3):
        with pytest.raises(InputError, match="video must be a file path"):
            generate_soundtrack(video)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="options must be a GenerateOptions"):
        generate(missing, tmp_path / "o.wav", {"prompt": "rain"})  # type: ignore[arg-type]
    with pytest.raises(InputError, match="output must be a file path"):
        generate(missing, None)  # type: ignore[arg-type]
    assert GenerateOptions(stems_dir="s", cue_sheet_path="c.json").stems_dir == Path("s")
    assert list(tmp_path.iterdir()) == []


def test_a_path_like_that_gives_bytes_is_named_not_a_type_error(tmp_path):
    import os

    from v2a_core.pipeline import GenerateOptions

    class BytesPath(os.PathLike):
        def __fspath__(self) -> bytes:
            return os.fsencode(str(tmp_path / "cues.json"))

    with pytest.raises(InputError, match="cue_sheet_path must be a file path"):
        GenerateOptions(cue_sheet_path=BytesPath())


def test_dir_of_the_package_lists_its_lazy_exports():
    import foleyseal

    assert {"generate", "mark", "sign", "verify", "embed", "detect", "__version__"} <= set(dir(foleyseal))
