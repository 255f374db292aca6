"""The verification engine and the ``foleyseal verify`` command, on real marked files."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf

from detectors.report import Verdict, VerificationReport
from detectors.verify import Verifier, VerifyLimits, verify
from foleyseal.cli.verify import (
    EXIT_ERROR,
    EXIT_INVALID,
    EXIT_NO_EVIDENCE,
    EXIT_VALID,
    combined_exit_code,
    report_exit_code,
)
from tests import _verify_fixtures
from tests._verify_fixtures import SR, VerifyEnv, foley_host, settings_without_store, write_video_only
from tests._shared import audio_with_a_timestamp_jump, corpus_clip

# The session fixture, held by this module (which therefore builds its own): assigned, since an
# imported fixture reads to pyflakes as an unused import that each test's argument redefines.
verify_env = _verify_fixtures.verify_env

EXPECTED = {
    "marked_wav": Verdict.CREDENTIALS_VALID,
    "marked_mp4": Verdict.CREDENTIALS_VALID,
    "flipped_wav": Verdict.CREDENTIALS_TAMPERED,
    "flipped_mp4": Verdict.CREDENTIALS_TAMPERED,
    "mp3_64": Verdict.CREDENTIALS_RECOVERED_BY_WATERMARK,
    "opus": Verdict.CREDENTIALS_RECOVERED_BY_WATERMARK,
    "spliced": Verdict.PARTIALLY_MARKED,
    "unmarked": Verdict.NO_EVIDENCE,
    "untrusted": Verdict.CREDENTIALS_UNTRUSTED,
}


@pytest.fixture(scope="module")
def reports(verify_env: VerifyEnv) -> dict[str, VerificationReport]:
    with Verifier(verify_env.settings) as v:
        return {name: v.verify(verify_env.files[name]) for name in EXPECTED}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_verdict_is_reached_with_real_files(name: str, reports: dict[str, VerificationReport]) -> None:
    report = reports[name]
    assert report.verdict is EXPECTED[name], (name, report.verdict, report.notes, report.explanation)
    assert report.explanation and len(report.explanation) > 80
    # The JSON form is strict JSON (no NaN) and carries the verdict first-class.
    data = json.loads(report.to_json())
    assert data["verdict"] == EXPECTED[name].value
    assert data["title"] == EXPECTED[name].title


def test_valid_file_details(reports: dict[str, VerificationReport], verify_env: VerifyEnv) -> None:
    r = reports["marked_wav"]
    assert r.container is not None and r.container.format == "wav" and r.container.sample_rate == SR
    assert r.credentials.source == "embedded" and r.credentials.state == "Trusted"
    assert r.credentials.digital_source_type.endswith("trainedAlgorithmicMedia")
    assert r.credentials.generation_record["prompt"] == "a brook with water drops"
    wm = r.watermark[0]
    assert wm.found and wm.payloads[0] == verify_env.payload and wm.p_value < 1e-6
    assert wm.coverage > 0.9
    # The stored manifest validates against these exact bytes: a hard binding.
    assert [(m.record_id, m.binding) for m in r.store] == [(verify_env.record_id, "hard")]
    assert "AI-generated" in r.explanation
    mp4 = reports["marked_mp4"]
    assert mp4.container.has_video and mp4.container.format == "mp4"
    assert mp4.watermark[0].payloads[0] == verify_env.mp4_payload


def test_tampered_files_name_the_failure(reports: dict[str, VerificationReport]) -> None:
    assert "assertion.dataHash.mismatch" in reports["flipped_wav"].credentials.failure_codes
    assert "assertion.bmffHash.mismatch" in reports["flipped_mp4"].credentials.failure_codes
    for name in ("flipped_wav", "flipped_mp4"):
        r = reports[name]
        assert "do not validate" in r.explanation
        # The watermark still identifies the record, but only softly: the bytes changed.
        assert [m.binding for m in r.store] == ["soft"]


def test_reencoded_copies_resolve_through_the_soft_binding(
    reports: dict[str, VerificationReport], verify_env: VerifyEnv
) -> None:
    for name in ("mp3_64", "opus"):
        r = reports[name]
        assert not r.credentials.present
        assert r.watermark[0].payloads[0] == verify_env.payload
        assert [(m.record_id, m.binding) for m in r.store] == [(verify_env.record_id, "soft")]
        # The stored credentials are reported (they do not validate against the re-encode).
        assert r.store[0].credentials.present
        codes = r.store[0].credentials.failure_codes
        assert "assertion.dataHash.mismatch" in codes
        # c2pa reports that mismatch twice (two explanations); the report names each code once.
        assert len(codes) == len(set(codes)), codes


def test_splice_segments_within_half_a_second(reports: dict[str, VerificationReport], verify_env: VerifyEnv) -> None:
    r = reports["spliced"]
    segs = r.watermark[0].segments
    assert len(segs) == 1, segs
    start, end = verify_env.splice_span_s
    assert abs(segs[0].start_s - start) <= 0.5 and abs(segs[0].end_s - end) <= 0.5, segs
    assert 0.25 < r.watermark[0].coverage < 0.45
    assert "spliced" in r.explanation


def test_no_evidence_never_claims_human_origin(reports: dict[str, VerificationReport]) -> None:
    r = reports["unmarked"]
    assert not r.watermark[0].found and r.watermark[0].p_value > 1e-3
    assert r.store == []
    assert "does NOT mean the audio was made by a person" in r.explanation


def test_nothing_is_trusted_beyond_the_configuration(verify_env: VerifyEnv, tmp_path: Path) -> None:
    # A verifier whose configuration has no roots at all: FoleySeal's own files read "untrusted".
    bare = replace(
        verify_env.settings,
        root_cert_path=tmp_path / "absent-root.pem",
        trust_anchors=[],
        trust_list=None,
        store_url=f"sqlite:///{tmp_path / 'none.sqlite3'}",
    )
    r = verify(verify_env.files["marked_wav"], settings=bare)
    assert r.verdict is Verdict.CREDENTIALS_UNTRUSTED
    assert r.trust_anchors == 0
    assert "signingCredential.untrusted" in r.credentials.failure_codes
    # Adding the other chain's root as an extra anchor makes that signer trusted.
    other_root = verify_env.other_home / "keys" / "root-ca.pem"
    r = verify(verify_env.files["untrusted"], settings=verify_env.settings, trust_anchors=[other_root])
    assert r.verdict is Verdict.CREDENTIALS_VALID
    assert r.trust_anchors == 2


def test_without_a_key_or_store_the_report_says_what_was_not_checked(verify_env: VerifyEnv, tmp_path: Path) -> None:
    r = verify(verify_env.files["mp3_64"], settings=verify_env.settings, keyring=[])
    assert r.verdict is Verdict.NO_EVIDENCE and r.watermark == []
    assert "watermark was not checked" in r.explanation
    r = verify(verify_env.files["mp3_64"], settings=settings_without_store(verify_env))
    assert r.verdict is Verdict.WATERMARK_ONLY
    # a store is configured, but its database was never made (was: "No manifest store is configured")
    assert any(n.startswith("The manifest store has no database yet (none at") for n in r.notes), r.notes
    # A mark whose payload does not decode: the explanation's "(see the notes)" had no note.
    short = tmp_path / "short.wav"
    marked, rate = sf.read(verify_env.files["marked_wav"], dtype="float32")
    sf.write(short, marked[: rate * 2], rate)
    with Verifier(verify_env.settings, use_store=False) as v:
        r = v.verify(short)
    assert r.watermark[0].found and not r.watermark[0].payloads, r.watermark
    assert "see the notes" in r.explanation
    assert any("not used in this verification (--no-store)" in n for n in r.notes), r.notes
    # Verifying never creates a store on a machine that has none.
    assert not (verify_env.home / "absent.sqlite3").exists()


def test_an_unreadable_store_is_named_and_not_taken_for_an_empty_one(
    verify_env: VerifyEnv, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    broken = tmp_path / "manifests.sqlite3"
    broken.write_bytes(b"this is not a database\n" * 64)
    settings = replace(verify_env.settings, store_url=f"sqlite:///{broken}")
    r = verify(verify_env.files["mp3_64"], settings=settings)
    assert r.verdict is Verdict.WATERMARK_ONLY
    note = next(n for n in r.notes if "manifest store" in n)
    assert str(broken) in note and "not a database" in note, note
    assert "could not be read" in r.explanation and "has no record" not in r.explanation
    assert not [rec for rec in caplog.records if rec.exc_info], "an expected failure is a note, not a traceback"
    # Every file of a run names the same fault: the second one was told no store was configured.
    with Verifier(settings) as v:
        notes = [next(n for n in v.verify(verify_env.files[f]).notes if "manifest store" in n)
                 for f in ("mp3_64", "opus")]
    assert notes[0] == notes[1] and "not a database" in notes[1], notes
    # Without keys, decoding a second of audio to prove it decodes is not "analysing 1 s".
    r = verify(verify_env.files["mp3_64"], settings=settings, keyring=[])
    assert not any("Only the first" in n for n in r.notes), r.notes
    # A batch job gating on the exit code could not tell "no record" from "store down": 3 now.
    assert r.store_unavailable and r.to_dict()["store_unavailable"] is True
    assert report_exit_code(r.to_dict()) == EXIT_ERROR
    assert report_exit_code(verify(verify_env.files["mp3_64"], settings=verify_env.settings).to_dict()) == EXIT_VALID


def test_two_marked_outputs_joined_name_each_payload_and_record(
    verify_env: VerifyEnv, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from provenance.core.audio import Audio
    from provenance.core.io import read_audio, write_audio

    a, b = read_audio(verify_env.files["marked_wav"]), read_audio(verify_env.files["marked_mp4"])
    joined = tmp_path / "joined.wav"
    write_audio(joined, Audio(np.concatenate([a.samples, b.samples[:, : a.frames]], axis=1), a.sample_rate,
                              subtype="PCM_16"))
    r = verify(joined, settings=verify_env.settings)
    assert r.verdict is Verdict.CREDENTIALS_RECOVERED_BY_WATERMARK
    assert set(r.watermark[0].payloads) == {verify_env.payload, verify_env.mp4_payload}
    for payload in (verify_env.payload, verify_env.mp4_payload):
        assert payload in r.explanation
    assert verify_env.record_id in r.explanation and "2 different payloads" in r.explanation
    from foleyseal.cli import main

    monkeypatch.setenv("FOLEYSEAL_HOME", str(verify_env.home))
    with pytest.raises(SystemExit):
        main(["verify", str(joined)])
    out = capsys.readouterr().out
    assert f"({verify_env.payload})" in out and f"({verify_env.mp4_payload})" in out  # per span


def test_two_candidate_soundtracks_cut_at_one_position_name_each_record(
    tmp_path: Path, corpus_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `generate --candidates` gives soundtracks of one video marked with one key; an editor takes
    # the first candidate up to a scene change and the second after it. Both marks sit at the
    # same alignment and share their pilots: the first search read one run over both parts, its
    # decode failed, and the store's issued payloads named the whole file after the second
    # record (with these payloads; the first part's 6 s included).
    from provenance.core.audio import Audio
    from provenance.core.io import read_audio, write_audio
    from provenance.mark import mark

    settings = _verify_fixtures._init_home(tmp_path / "home", _verify_fixtures.FIXED_KEY)
    monkeypatch.setattr(_verify_fixtures, "FIRST_PAYLOADS", ("f282d3bc5b6877ce", "53947f7617f80183"))
    host = corpus_dir / "music_ambient_piano_choir.flac"
    with _verify_fixtures.seeded_payloads():
        one = mark(host, tmp_path / "one.wav", settings=settings, generated=True, title="one")
        two = mark(host, tmp_path / "two.wav", settings=settings, generated=True, title="two")
    a, b = read_audio(one.output), read_audio(two.output)
    cut = int(0.4 * a.frames)
    boundary = cut / a.sample_rate
    write_audio(tmp_path / "cut.wav", Audio(np.concatenate([a.samples[:, :cut], b.samples[:, cut:]], axis=1),
                                            a.sample_rate, subtype="PCM_16"))
    r = verify(tmp_path / "cut.wav", settings=settings)
    assert r.verdict is Verdict.CREDENTIALS_RECOVERED_BY_WATERMARK, r.explanation
    assert {m.record_id for m in r.store} == {one.record.id, two.record.id}
    (wm,) = r.watermark
    assert set(wm.payloads) == {one.payload, two.payload}
    assert all(s.end_s <= boundary + 0.5 for s in wm.segments if s.payload == one.payload), wm.segments
    assert all(s.start_s >= boundary - 0.5 for s in wm.segments if s.payload == two.payload), wm.segments


def test_two_marked_outputs_with_unmarked_audio_between_name_each_payload(verify_env: VerifyEnv, tmp_path: Path) -> None:
    from provenance.core.audio import Audio
    from provenance.core.io import read_audio, write_audio

    a, b = read_audio(verify_env.files["marked_wav"]), read_audio(verify_env.files["marked_mp4"])
    gap = foley_host(8.0, seed=7)  # unmarked audio of the same kind
    path = tmp_path / "a_gap_b.wav"
    write_audio(path, Audio(np.concatenate([a.samples, gap, b.samples[:, : a.frames]], axis=1), a.sample_rate,
                            subtype="PCM_16"))
    r = verify(path, settings=verify_env.settings)
    assert r.verdict is Verdict.PARTIALLY_MARKED, r.explanation
    assert set(r.watermark[0].payloads) == {verify_env.payload, verify_env.mp4_payload}
    for payload in (verify_env.payload, verify_env.mp4_payload):
        assert payload in r.explanation, r.explanation  # each payload with its spans and record
    assert verify_env.record_id in r.explanation and "2 different payloads" in r.explanation
    # Without a store nothing was looked up: no record is named, and none is said to be missing.
    with Verifier(verify_env.settings, use_store=False) as v:
        partial = v.verify(path)
        joined = tmp_path / "a_b.wav"
        write_audio(joined, Audio(np.concatenate([a.samples, b.samples[:, : a.frames]], axis=1), a.sample_rate,
                                  subtype="PCM_16"))
        whole = v.verify(joined)
    assert partial.verdict is Verdict.PARTIALLY_MARKED and whole.verdict is Verdict.WATERMARK_ONLY
    for r in (partial, whole):
        for payload in (verify_env.payload, verify_env.mp4_payload):
            assert payload in r.explanation, r.explanation
        assert "record" not in r.explanation.replace("no record was looked up", ""), r.explanation
    assert "has no manifest store" in whole.explanation, whole.explanation


def test_a_store_the_verifier_may_only_read_still_answers(verify_env: VerifyEnv, monkeypatch: pytest.MonkeyPatch) -> None:
    import sqlite3

    import provenance.store.repository as repository

    def readonly(cur: object) -> None:  # what SQLite answers a writer on a read-only medium
        raise sqlite3.OperationalError("attempt to write a readonly database")

    monkeypatch.setattr(repository, "_set_wal", readonly)
    r = verify(verify_env.files["mp3_64"], settings=verify_env.settings)
    assert r.verdict is Verdict.CREDENTIALS_RECOVERED_BY_WATERMARK and r.store[0].record_id == verify_env.record_id


def test_segments_are_on_the_files_timeline_when_the_audio_starts_late(verify_env: VerifyEnv, tmp_path: Path) -> None:
    import av

    from provenance.core.io import audio_info
    from provenance.watermark import load_key
    from provenance.watermark.files import detect_file

    # The audio track moved 1.5 s later against the picture by a remux (an A/V sync fix): the
    # audio's samples are unchanged; a player plays its first one 1.5 s into the file.
    src, late = verify_env.files["marked_mp4"], tmp_path / "late.mp4"
    with av.open(str(src)) as i, av.open(str(late), "w") as o:
        out = {s.index: o.add_stream_from_template(s) for s in i.streams if s.type in ("audio", "video")}
        for packet in i.demux():
            if packet.stream.index not in out or packet.dts is None:
                continue
            if packet.stream.type == "audio":
                shift = int(round(1.5 / packet.time_base))
                packet.pts += shift
                packet.dts += shift
            packet.stream = out[packet.stream.index]
            o.mux(packet)
    start = audio_info(late).start_s
    assert 1.4 < start < 1.55 and audio_info(src).start_s == 0.0
    with Verifier(verify_env.settings) as v:
        before, after = v.verify(src), v.verify(late)
    spans = [(s.start_s, s.end_s) for s in before.watermark[0].segments]
    moved = [(s.start_s, s.end_s) for s in after.watermark[0].segments]
    assert len(spans) == len(moved) == 1
    assert abs(moved[0][0] - (spans[0][0] + start)) < 0.1 and abs(moved[0][1] - (spans[0][1] + start)) < 0.1, (spans, moved)
    assert any("starts 1.4" in n or "starts 1.5" in n for n in after.notes), after.notes
    key = load_key(verify_env.settings.watermark_key_path)
    plain, shifted = detect_file(src, key).segments, detect_file(late, key).segments
    assert abs(shifted[0].start_s - (plain[0].start_s + start)) < 0.1 and abs(shifted[0].end_s - (plain[0].end_s + start)) < 0.1


def test_segments_after_a_hole_in_the_audio_stay_on_the_files_timeline(verify_env: VerifyEnv, tmp_path: Path) -> None:
    """Audio packets lost mid-file (a damaged download): the decoded samples were glued together,
    so every span after the hole was reported that much early and the hole was not said."""
    import re

    import av

    from provenance.core.audio import Audio
    from provenance.core.io import write_audio
    from provenance.watermark import embed, load_key

    from tests._verify_fixtures import SR, foley_host

    src, holed = tmp_path / "marked.mka", tmp_path / "holed.mka"
    key = load_key(verify_env.settings.watermark_key_path)
    write_audio(src, embed(Audio(foley_host(16.0, seed=5), SR), key, "0123456789abcdef"), bitrate_kbps=192)
    hole = (6.0, 9.5)
    with av.open(str(src)) as i, av.open(str(holed), "w") as o:
        out = {s.index: o.add_stream_from_template(s) for s in i.streams if s.type in ("audio", "video")}
        for packet in i.demux():
            if packet.stream.index not in out or packet.dts is None:
                continue
            if packet.stream.type == "audio" and hole[0] <= float(packet.pts * packet.time_base) < hole[1]:
                continue
            packet.stream = out[packet.stream.index]
            o.mux(packet)
    r = verify(holed, settings=verify_env.settings)
    spans = [(s.start_s, s.end_s) for s in r.watermark[0].segments]
    assert len(spans) == 2 and abs(spans[0][1] - hole[0]) < 0.6 and abs(spans[1][0] - hole[1]) < 0.6, spans
    assert spans[1][1] > 15.0, spans  # the mark runs to the end of the file, not 3.5 s before it
    note = next(n for n in r.notes if n.startswith("The audio track has no audio at"))
    start, end = (float(x) for x in re.search(r"at ([0-9.]+)-([0-9.]+) s of the file", note).groups())
    assert abs(start - hole[0]) < 0.1 and abs(end - hole[1]) < 0.1, note


def test_a_timestamp_jump_too_long_to_be_lost_audio_is_noted_not_filled(verify_env: VerifyEnv, tmp_path: Path) -> None:
    """One damaged timestamp 30 minutes on was filled with 30 minutes of silence (1.5 GB); it is
    noted as a jump and the audio after it read on as decoded, as mark refuses such a file."""
    from provenance.core.audio import Audio
    from provenance.core.io import write_audio
    from provenance.watermark import embed, load_key

    from tests._verify_fixtures import SR, foley_host

    src = tmp_path / "marked.mka"
    key = load_key(verify_env.settings.watermark_key_path)
    write_audio(src, embed(Audio(foley_host(12.0, seed=5), SR), key, "0123456789abcdef"), bitrate_kbps=192)
    leap = audio_with_a_timestamp_jump(src, tmp_path / "leap.mka", at_s=6.0, by_s=1800.0)
    r = verify(leap, settings=verify_env.settings)
    assert any("timestamps jump by 1800.0 s at 6.0" in n for n in r.notes), r.notes
    assert not any(n.startswith("The audio track has no audio at") for n in r.notes), r.notes
    assert r.watermark[0].found and r.watermark[0].analysed_s < 13.0, r.watermark[0]


def test_damage_in_a_file_without_timestamps_is_not_said_to_keep_the_times(verify_env: VerifyEnv,
                                                                          tmp_path: Path) -> None:
    """MP3 and raw ADTS AAC carry no timestamps: FFmpeg counts them from the frames it finds, so
    audio skipped while resynchronising after damage leaves no gap. The hole note said a 0.13 s
    hole where 1.2 s was lost, and that the times stay on the file's timeline; and an intact ADTS
    file was called truncated, against a length FFmpeg guesses from its first frames' bitrate."""
    from provenance.core.audio import Audio
    from provenance.core.io import write_audio
    from provenance.watermark import embed, load_key

    from tests._verify_fixtures import SR, foley_host

    key = load_key(verify_env.settings.watermark_key_path)
    marked = embed(Audio(foley_host(15.0, seed=6), SR), key, "0123456789abcdef")
    mp3, aac = tmp_path / "m.mp3", tmp_path / "m.aac"
    write_audio(mp3, marked, bitrate_kbps=192)
    quiet_start = marked.samples.copy()
    quiet_start[:, : 3 * SR] = 0.0  # the first frames take few bits: FFmpeg guessed 470 s from them
    write_audio(aac, Audio(quiet_start, SR))
    r = verify(aac, settings=verify_env.settings)
    assert r.watermark[0].found and not any("truncated" in n or "no audio at" in n for n in r.notes), r.notes
    data = bytearray(mp3.read_bytes())
    mid = len(data) * 45 // 100
    data[mid:mid + 30_000] = np.random.default_rng(1).integers(0, 256, 30_000, dtype=np.uint8).tobytes()
    damaged = tmp_path / "damaged.mp3"
    damaged.write_bytes(bytes(data))
    r = verify(damaged, settings=verify_env.settings)
    assert not any("no audio at" in n for n in r.notes), r.notes
    assert any("times after the damage may be early" in n for n in r.notes), r.notes


def test_a_short_file_whose_payload_does_not_decode_is_said_to_be_short_not_damaged(verify_env: VerifyEnv,
                                                                                   tmp_path: Path) -> None:
    """A freshly marked 1.5 s file: its payload "was too damaged to decode on its own", and without
    the store the report never said the file was shorter than the block that holds the payload."""
    from provenance.core.audio import Audio
    from provenance.core.io import write_audio
    from provenance.watermark import embed, load_key

    from tests._verify_fixtures import SR, foley_host, settings_without_store

    key = load_key(verify_env.settings.watermark_key_path)
    short = tmp_path / "short.flac"
    write_audio(short, embed(Audio(foley_host(1.5, seed=8), SR), key, "0123456789abcdef"))
    r = verify(short, settings=settings_without_store(verify_env))
    assert r.watermark[0].found and not r.watermark[0].payloads, r.watermark
    assert any(n.startswith("The audio is 1.50 s long, shorter than one 4.32 s watermark block") for n in r.notes), r.notes
    assert not any("damaged" in n for n in r.notes), r.notes


def test_stream_input_and_wrong_extension(verify_env: VerifyEnv, tmp_path: Path) -> None:
    data = verify_env.files["marked_wav"].read_bytes()
    r = verify(io.BytesIO(data), settings=verify_env.settings, name="upload.wav")
    assert r.verdict is Verdict.CREDENTIALS_VALID and r.file == "upload.wav"
    # A WAV named .mp3: the content decides, and the report says the name lies.
    liar = tmp_path / "really-a-wav.mp3"
    liar.write_bytes(data)
    r = verify(liar, settings=verify_env.settings)
    assert r.verdict is Verdict.CREDENTIALS_VALID
    assert r.container.extension_mismatch
    assert any("extension does not match" in n for n in r.notes)


def test_matroska_is_not_reported_as_webm(verify_env: VerifyEnv, tmp_path: Path) -> None:
    """FFmpeg has one demuxer for both; the report called mark's own H.264 + AAC .mkv output a
    WebM (video/webm, .webm), which cannot hold those codecs, with no extension mismatch."""
    import av

    from provenance.core.io import read_audio, write_audio

    mkv = tmp_path / "clip.mkv"
    with av.open(str(verify_env.files["marked_mp4"])) as src, av.open(str(mkv), "w") as dst:
        out = {s.index: dst.add_stream_from_template(s) for s in src.streams}
        for packet in src.demux():
            if packet.dts is not None:
                packet.stream = out[packet.stream.index]
                dst.mux(packet)
    c = verify(mkv, settings=verify_env.settings).container
    assert (c.format, c.mime_type, c.extension, c.extension_mismatch) == ("mkv", "video/x-matroska", ".mkv", False)
    webm = tmp_path / "clip.webm"
    write_audio(webm, read_audio(verify_env.files["marked_wav"]))
    c = verify(webm, settings=verify_env.settings).container
    assert (c.format, c.mime_type, c.extension) == ("webm", "audio/webm", ".webm")


def test_an_mpeg_transport_stream_is_read_and_its_copy_recovered(verify_env: VerifyEnv, tmp_path: Path) -> None:
    """Broadcast and HLS video comes as MPEG-TS; the verifier refused it as "not an audio or video
    file (content looks like 'MPEG-TS')". A marked output remuxed into a .ts is a copy whose
    credentials were dropped: the watermark recovers them, on the file's timeline."""
    import av

    ts = tmp_path / "broadcast.ts"
    with av.open(str(verify_env.files["marked_mp4"])) as src, av.open(str(ts), "w", format="mpegts") as dst:
        out = {s.index: dst.add_stream_from_template(s) for s in src.streams if s.type in ("audio", "video")}
        for packet in src.demux():
            if packet.dts is not None and packet.stream.index in out:
                packet.stream = out[packet.stream.index]
                dst.mux(packet)
    report = verify(ts, settings=verify_env.settings)
    c = report.container
    assert (c.format, c.mime_type, c.extension, c.extension_mismatch, c.has_video) == (
        "mpegts", "video/mp2t", ".ts", False, True)
    assert report.verdict is Verdict.CREDENTIALS_RECOVERED_BY_WATERMARK, report.explanation
    assert report.watermark[0].payloads[0] == verify_env.mp4_payload
    named = tmp_path / "broadcast.mp3"
    named.write_bytes(ts.read_bytes())
    assert verify(named, settings=verify_env.settings).container.extension_mismatch


def test_sidecar_and_detached_manifest(verify_env: VerifyEnv, tmp_path: Path) -> None:
    from provenance.mark import mark

    host = verify_env.files["unmarked"]
    res = mark(host, tmp_path / "clip.ogg", settings=verify_env.settings, generated=True)
    assert res.sidecar is not None
    r = verify(res.output, settings=verify_env.settings)
    assert r.verdict is Verdict.CREDENTIALS_VALID and r.credentials.source == "sidecar"
    # Without its sidecar the file is still byte-identical to the registered asset: the stored
    # (detached) manifest validates against it through the watermark.
    res.sidecar.unlink()
    r = verify(res.output, settings=verify_env.settings)
    assert r.verdict is Verdict.CREDENTIALS_VALID
    assert not r.credentials.present and r.store[0].binding == "hard"
    assert "manifest store" in r.explanation
    # The sidecar of another marked output beside these exact bytes: the credentials fail, and the
    # explanation says the audio is the registered output itself and the credentials another file's.
    other = mark(verify_env.files["marked_wav"], tmp_path / "other.ogg", settings=verify_env.settings, generated=True)
    shutil.copyfile(other.sidecar, tmp_path / "clip.ogg.c2pa")
    r = verify(res.output, settings=verify_env.settings)
    assert r.verdict is Verdict.CREDENTIALS_TAMPERED
    assert "the audio is unchanged" in r.explanation and "edited or corrupted after signing" not in r.explanation
    assert f"bind the watermark payload {other.payload}" in r.explanation, r.explanation


def test_a_sidecar_is_found_in_capitals_and_a_media_file_is_never_its_own(verify_env: VerifyEnv, tmp_path: Path) -> None:
    """``song.ogg.C2PA`` (as some Windows tools write it) was not found beside its media; and an
    unsigned WAV named ``clip.c2pa`` was read as its own ``clip.c2pa`` sidecar: a false
    credentials_tampered."""
    ogg = tmp_path / "song.ogg"
    shutil.copyfile(verify_env.files["signed_ogg"], ogg)
    shutil.copyfile(Path(str(verify_env.files["signed_ogg"]) + ".c2pa"), tmp_path / "song.ogg.C2PA")
    with Verifier(verify_env.settings, use_store=False) as v:  # the store alone would vouch for it
        r = v.verify(ogg)
    assert r.verdict is Verdict.CREDENTIALS_VALID and r.credentials.source == "sidecar", r.verdict
    media = tmp_path / "clip.c2pa"
    shutil.copyfile(verify_env.files["unmarked"], media)
    r = verify(media, settings=verify_env.settings)
    assert r.verdict is Verdict.NO_EVIDENCE and not r.credentials.present, (r.verdict, r.explanation)


def test_a_bare_manifest_is_an_error_that_says_what_it_is(
    verify_env: VerifyEnv, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A .c2pa sidecar verified on its own was read as its own sidecar and reported
    # credentials_tampered ("audio or manifest changed after signing"): it is no media at all.
    sidecar = Path(str(verify_env.files["signed_ogg"]) + ".c2pa")
    renamed = tmp_path / "clip.wav"  # judged by its bytes, not its name
    shutil.copyfile(sidecar, renamed)
    with Verifier(verify_env.settings) as v:
        for path in (sidecar, renamed):
            r = v.verify(path)
            assert r.verdict is Verdict.ERROR, (path.name, r.verdict, r.explanation)
            assert r.error == ("this file is a C2PA manifest (a sidecar), not audio or video: "
                               "verify the file it belongs to, with the sidecar beside it")
            assert r.sha256 and r.size_bytes == sidecar.stat().st_size
        r = v.verify(verify_env.files["signed_ogg"])  # the file it belongs to, the sidecar beside it
        assert r.verdict is Verdict.CREDENTIALS_VALID and r.credentials.source == "sidecar"
    rc, out = _cli(["verify", str(sidecar)], verify_env, capsys)
    assert rc == EXIT_ERROR == 3 and "C2PA manifest (a sidecar)" in out


def test_quiet_intro_is_not_a_splice(verify_env: VerifyEnv, tmp_path: Path) -> None:
    from provenance.core.audio import Audio
    from provenance.core.io import read_audio, write_audio

    marked = read_audio(verify_env.files["marked_wav"])
    silence = np.zeros((2, 5 * SR), np.float32)
    write_audio(tmp_path / "intro.wav", Audio(np.concatenate([silence, marked.samples], 1), SR, subtype="PCM_16"))
    r = verify(tmp_path / "intro.wav", settings=verify_env.settings)
    assert r.verdict is Verdict.CREDENTIALS_RECOVERED_BY_WATERMARK, (r.verdict, r.watermark)


def test_long_files_are_searched_window_by_window(verify_env: VerifyEnv, tmp_path: Path) -> None:
    """Small windows (as a 10-minute file gets) still find and place a mark in the middle."""
    from provenance.core.audio import Audio
    from provenance.core.io import read_audio, write_audio

    marked = read_audio(verify_env.files["marked_wav"])
    before, after = foley_host(17.0, seed=21), foley_host(13.0, seed=22)
    write_audio(tmp_path / "long.wav", Audio(np.concatenate([before, marked.samples, after], 1), SR, subtype="PCM_16"))
    limits = VerifyLimits(window_s=12.0, overlap_s=4.0)
    with Verifier(verify_env.settings, limits=limits, threads=2) as v:
        r = v.verify(tmp_path / "long.wav")
    assert r.verdict is Verdict.PARTIALLY_MARKED
    segs = r.watermark[0].segments
    assert len(segs) == 1 and abs(segs[0].start_s - 17.0) <= 0.5 and abs(segs[0].end_s - 25.0) <= 0.5, segs
    assert r.watermark[0].analysed_s == pytest.approx(38.0, abs=0.01)


def test_threads_finishing_out_of_order_give_the_same_report(
    verify_env: VerifyEnv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Windows are read on two threads. The speed/pitch search budget went to whichever
    window's thread asked first, and detections were collected as threads finished, so the
    same file could give another report (another window searched, sums in another order).
    Here the first window's thread is held back: the budget of one searched window still goes
    to the first window, and the windows are collected in the file's order."""
    import threading
    import time

    from provenance.core.audio import Audio
    from provenance.core.io import read_audio, write_audio

    from detectors import watermark_scan

    marked = read_audio(verify_env.files["marked_wav"])
    write_audio(tmp_path / "long.wav", Audio(np.concatenate([foley_host(16.0, seed=23), marked.samples], 1), SR,
                                             subtype="PCM_16"))
    first_read = threading.Event()
    reads: list[tuple[float, bool]] = []
    collected: list[float] = []
    read_window, read, collect = (watermark_scan._Scan.read_window, watermark_scan._Scan.read,
                                  watermark_scan._Scan.collect)

    def slow_first(self: Any, start: int, *args: Any) -> Any:
        if start == 0:
            first_read.wait(10.0)  # until another window has been read
            time.sleep(0.2)
        return read_window(self, start, *args)

    def recording_read(self: Any, s: Any, x: Any, offset_s: float, search: bool = True, whole: bool = True) -> Any:
        if whole:
            reads.append((offset_s, search))
        try:
            return read(self, s, x, offset_s, search, whole)
        finally:
            if offset_s > 0:
                first_read.set()

    def recording_collect(self: Any, results: Any) -> None:
        collected.extend(offset_s for _, _, offset_s in results)
        collect(self, results)

    monkeypatch.setattr(watermark_scan._Scan, "read_window", slow_first)
    monkeypatch.setattr(watermark_scan._Scan, "read", recording_read)
    monkeypatch.setattr(watermark_scan._Scan, "collect", recording_collect)
    limits = VerifyLimits(window_s=12.0, overlap_s=4.0, search_windows=1, refine_window_s=0.0)
    with Verifier(verify_env.settings, limits=limits, threads=2) as v:
        r = v.verify(tmp_path / "long.wav")
    assert r.watermark[0].found, r.watermark
    assert sorted(reads)[0] == (0.0, True) and not any(search for t, search in reads if t > 0), reads
    assert len(collected) >= 3 and collected == sorted(collected), collected


def test_the_issued_payload_budget_goes_to_windows_in_file_order(
    verify_env: VerifyEnv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The budget of windows matched against the store's issued payloads went to whichever
    window's thread asked first (like the search budget before it). Here the first window's
    thread is slow to ask, and the budget of one window still goes to the first window."""
    import time

    from provenance.core.audio import Audio
    from provenance.core.io import write_audio

    from detectors import watermark_scan

    write_audio(tmp_path / "long.wav", Audio(foley_host(24.0, seed=29), SR, subtype="PCM_16"))
    granted: list[float] = []

    def asking_read(self: Any, s: Any, x: Any, offset_s: float, search: bool = True, whole: bool = True) -> Any:
        if whole:
            if offset_s == 0:
                time.sleep(0.5)  # the other thread asks first
            if self.may_match():
                granted.append(offset_s)
        return None  # no detection: only the budget is looked at

    monkeypatch.setattr(watermark_scan._Scan, "read", asking_read)
    limits = VerifyLimits(window_s=12.0, overlap_s=4.0, issued_match_windows=1, refine_window_s=0.0)
    for _ in range(2):
        granted.clear()
        with Verifier(verify_env.settings, limits=limits, threads=2) as v:
            v.verify(tmp_path / "long.wav")
        assert granted == [0.0]


def test_a_sped_up_file_is_found_by_the_search_within_its_budget(verify_env: VerifyEnv, tmp_path: Path) -> None:
    """A marked file played 5 % faster and re-encoded (its C2PA data gone) still shows its mark
    and payload; with no window allowed to search, it does not."""
    from scipy.signal import resample_poly

    from provenance.core.audio import Audio
    from provenance.core.io import read_audio, write_audio

    marked = read_audio(verify_env.files["marked_wav"])
    faster = resample_poly(marked.samples, 20, 21, axis=-1).astype(np.float32)
    write_audio(tmp_path / "faster.flac", Audio(faster, SR))
    with Verifier(verify_env.settings) as v:
        r = v.verify(tmp_path / "faster.flac")
    wm = r.watermark[0]
    assert wm.found and wm.payloads, r.watermark
    # The report says what the search undid: 21/20 = 1.05 times the speed.
    assert abs(wm.speed - 1.05) < 0.01 and wm.to_dict()["speed"] == wm.speed, wm
    assert "undoing a tempo or pitch edit" in r.explanation and "1.05 times the speed" in r.explanation, r.explanation
    with Verifier(verify_env.settings, limits=VerifyLimits(search_windows=0)) as v:
        r0 = v.verify(tmp_path / "faster.flac")
    assert not r0.watermark[0].found


def _wav_bytes(samples: np.ndarray, rate: int) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, samples, rate, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def test_bad_input_gives_error_verdict_not_exception(verify_env: VerifyEnv, tmp_path: Path) -> None:
    cases = {
        "empty.wav": b"",
        "text.wav": b"hello world\n" * 50,
        "random.mp3": np.random.default_rng(0).bytes(4000),
    }
    # a WAV header claiming zero channels: libsndfile's message quoted the path as bytes,
    # "Error opening b'zero_channels.wav': Channel count is zero."
    wav = bytearray(_wav_bytes(np.zeros(8000, dtype=np.float32), 8000))
    wav[22:24] = (0).to_bytes(2, "little")
    cases["zero_channels.wav"] = bytes(wav)
    for name, data in cases.items():
        p = tmp_path / name
        p.write_bytes(data)
        r = verify(p, settings=verify_env.settings)
        assert r.verdict is Verdict.ERROR, (name, r.verdict)
        assert r.error and name in r.file
        assert "b'" not in r.error + " ".join(r.notes) and "Errno" not in r.error, (r.error, r.notes)
        assert r.explanation.startswith("The file could not be examined")
        assert ".." not in r.explanation, r.explanation  # FFmpeg's message ends in a full stop of its own
    r = verify(tmp_path / "missing.wav", settings=verify_env.settings)
    assert r.verdict is Verdict.ERROR and "cannot" in r.error
    # not "check that it is an audio file": there is no file
    assert r.explanation.endswith("Check the path: it must name a readable audio or video file."), r.explanation


def test_a_file_cut_short_is_read_as_far_as_it_decodes_and_says_so(
    verify_env: VerifyEnv, reports: dict[str, VerificationReport], tmp_path: Path
) -> None:
    # The re-encoded MP3 cut to 70 % of its bytes: the mark in what is left still finds the
    # credentials, and a note says the file is shorter than its header declares.
    assert not any("header declares" in n for n in reports["mp3_64"].notes)
    data = verify_env.files["mp3_64"].read_bytes()
    cut = tmp_path / "cut.mp3"
    cut.write_bytes(data[: int(0.7 * len(data))])
    r = verify(cut, settings=verify_env.settings)
    assert r.verdict is Verdict.CREDENTIALS_RECOVERED_BY_WATERMARK, r.notes
    (note,) = [n for n in r.notes if "header declares" in n]
    assert "truncated or damaged" in note


def test_a_manifest_the_reader_no_longer_finds_is_noted(verify_env: VerifyEnv, tmp_path: Path) -> None:
    """A signed WAV whose data chunk claims 100 bytes more: the reader takes the C2PA chunk for
    audio, and the credentials vanished from the report without a word."""
    import struct

    data = bytearray(verify_env.files["marked_wav"].read_bytes())
    at = data.find(b"data")
    (size,) = struct.unpack("<I", data[at + 4 : at + 8])
    data[at + 4 : at + 8] = struct.pack("<I", size + 100)
    edited = tmp_path / "edited.wav"
    edited.write_bytes(bytes(data))
    r = verify(edited, settings=verify_env.settings)
    assert not r.credentials.present
    assert any("contains the bytes of a C2PA manifest" in n for n in r.notes), r.notes
    assert not any("C2PA manifest" in n for n in verify(verify_env.files["mp3_64"], settings=verify_env.settings).notes)


@pytest.mark.parametrize("damage", ["cut", "flipped"])
def test_a_damaged_flac_is_read_past_the_damage(verify_env: VerifyEnv, tmp_path: Path, damage: str) -> None:
    """libsndfile gives up on a FLAC frame that lost sync (a file cut short, bytes changed in
    transit), and the verifier used to report an error without reading the watermark at all;
    FFmpeg's decoder skips the damaged frame, as players do."""
    audio, rate = sf.read(verify_env.files["marked_wav"], dtype="float32")
    flac = tmp_path / "clean.flac"
    sf.write(flac, audio, rate)
    data = bytearray(flac.read_bytes())
    if damage == "cut":
        data = data[: len(data) * 6 // 10]
    else:
        middle = len(data) // 2
        data[middle : middle + 40] = bytes(b ^ 0xFF for b in data[middle : middle + 40])
    damaged = tmp_path / f"{damage}.flac"
    damaged.write_bytes(bytes(data))
    r = verify(damaged, settings=verify_env.settings)
    assert r.verdict is Verdict.CREDENTIALS_RECOVERED_BY_WATERMARK, (r.error, r.notes)
    assert r.watermark[0].found and r.watermark[0].payloads[0] == verify_env.payload
    assert any("corrupt audio" in n for n in r.notes), r.notes


def test_a_file_name_that_is_not_utf8_is_read_like_any_other(verify_env: VerifyEnv, tmp_path: Path) -> None:
    """A Latin-1 name from an old archive reaches Python with a lone surrogate, which
    libsndfile's path encoding refused: the audio was never read."""
    name = tmp_path / os.fsdecode(b"caf\xe9.wav")
    name.write_bytes(verify_env.files["marked_wav"].read_bytes())
    r = verify(name, settings=verify_env.settings)
    assert r.verdict is Verdict.CREDENTIALS_VALID, (r.error, r.notes)
    assert r.watermark[0].found and r.watermark[0].payloads[0] == verify_env.payload


def test_audio_too_short_to_hold_a_findable_mark_says_so(verify_env: VerifyEnv, tmp_path: Path) -> None:
    """0.05 s of audio got a plain `no_evidence`, "no FoleySeal watermark was detected", as if it
    had been examined like any other file; the detector needs about a second to find a mark."""
    noise = (0.1 * np.random.default_rng(8).standard_normal(48_000 * 2)).astype(np.float32)
    for frames, noted in ((1, True), (2_400, True), (96_000, False)):
        path = tmp_path / f"short{frames}.wav"
        sf.write(path, noise[:frames], 48_000)
        r = verify(path, settings=verify_env.settings)
        assert r.verdict is Verdict.NO_EVIDENCE
        assert any(f"only {frames} samples" in n and "too short for a watermark to be found" in n
                   for n in r.notes) is noted, r.notes
    # a marked excerpt long enough to be found gets no such note
    marked, rate = sf.read(verify_env.files["marked_wav"], dtype="float32")
    path = tmp_path / "excerpt.wav"
    sf.write(path, marked[: int(3.0 * rate)], rate)
    r = verify(path, settings=verify_env.settings)
    assert r.watermark[0].found and not any("too short" in n for n in r.notes), r.notes


def test_a_video_without_audio_is_described_and_its_credentials_read(verify_env: VerifyEnv, tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """A video with no audio track got `container: null` (no format, duration or streams), even
    when it was signed and its credentials valid; the service then answered /matches/byContent
    with 415 "invalid asset type" for an MP4 it had recognised."""
    silent = tmp_path / "silent.mp4"
    write_video_only(silent, 3.0)
    r = verify(silent, settings=verify_env.settings)
    assert r.verdict is Verdict.ERROR and r.error == "has no audio track"
    assert r.container is not None and r.container.format == "mp4" and r.container.has_video
    assert not r.container.has_audio and r.container.codec is None and r.container.duration_s == pytest.approx(3.0, abs=0.2)
    assert r.watermark == []
    signed = tmp_path / "signed.mp4"
    rc, said = _cli(["sign", str(silent), str(signed)], verify_env, capsys)
    assert rc == 0, said
    rc, said = _cli(["verify", str(signed)], verify_env, capsys)
    assert rc == 0 and "credentials_valid" in said and "container: mp4 3.0 s, no audio, with video" in said, said
    r = verify(signed, settings=verify_env.settings)
    assert r.verdict is Verdict.CREDENTIALS_VALID and r.container.format == "mp4"
    assert "Container: has no audio track" in r.notes


def test_an_mp4_cut_short_before_its_index_is_said_to_be(tmp_path: Path) -> None:
    """An MP4 whose index (moov) was never written, a download cut short, read "not a recognised
    audio or video file"; its header says what it is, and the likely cause is given."""
    video = Path(__file__).resolve().parents[1] / "examples" / "ball_bounce.mp4"
    cut = tmp_path / "download.mp4"
    cut.write_bytes(video.read_bytes()[:20_000])
    r = verify(cut, keyring=[])
    assert r.verdict is Verdict.ERROR
    assert r.error.startswith("starts like an MP4 or MOV file") and "cut short" in r.error, r.error
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00" * 20_000)
    assert verify(junk, keyring=[]).error.startswith("not a recognised audio or video file")


def test_time_limit_is_enforced(verify_env: VerifyEnv) -> None:
    with Verifier(verify_env.settings, limits=VerifyLimits(time_limit_s=1e-4)) as v:
        r = v.verify(verify_env.files["spliced"])
    assert r.verdict is Verdict.ERROR and "time limit" in r.error
    assert "--time-limit" in r.explanation and "audio file" not in r.explanation, r.explanation


def test_the_time_limit_reaches_into_the_watermark_search(verify_env: VerifyEnv, monkeypatch: pytest.MonkeyPatch) -> None:
    """The limit was checked between analysis windows only, and one window's speed/pitch search
    takes seconds: a 1 s limit ended a 10-minute file's verification after 9-11 s. The detector
    now calls the caller's checkpoint inside its search, and a report cut short by the limit
    keeps the size, hash and container already found (they were dropped)."""
    from provenance.core.audio import Audio
    from provenance.watermark import detect
    from provenance.watermark.keys import new_key

    class Stop(Exception):
        pass

    calls = []

    def checkpoint() -> None:
        calls.append(1)
        if len(calls) == 5:
            raise Stop()

    noise = (0.1 * np.random.default_rng(3).standard_normal(16_000 * 40)).astype(np.float32)
    with pytest.raises(Stop):
        detect(Audio(noise[np.newaxis, :], 16_000), new_key(), checkpoint=checkpoint)
    assert len(calls) == 5
    assert not detect(Audio(noise[np.newaxis, :], 16_000), new_key(), search=False, checkpoint=checkpoint).found

    from detectors.decode import DeadlineExceeded

    def out_of_time(*args: object, **kwargs: object) -> None:
        raise DeadlineExceeded("verification exceeded its time limit while searching the watermark")

    monkeypatch.setattr(Verifier, "_check_watermark", out_of_time)
    path = verify_env.files["mp3_64"]
    r = verify(path, settings=verify_env.settings)
    assert r.verdict is Verdict.ERROR and "time limit" in r.error
    assert r.size_bytes == path.stat().st_size and r.sha256 and r.container is not None
    assert r.container.sample_rate > 0


@pytest.mark.parametrize(("name", "verdict"), [("marked_wav", Verdict.CREDENTIALS_VALID),
                                               ("flipped_wav", Verdict.CREDENTIALS_TAMPERED)])
def test_credentials_checked_before_the_time_limit_still_give_the_verdict(
    verify_env: VerifyEnv, monkeypatch: pytest.MonkeyPatch, name: str, verdict: Verdict
) -> None:
    """A signed file whose watermark search ran out of time read `error`, its credentials,
    already validated and deciding the verdict whatever the watermark holds, dropped."""
    from detectors.decode import DeadlineExceeded

    def out_of_time(*args: object, **kwargs: object) -> None:
        raise DeadlineExceeded("verification exceeded its time limit while searching the watermark")

    monkeypatch.setattr(Verifier, "_check_watermark", out_of_time)
    r = verify(verify_env.files[name], settings=verify_env.settings)
    assert r.verdict is verdict and r.credentials is not None and r.credentials.present, (r.verdict, r.error)
    assert r.watermark == [] and r.error is None
    note = next(n for n in r.notes if "time limit" in n)
    assert note.startswith("Verification exceeded its time limit while searching the watermark: the watermark and "
                           "the manifest store were not checked"), note
    assert "--time-limit" in note


# --- CLI ----------------------------------------------------------------------------------


def _cli(args: list[str], env: VerifyEnv, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """Run the console entry point in-process (with its central error handling)."""
    from foleyseal.cli import main

    old = os.environ.get("FOLEYSEAL_HOME")
    os.environ["FOLEYSEAL_HOME"] = str(env.home)
    capsys.readouterr()
    try:
        main(args)
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    finally:
        if old is None:
            os.environ.pop("FOLEYSEAL_HOME", None)
        else:
            os.environ["FOLEYSEAL_HOME"] = old
    cap = capsys.readouterr()
    return code, cap.out + cap.err


def test_cli_exit_codes_per_verdict(verify_env: VerifyEnv, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = verify_env.files
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"not audio at all" * 10)
    cases = [
        (f["marked_wav"], EXIT_VALID),
        (f["mp3_64"], EXIT_VALID),
        (f["unmarked"], EXIT_NO_EVIDENCE),
        (f["flipped_wav"], EXIT_INVALID),
        (f["untrusted"], EXIT_INVALID),
        (junk, EXIT_ERROR),
    ]
    for path, code in cases:
        rc, out = _cli(["verify", "--json", str(path)], verify_env, capsys)
        assert rc == code, (path.name, rc, out)
        report = json.loads(out.strip().splitlines()[-1])
        assert report["file"] == str(path)
    assert combined_exit_code(["credentials_valid", "no_evidence"]) == EXIT_NO_EVIDENCE
    assert combined_exit_code(["no_evidence", "error", "credentials_tampered"]) == EXIT_INVALID
    assert EXIT_NO_EVIDENCE != 2 and EXIT_INVALID != 2  # 2 stays the parser's usage error


def test_cli_text_summary_and_trust_option(verify_env: VerifyEnv, capsys: pytest.CaptureFixture[str]) -> None:
    rc, out = _cli(["verify", str(verify_env.files["spliced"])], verify_env, capsys)
    assert rc == EXIT_VALID
    first = out.splitlines()[0]
    assert first.startswith("partially_marked") and "spliced.wav" in first
    assert "segments" in out and "store: record" in out
    other_root = verify_env.other_home / "keys" / "root-ca.pem"
    rc, out = _cli(["verify", "--trust-anchors", str(other_root), str(verify_env.files["untrusted"])], verify_env, capsys)
    assert rc == EXIT_VALID and out.startswith("credentials_valid")
    rc, out = _cli(["verify", "--trust-anchors", str(verify_env.files["unmarked"]), str(verify_env.files["untrusted"])], verify_env, capsys)
    assert rc == 3 and "PEM" in out  # a bad anchor file is a configuration error, named


def test_cli_text_says_how_many_segments_it_leaves_out_and_where_the_mark_ends(
    verify_env: VerifyEnv, capsys: pytest.CaptureFixture[str]
) -> None:
    """The text listed a long file's first 6 segments and no more: a 10-minute file marked to its
    end read as marked up to 504.6 s."""
    from rich.console import Console

    from foleyseal.cli.verify import _summary

    with Verifier(verify_env.settings) as v:
        report = v.verify(verify_env.files["marked_wav"]).to_dict()
    w = report["watermark"][0]
    w["segments"] = [{**w["segments"][0], "start_s": 75.0 * i, "end_s": 75.0 * i + 74.5} for i in range(8)]
    w["p_value"] = 0.0  # a mark read over minutes of audio underflows: it read "p=0", a certainty
    _summary(report, Console(width=400))
    out = capsys.readouterr().out
    assert "375.0-449.5 s and 2 more, the last ending at 599.5 s" in out, out
    assert "found, p=<1e-300, payload" in out, out


def test_cli_walks_directories(verify_env: VerifyEnv, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d = tmp_path / "tree"
    (d / "sub").mkdir(parents=True)
    (d / ".hidden").mkdir()
    shutil.copy(verify_env.files["marked_wav"], d / "a.wav")
    shutil.copy(verify_env.files["unmarked"], d / "sub" / "b.wav")
    (d / "a.c2pa").write_bytes(b"sidecars are skipped")
    (d / ".hidden" / "c.wav").write_bytes(b"hidden files are skipped")
    # what the generator writes beside its outputs: named one by one they are examined, not in a walk
    (d / "a.cues.json").write_text('{"cues": []}')
    (d / "notes.txt").write_text("take 3")
    (d / "sub" / "sonic-pi-samples.copyright").write_text("Format: https://www.debian.org/...")
    (d / "make_clips.py").write_text("print('made')")
    rc, out = _cli(["verify", "--json", str(d)], verify_env, capsys)
    lines = [json.loads(line) for line in out.strip().splitlines()]
    assert [Path(x["file"]).name for x in lines] == ["a.wav", "b.wav"]
    assert [x["verdict"] for x in lines] == ["credentials_valid", "no_evidence"]
    assert rc == EXIT_NO_EVIDENCE
    # A folder with nothing to verify is named, with what was skipped (it said "no files to verify").
    (tmp_path / "texts").mkdir()
    (tmp_path / "texts" / "notes.txt").write_text("take 4")
    rc, out = _cli(["verify", str(tmp_path / "texts")], verify_env, capsys)
    assert rc == EXIT_ERROR and f"error: {tmp_path / 'texts'}: no files to verify: hidden files" in out, out
    assert len(out.strip().splitlines()) == 1, out  # was wrapped at 80 columns, without "error:"
    # with --json, the error object on stdout, as for every other exit 3 (stdout was empty)
    capsys.readouterr()
    with pytest.raises(SystemExit):
        from foleyseal.cli import main

        main(["verify", "--json", str(tmp_path / "texts")])
    error = json.loads(capsys.readouterr().out)
    assert error["exit_code"] == EXIT_ERROR and error["file"] == str(tmp_path / "texts")
    assert error["error"].startswith("no files to verify")
    # A newline in a name is shown as \n: one file, one line.
    shutil.copy(verify_env.files["unmarked"], d / "two\nlines.wav")
    rc, out = _cli(["verify", str(d / "two\nlines.wav")], verify_env, capsys)
    assert out.splitlines()[0].endswith("two\\nlines.wav"), out


def test_cli_as_a_real_process(verify_env: VerifyEnv) -> None:
    """Two real subprocess runs: the console entry point, stdout JSON, exit codes."""
    code = "import sys; from foleyseal.cli import main; main(sys.argv[1:])"
    env = verify_env.env()
    env["TMPDIR"] = tempfile.mkdtemp(prefix="verify-cli-tmp-")
    p = subprocess.run(
        [sys.executable, "-c", code, "verify", "--json", str(verify_env.files["flipped_mp4"])],
        capture_output=True, text=True, env=env, timeout=120, cwd=Path(__file__).resolve().parents[1],
    )
    assert p.returncode == EXIT_INVALID, p.stderr
    assert json.loads(p.stdout)["verdict"] == "credentials_tampered"
    p = subprocess.run(
        [sys.executable, "-c", code, "verify", str(Path(env["TMPDIR"]) / "nope.wav")],
        capture_output=True, text=True, env=env, timeout=120, cwd=Path(__file__).resolve().parents[1],
    )
    assert p.returncode == EXIT_ERROR and p.stdout.startswith("error")
    assert os.listdir(env["TMPDIR"]) == []  # nothing left in the temporary directory
    os.rmdir(env["TMPDIR"])


@pytest.mark.parametrize("json_out", [False, True])
def test_a_reader_that_goes_away_is_not_taken_for_no_evidence(verify_env: VerifyEnv, json_out: bool) -> None:
    """``verify a b | head -n 1``: rich (text) and click (JSON) exited 1 when the pipe closed,
    which is "no evidence" to a script under ``set -o pipefail``; a valid file's run must not say
    that. It exits as a process killed by SIGPIPE does."""
    code = "import sys; from foleyseal.cli import main; main(sys.argv[1:])"
    files = [str(verify_env.files["marked_wav"])] * 3
    p = subprocess.Popen(
        [sys.executable, "-c", code, "verify", *(["--json"] if json_out else []), *files],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=verify_env.env(),
        cwd=Path(__file__).resolve().parents[1],
    )
    assert p.stdout is not None and p.stderr is not None
    first = p.stdout.readline()
    p.stdout.close()  # before the second report: verifying it takes far longer than this
    err = p.stderr.read()
    assert p.wait(timeout=120) == 141, err
    assert b"credentials_valid" in first and b"Traceback" not in err, err


def _marked_then_attacked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clip_name: str, title: str, payload: str, attack: str,
    seed: int,
) -> tuple[Any, Any, Path]:
    """Mark a corpus clip through a test home (FIXED_KEY) whose store issues ``payload``, apply a
    registered attack with ``seed``, and write the result as 24-bit WAV. Returns (settings, the
    mark result, the attacked file)."""
    from benchmarks.attacks.registry import get_attack
    from provenance.core.audio import Audio
    from provenance.core.io import read_audio, write_audio
    from provenance.mark import mark
    from provenance.store.repository import ManifestStore
    from tests._verify_fixtures import FIXED_KEY, _init_home

    def fixed_payload(self: ManifestStore, record_id: str, algorithm: str, *, attempts: int = 16) -> str:
        self.reserve(record_id, algorithm, payload)
        return payload

    monkeypatch.setattr(ManifestStore, "reserve_payload", fixed_payload)
    settings = _init_home(tmp_path / "home", FIXED_KEY)
    clip = corpus_clip(clip_name)
    res = mark(clip, tmp_path / "marked.wav", settings=settings, generated=True, title=title)
    assert res.payload == payload
    attacked = get_attack(attack).run(read_audio(res.output), np.random.default_rng(seed)).audio
    out = tmp_path / "attacked.wav"
    write_audio(out, Audio(attacked.samples, attacked.sample_rate, subtype="PCM_24"))
    return settings, res, out


def test_a_damaged_sparse_file_gets_its_credentials_through_the_issued_payloads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The impacts clip is 61 % digital silence, so its mark holds few repetitions of each coded
    bit; high-passed at 500 Hz, the mark is still found but its payload no longer decodes on its
    own. The verifier matches it against the store's issued payloads and recovers the record."""
    payload = "1032547698badcfe"  # with FIXED_KEY: found, undecodable, in the long list (test_watermark_known)
    settings, res, attacked = _marked_then_attacked(
        tmp_path, monkeypatch, "foley_impacts_24bit.wav", "impacts", payload, "highpass_500", seed=0)

    with Verifier(settings) as v:
        r = v.verify(attacked)
    assert r.verdict is Verdict.CREDENTIALS_RECOVERED_BY_WATERMARK
    assert r.watermark[0].found and r.watermark[0].payloads == (payload,)
    assert [(m.record_id, m.binding) for m in r.store] == [(res.record.id, "soft")]
    assert any("named by matching against the payloads the manifest store has issued" in n for n in r.notes)

    # Without the match (no window allowed to try it) the same file names no payload.
    with Verifier(settings, limits=VerifyLimits(issued_match_windows=0)) as v:
        r = v.verify(attacked)
    assert r.verdict is Verdict.WATERMARK_ONLY
    assert r.watermark[0].found and r.watermark[0].payloads == ()


def test_a_mark_buried_in_noise_is_confirmed_and_named_by_the_issued_payloads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """13 s of speech under white noise at 20 dB SNR: the presence test alone misses the mark
    (p ~ 6e-6 against the 1e-6 threshold). The issued payload's codeword correlates with the soft
    values well beyond what any of a million random records could (z ~ 7.8), which confirms the
    mark and names its record."""
    payload = "489735e63ecc15ff"  # with FIXED_KEY and this noise: not found alone, matched by correlation
    settings, res, noisy = _marked_then_attacked(
        tmp_path, monkeypatch, "speech_female_48k_mono_channel_names.flac", "speech", payload, "noise_white_20db",
        seed=0)

    with Verifier(settings, limits=VerifyLimits(issued_match_windows=0)) as v:
        alone = v.verify(noisy)
    assert not alone.watermark[0].found

    with Verifier(settings) as v:
        r = v.verify(noisy)
    assert r.verdict is Verdict.CREDENTIALS_RECOVERED_BY_WATERMARK
    assert r.watermark[0].found and r.watermark[0].payloads == (payload,)
    assert r.watermark[0].p_value <= 1e-6 and r.watermark[0].store_confirmed
    assert r.to_dict()["watermark"][0]["store_confirmed"] is True
    assert [(m.record_id, m.binding) for m in r.store] == [(res.record.id, "soft")]
    assert any("named by matching against the payloads the manifest store has issued" in n for n in r.notes)


def test_a_mark_the_presence_test_missed_by_far_is_confirmed_by_a_strong_correlation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sparse impacts clip after Opus at 16 kbps: the pilots are too weak for the presence
    test (p ~ 0.02, far from the 1e-6 threshold and beyond what a match can confirm through the
    confirmed route, 1e-3), but the issued payload's codeword correlates at z ~ 7.6. Against the
    store's listed payloads, that correlation's bound times the presence p-value confirms the
    mark (the matched route) and names its record."""
    payload = "b69e1fba8bb33900"  # with FIXED_KEY and this attack: presence p 0.017, matched
    settings, res, damaged = _marked_then_attacked(
        tmp_path, monkeypatch, "foley_impacts_24bit.wav", "impacts", payload, "opus_16k", seed=0)

    with Verifier(settings, limits=VerifyLimits(issued_match_windows=0)) as v:
        alone = v.verify(damaged)
    assert not alone.watermark[0].found and alone.watermark[0].p_value > 1e-3

    with Verifier(settings) as v:
        r = v.verify(damaged)
    assert r.verdict is Verdict.CREDENTIALS_RECOVERED_BY_WATERMARK
    assert r.watermark[0].found and r.watermark[0].payloads == (payload,)
    assert r.watermark[0].p_value <= 1e-6 and r.watermark[0].store_confirmed
    assert [(m.record_id, m.binding) for m in r.store] == [(res.record.id, "soft")]


def test_times_in_the_explanation_carry_into_the_minute():
    """A segment from 3599.98 s to 5399.96 s read "59:60.0-89:60.0"."""
    from detectors.report import WatermarkResult, explain
    from provenance.core.results import Segment

    mark = WatermarkResult(key_id="ab12cd34", found=True, p_value=1e-30, payloads=("0123456789abcdef",),
                           segments=(Segment(3599.98, 5399.96, "0123456789abcdef", 0.0),), analysed_s=7200.0,
                           coverage=0.25, windows=120)
    text = explain(Verdict.PARTIALLY_MARKED, watermark=[mark])
    assert "60:00.0-90:00.0" in text, text


def test_two_marks_read_in_the_same_stretch_are_said_to_be_layered():
    """A mix of two marked outputs (both audible throughout) was explained as pieces "spliced or
    edited together", its overlapping segments as if they were pieces; a real splice still is."""
    from detectors.report import WatermarkResult, explain
    from provenance.core.results import Segment

    a, b = "0370be38c8cc0bde", "1f6f62c0cc335e62"

    def text(*spans: tuple[float, float, str]) -> str:
        mark = WatermarkResult(key_id="ab12cd34", found=True, p_value=1e-21, payloads=(a, b),
                               segments=tuple(Segment(s, e, p, 1e-9) for s, e, p in spans), analysed_s=30.0,
                               coverage=0.9, windows=10)
        return explain(Verdict.CREDENTIALS_RECOVERED_BY_WATERMARK, watermark=[mark], store=[])

    mixed = text((2.6, 3.6, b), (3.0, 4.4, a), (7.5, 9.2, b))
    assert "layered (mixed together)" in mixed and "spliced" not in mixed, mixed
    spliced = text((0.0, 14.96, a), (15.04, 29.98, b))
    assert "spliced or edited together" in spliced and "layered" not in spliced, spliced
    # edges are placed within about half a second: that much overlap is still a splice
    assert "layered" not in text((0.0, 15.3, a), (14.9, 29.98, b))


def test_the_verifier_reads_the_default_audio_track_as_every_reader_does(verify_env: VerifyEnv, tmp_path) -> None:
    """A film whose first audio track is silent and whose second is the default: `mark` and
    `watermark detect` read the default one, and the verifier read the first (no evidence for
    a file the read-back had confirmed)."""
    from provenance.core.audio import Audio
    from provenance.core.io import main_audio_track
    from provenance.watermark.files import embed_file
    from tests._multitrack import Track, multitrack_video

    silent = Audio(np.zeros((2, 10 * SR), np.float32), SR)
    film = multitrack_video(tmp_path / "film.mkv", [Track(silent, "eng", "Silence", False),
                                                   Track(Audio(foley_host(10.0), SR), "fra", "Main", True)], seconds=10.0)
    assert main_audio_track(film) == 1
    marked = embed_file(film, tmp_path / "marked.mkv", verify_env.settings.watermark_key_path, "0123456789abcdef")
    with Verifier(settings_without_store(verify_env)) as v:
        report = v.verify(marked)
    assert report.watermark[0].found and report.watermark[0].payloads == ("0123456789abcdef",), report.watermark
    assert report.container.channels == 2
    assert any("2 audio tracks; the watermark was read from track 1" in n for n in report.notes), report.notes


def test_progress_follows_the_share_of_audio_read(verify_env: VerifyEnv) -> None:
    shares: list[float] = []
    with Verifier(settings_without_store(verify_env)) as v:
        report = v.verify(verify_env.files["marked_wav"], progress=shares.append)
    assert report.verdict is not Verdict.ERROR
    assert shares and shares[-1] == 1.0 and shares == sorted(shares) and 0.0 <= shares[0] <= 1.0


def test_credentials_that_hide_ai_generation_are_contradicted_by_the_watermarks_record(
        verify_env: VerifyEnv, tmp_path: Path) -> None:
    """A FoleySeal output re-signed by another tool (here with the same trusted chain) as a camera
    capture: the credentials are valid, and the report says that the record its watermark leads
    to discloses the audio as AI-generated; the soft link is not called a match."""
    import c2pa

    keys = verify_env.home / "keys"
    manifest = {"claim_generator_info": [{"name": "CameraApp", "version": "1"}],
                "assertions": [{"label": "c2pa.actions", "data": {"actions": [{
                    "action": "c2pa.created",
                    "digitalSourceType": "http://cv.iptc.org/newscodes/digitalsourcetype/digitalCapture"}]}}]}
    signer = c2pa.Signer.from_info(c2pa.C2paSignerInfo(
        c2pa.C2paSigningAlg.ES256, (keys / "signing-chain.pem").read_bytes(), (keys / "signing-key.pem").read_bytes(),
        None))
    stripped = tmp_path / "stripped.wav"
    sf.write(stripped, sf.read(verify_env.files["marked_wav"], dtype="int16")[0], SR, subtype="PCM_16")
    out = tmp_path / "capture.wav"
    with c2pa.Builder(manifest) as builder, open(stripped, "rb") as src, open(out, "w+b") as dst:
        builder.sign(signer, "audio/wav", src, dst)
    r = verify(out, settings=verify_env.settings)
    assert r.verdict is Verdict.CREDENTIALS_VALID
    assert r.store and r.store[0].binding == "soft"
    assert f"Its watermark leads to the stored record {verify_env.record_id}" in r.explanation
    assert "That record's credentials disclose the audio as AI-generated" in r.explanation


def test_an_edit_of_generated_audio_keeps_the_parents_disclosure(verify_env: VerifyEnv, tmp_path: Path) -> None:
    """`mark` of a generated output (not --generated: an edit) states no source type of its own;
    the report gives the parent's, which says the audio is AI-generated."""
    from provenance.mark import mark

    res = mark(verify_env.files["marked_wav"], tmp_path / "edit.wav", settings=verify_env.settings)
    r = verify(res.output, settings=verify_env.settings)
    assert r.verdict is Verdict.CREDENTIALS_VALID
    assert r.credentials.digital_source_type is None
    assert r.credentials.parent_source_type.endswith("/trainedAlgorithmicMedia")
    assert "record an edit of audio" in r.explanation and "AI-generated (trainedAlgorithmicMedia)" in r.explanation


@pytest.mark.parametrize("planted", ["garbage", "other_signer"])
def test_a_stored_record_that_cannot_vouch_recovers_nothing(verify_env: VerifyEnv, tmp_path: Path, planted: str) -> None:
    """A record anyone with write access to the store could plant (random bytes, or a manifest
    signed by an untrusted chain for another payload) made a stripped copy read
    "credentials recovered by watermark", exit 0."""
    import sqlite3

    src = verify_env.settings.store_url.removeprefix("sqlite:///")
    db = tmp_path / "store.sqlite3"
    shutil.copy(src, db)
    if planted == "garbage":
        manifest = np.random.default_rng(5).bytes(4000)
    else:
        other = sqlite3.connect(verify_env.other_home / "manifests.sqlite3")
        (manifest,) = other.execute("select manifest from foleyseal_manifests").fetchone()
        other.close()
    con = sqlite3.connect(db)
    con.execute("update foleyseal_manifests set manifest = ? where id = ?", (manifest, verify_env.record_id))
    con.commit()
    con.close()
    settings = replace(verify_env.settings, store_url=f"sqlite:///{db}")
    r = verify(verify_env.files["mp3_64"], settings=settings)
    assert r.verdict is Verdict.WATERMARK_ONLY
    (m,) = [m for m in r.store if m.record_id == verify_env.record_id]
    assert m.refused and "cannot vouch for it" in r.explanation
    # (the other signer's manifest binds its own payload: that refuses it, whoever signed it)
    assert ("cannot be read" if planted == "garbage" else "not the payload") in m.refused
    # the honest record still recovers the same copy
    assert verify(verify_env.files["mp3_64"], settings=verify_env.settings).verdict is \
        Verdict.CREDENTIALS_RECOVERED_BY_WATERMARK


@pytest.mark.parametrize("fmt", ["WAV", "OGG", "AIFF", "CAF", "AU", "W64"])
def test_a_wav_or_ogg_cut_short_is_said_to_be(verify_env: VerifyEnv, tmp_path: Path, fmt: str) -> None:
    """libsndfile and FFmpeg give what a cut WAV, AIFF, CAF, AU, W64 or Ogg file holds as its
    length: `no_evidence` on half a file read like a full examination (MP3 and FLAC already had
    the note)."""
    whole = tmp_path / f"whole.{fmt.lower()}"
    sf.write(whole, foley_host(6.0, seed=4).T, SR, format=fmt)
    data = whole.read_bytes()
    cut = tmp_path / f"cut.{fmt.lower()}"
    cut.write_bytes(data[: len(data) // 2])
    r = verify(cut, settings=settings_without_store(verify_env))
    assert r.verdict is not Verdict.ERROR
    assert any(n.startswith("The file is cut short or damaged (") and "only what decodes was checked" in n
               for n in r.notes), r.notes
    assert not any("cut short" in n for n in verify(whole, settings=settings_without_store(verify_env)).notes)


def test_credentials_signed_over_a_tampered_file_say_so(verify_env: VerifyEnv, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    """`sign` of a tampered file made a file reading plain `credentials_valid`: the parent's
    failed validation, recorded in the new manifest, was never shown."""
    out = tmp_path / "resigned.wav"
    rc, said = _cli(["sign", str(verify_env.files["flipped_wav"]), str(out)], verify_env, capsys)
    assert rc == 0
    assert "carried Content Credentials that do not validate (assertion.dataHash.mismatch)" in said, said
    # Said before the work, the note announced a manifest that a failure then never wrote.
    for command in ("sign", "mark"):
        rc, said = _cli([command, str(verify_env.files["flipped_wav"]), str(tmp_path / "absent" / "o.wav")],
                        verify_env, capsys)
        assert rc == 3 and "do not validate" not in said, said
    rc, said = _cli(["mark", str(verify_env.files["flipped_wav"]), str(tmp_path / "remarked.wav")], verify_env, capsys)
    assert rc == 0 and "do not validate (assertion.dataHash.mismatch)" in said, said
    r = verify(out, settings=settings_without_store(verify_env))
    assert r.verdict is Verdict.CREDENTIALS_VALID
    assert any("did not validate (assertion.dataHash.mismatch)" in n for n in r.notes), r.notes
    assert r.credentials.parent_failure_codes == ("assertion.dataHash.mismatch",)
    intact = tmp_path / "resigned_intact.wav"
    rc, said = _cli(["sign", str(verify_env.files["marked_wav"]), str(intact)], verify_env, capsys)
    assert rc == 0 and "do not validate" not in said
    r = verify(intact, settings=settings_without_store(verify_env))
    assert not any("did not validate" in n for n in r.notes)
    # the signer validates a parent without trust anchors: "untrusted" there says nothing about it
    # (this verifier trusts the parent's signer), and integrators gate on these codes
    assert r.credentials.parent_failure_codes == ()
    # A file the C2PA reader cannot parse (not media) holds no credentials: sign and mark said it
    # "carries Content Credentials that do not validate (c2pa.other)" before refusing it.
    fake = tmp_path / "fake.wav"
    fake.write_bytes(b"garbage!")
    for command in ("sign", "mark"):
        rc, said = _cli([command, str(fake), str(tmp_path / f"{command}-fake.wav")], verify_env, capsys)
        assert rc == 3 and "Content Credentials" not in said and "cannot open the file" in said, said


def test_a_tampered_explanation_names_metadata_too(reports: dict[str, VerificationReport]) -> None:
    """A tag-only edit (the hard binding covers every byte) was explained as "the audio or the
    manifest was changed"."""
    r = reports["flipped_wav"]
    assert r.verdict is Verdict.CREDENTIALS_TAMPERED
    assert "the file's bytes (its audio, its tags or other metadata) or the manifest" in r.explanation


def test_a_matroska_file_cut_short_is_said_to_be(verify_env: VerifyEnv, tmp_path: Path) -> None:
    """Matroska declares a stream's length in a DURATION tag, which the container probe did not
    read: half an MKV gave no_evidence with no word of the missing half."""
    from provenance.core.audio import Audio
    from provenance.core.io import replace_audio_track

    whole = tmp_path / "whole.mkv"
    replace_audio_track(verify_env.files["marked_mp4"], Audio(foley_host(12.0, seed=9), SR), whole)
    data = whole.read_bytes()
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(data[: len(data) // 2])
    r = verify(cut, settings=settings_without_store(verify_env))
    assert any("its header declares: the file is truncated or damaged" in n for n in r.notes), r.notes
    assert not any("truncated" in n for n in verify(whole, settings=settings_without_store(verify_env)).notes)


def test_bytes_an_mp4_hash_leaves_out_are_not_called_unchanged(verify_env: VerifyEnv, tmp_path: Path) -> None:
    """A marked MP4 with a 'free' box of another file's bytes appended validates (C2PA's BMFF
    hash leaves such boxes out), and read "the recorded hash matches these exact bytes, so the
    file has not been changed": a file carrying hidden data read as pristine."""
    import struct

    junk = verify_env.files["marked_wav"].read_bytes()[:5000]
    padded = tmp_path / "padded.mp4"
    padded.write_bytes(verify_env.files["marked_mp4"].read_bytes() + struct.pack(">I", 8 + len(junk)) + b"free" + junk)
    r = verify(padded, settings=verify_env.settings)
    assert r.verdict is Verdict.CREDENTIALS_VALID and r.store and r.store[0].binding == "hard", r.explanation
    assert "these exact bytes" not in r.explanation
    assert "This file's bytes are not the registered output's" in r.explanation, r.explanation
    whole = verify(verify_env.files["marked_mp4"], settings=verify_env.settings)
    assert whole.verdict is Verdict.CREDENTIALS_VALID and "not the registered output's" not in whole.explanation


def test_a_registered_output_with_an_untrusted_signers_credentials_says_what_the_store_proves(
    verify_env: VerifyEnv, tmp_path: Path
) -> None:
    """A registered Ogg output, byte for byte, with a sidecar an unknown signer made beside it:
    `credentials_untrusted`, whose explanation left out that the file is this verifier's own
    registered output (only the store line showed it)."""
    from provenance.mark import mark
    from tests._verify_fixtures import _sign

    res = mark(verify_env.files["unmarked"], tmp_path / "clip.ogg", settings=verify_env.settings, generated=True)
    shutil.copyfile(res.output, tmp_path / "copy.ogg")
    resigned = _sign(verify_env.other_home, tmp_path / "copy.ogg", tmp_path / "resigned.ogg")
    assert resigned.read_bytes() == res.output.read_bytes()
    r = verify(resigned, settings=verify_env.settings)
    assert r.verdict is Verdict.CREDENTIALS_UNTRUSTED
    assert f"This file is the registered output {res.record.id}" in r.explanation, r.explanation
    assert "credentials travelling with it that come from a signer it does not trust" in r.explanation


def test_a_copy_found_through_the_watermark_is_linked_not_proven(reports: dict[str, VerificationReport]) -> None:
    """Whoever holds the watermark key can put an issued payload into other audio: the verdict
    said as fact that such audio "is a derivative of the registered output"."""
    text = reports["mp3_64"].explanation
    assert "most likely a copy or a derivative of the registered output" in text
    assert "The watermark links it to that output; it does not prove it" in text


def test_a_video_whose_sound_leads_to_an_audio_record_says_the_pictures_are_not_covered(
    verify_env: VerifyEnv, tmp_path: Path
) -> None:
    """A video's audio track replaced by a marked audio output's read `credentials recovered`
    from an audio file's record, with no word that nothing vouches for the video."""
    from provenance.core.io import read_audio, replace_audio_track

    write_video_only(tmp_path / "pictures.mp4", 6.0)
    swapped = tmp_path / "swapped.mp4"
    replace_audio_track(tmp_path / "pictures.mp4", read_audio(verify_env.files["marked_wav"]), swapped)
    r = verify(swapped, settings=verify_env.settings)
    assert r.verdict is Verdict.CREDENTIALS_RECOVERED_BY_WATERMARK, r.explanation
    assert any("The stored record is of an audio file (audio/wav)" in n and "not for its pictures" in n
               for n in r.notes), r.notes
    assert not any("not for its pictures" in n for n in verify(verify_env.files["mp3_64"],
                                                               settings=verify_env.settings).notes)


def test_other_audio_carrying_an_issued_payload_is_not_called_a_trim(verify_env: VerifyEnv, tmp_path: Path) -> None:
    """An issued payload put into other, longer audio with the watermark key (which every
    verifier holds) read as "a derivative of the registered output" with no word that it lasts
    longer than that output."""
    from provenance.core.audio import Audio
    from provenance.core.io import write_audio
    from provenance.watermark import WatermarkKey, embed
    from tests._verify_fixtures import CLIP_S, FIXED_KEY

    other = Audio(foley_host(CLIP_S + 4.0, seed=21), SR)
    forged = tmp_path / "forged.wav"
    write_audio(forged, embed(other, WatermarkKey(FIXED_KEY), verify_env.payload))
    r = verify(forged, settings=verify_env.settings)
    assert r.verdict is Verdict.CREDENTIALS_RECOVERED_BY_WATERMARK, r.explanation
    assert any(n.startswith(f"The audio lasts {CLIP_S + 4.0:.1f} s, longer than the registered output "
                            f"({CLIP_S:.1f} s)") for n in r.notes), r.notes
    assert not any("longer than the registered output" in n
                   for n in verify(verify_env.files["mp3_64"], settings=verify_env.settings).notes)


def test_a_sidecar_beside_a_file_with_an_embedded_manifest_is_said_to_be_unused(
    verify_env: VerifyEnv, tmp_path: Path
) -> None:
    """Another file's sidecar beside a WAV with an embedded manifest was ignored without a note."""
    wav = tmp_path / "clip.wav"
    shutil.copyfile(verify_env.files["marked_wav"], wav)
    (tmp_path / "clip.wav.c2pa").write_bytes(b"another file's manifest")
    r = verify(wav, settings=verify_env.settings)
    assert r.verdict is Verdict.CREDENTIALS_VALID and r.credentials.source == "embedded"
    assert any(n.startswith("A sidecar, clip.wav.c2pa, lies beside the file") for n in r.notes), r.notes
    assert not any("lies beside" in n for n in verify(verify_env.files["marked_wav"], settings=verify_env.settings).notes)


def test_credentials_recovered_from_a_mark_in_little_of_the_audio_say_how_little() -> None:
    """Two marked outputs mixed together read as `credentials_recovered_by_watermark` for one of
    them, whose mark was read in 4 % of the audio, with no word of the rest."""
    from detectors.report import WatermarkResult
    from detectors.verify import _thin_mark_note

    thin = WatermarkResult(key_id="a76d9ac9", found=True, p_value=1e-20, payloads=("8e3974188387080d",),
                           analysed_s=15.0, coverage=0.04, windows=4)
    note = _thin_mark_note([thin], Verdict.CREDENTIALS_RECOVERED_BY_WATERMARK)
    assert note is not None and note.startswith("The mark was read in only 4% of the 15.0 s of audio"), note
    assert _thin_mark_note([replace(thin, coverage=0.9)], Verdict.CREDENTIALS_RECOVERED_BY_WATERMARK) is None
    assert _thin_mark_note([thin], Verdict.PARTIALLY_MARKED) is None  # which says the share itself


def test_a_store_failing_in_every_window_is_logged_once(
    verify_env: VerifyEnv, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from provenance.core.errors import StoreError
    from provenance.store.repository import IssuedPayloads

    def down(self: IssuedPayloads) -> int:
        raise StoreError("manifest store test: count failed: the server went away")

    monkeypatch.setattr(IssuedPayloads, "count", down)
    monkeypatch.setattr(IssuedPayloads, "find", lambda self, payloads: set())  # so each window asks for the count
    with caplog.at_level("WARNING"), Verifier(verify_env.settings) as v:
        r = v.verify(verify_env.files["spliced"])
    # Every window of the file met the same fault: stderr named it four times for one file.
    logged = [rec.getMessage() for rec in caplog.records if "went away" in rec.getMessage()]
    assert len(logged) == 1, logged
    assert any("Matching the watermark against the manifest store's payloads failed" in n for n in r.notes), r.notes


def test_a_record_signed_by_an_untrusted_chain_says_so_and_how_to_trust_it() -> None:
    """An intact record whose signer this verifier does not trust was refused as "its manifest
    does not validate: signingCredential.untrusted", which reads as tampering and gives no fix
    (two instances with different trust gave two verdicts and no clue why)."""
    from types import SimpleNamespace

    from detectors.credentials import why_record_does_not_vouch

    binding = [SimpleNamespace(blocks=[SimpleNamespace(value="0123456789abcdef")])]

    def record(*codes: str) -> SimpleNamespace:
        return SimpleNamespace(present=True, failure_codes=codes, error=None, soft_bindings=binding)

    untrusted = why_record_does_not_vouch(record("signingCredential.untrusted", "assertion.dataHash.mismatch"),
                                          "0123456789abcdef")
    assert untrusted is not None and "not trusted by this verifier (signingCredential.untrusted)" in untrusted
    assert "--trust-anchors" in untrusted and "does not validate" not in untrusted
    changed = why_record_does_not_vouch(record("signingCredential.untrusted", "claimSignature.mismatch"),
                                        "0123456789abcdef")
    assert changed is not None and changed.startswith("its manifest does not validate")
    # another payload's record is refused for that, whoever signed it
    other = why_record_does_not_vouch(record("signingCredential.untrusted"), "fedcba9876543210")
    assert other is not None and "not the payload fedcba9876543210" in other
    assert why_record_does_not_vouch(record("assertion.dataHash.mismatch"), "0123456789abcdef") is None


def test_a_text_file_named_flac_shows_no_python_none(verify_env: VerifyEnv, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """The summary of a file FFmpeg took for a FLAC but could not read printed
    "container: flac (flac), ?, None Hz, None ch"."""
    path = tmp_path / "notes.flac"
    path.write_text("hello world\n" * 1000)
    rc, said = _cli(["verify", str(path)], verify_env, capsys)
    assert rc == 3 and "error" in said, said
    assert "None" not in said and "container: flac (flac), ?" in said, said


def test_a_manifest_replaced_by_random_bytes_is_not_called_absent(verify_env: VerifyEnv, tmp_path: Path) -> None:
    """A signed WAV whose C2PA chunk was filled with random bytes was noted as "it holds no C2PA
    manifest", against its own credentials error (invalid JUMBF header) and its bytes."""
    import struct

    data = bytearray(verify_env.files["marked_wav"].read_bytes())
    at = data.index(b"C2PA")
    size = struct.unpack("<I", data[at + 4 : at + 8])[0]
    data[at + 8 : at + 8 + size] = np.random.default_rng(9).bytes(size)
    path = tmp_path / "garbled.wav"
    path.write_bytes(bytes(data))
    r = verify(path, settings=verify_env.settings)
    assert not any("holds no C2PA manifest" in n for n in r.notes), r.notes
    assert any("place for a C2PA manifest" in n and "damaged or replaced" in n for n in r.notes), r.notes
    # The store's record still validates against these bytes (its hash leaves the chunk out).
    assert r.verdict is Verdict.CREDENTIALS_VALID
