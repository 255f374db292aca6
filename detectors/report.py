"""The verification report: one verdict from a documented set, the evidence behind it, and a
plain-language paragraph that explains it.

Verdicts (``Verdict``), strongest evidence first:

===================================== ===========================================================
``credentials_valid``                 Content Credentials (C2PA) validate against this very file
                                      and chain to a configured trust anchor.
``credentials_tampered``              Credentials are present but do not validate: the file or its
                                      manifest changed after signing.
``credentials_untrusted``             Credentials are intact, but signed by a certificate chain that
                                      is not in the verifier's trust configuration.
``credentials_recovered_by_watermark`` No valid credentials in the file, but the watermark leads to a
                                      stored manifest (soft binding): re-encoded or edited copy.
``partially_marked``                  The watermark covers only part of the file: marked audio was
                                      spliced into other audio (segments say where).
``watermark_only``                    A watermark is present but leads to no stored manifest.
``no_evidence``                       Nothing found. This never means "made by a person".
``error``                             The file could not be examined (not audio/video, corrupt...).
===================================== ===========================================================
"""

from __future__ import annotations

import enum
import json
from dataclasses import asdict, dataclass, field
from typing import Any

from provenance.core.results import Segment
from provenance.core.text import first_few

REPORT_SCHEMA = "org.foleyseal.verification-report.1"


class Verdict(str, enum.Enum):
    """The documented verdict set (the value is the stable machine name)."""

    CREDENTIALS_VALID = "credentials_valid"
    CREDENTIALS_TAMPERED = "credentials_tampered"
    CREDENTIALS_UNTRUSTED = "credentials_untrusted"
    CREDENTIALS_RECOVERED_BY_WATERMARK = "credentials_recovered_by_watermark"
    PARTIALLY_MARKED = "partially_marked"
    WATERMARK_ONLY = "watermark_only"
    NO_EVIDENCE = "no_evidence"
    ERROR = "error"

    def __str__(self) -> str:
        return self.value

    @property
    def title(self) -> str:
        """A short human title, e.g. for the web page and the CLI's first line."""
        return _TITLES[self]

    @property
    def evidence_found(self) -> bool:
        """True when some FoleySeal or C2PA evidence was found (any verdict but no_evidence/error)."""
        return self not in (Verdict.NO_EVIDENCE, Verdict.ERROR)

    @property
    def intact(self) -> bool:
        """True when the evidence found is consistent (nothing invalid, nothing untrusted)."""
        return self in (
            Verdict.CREDENTIALS_VALID,
            Verdict.CREDENTIALS_RECOVERED_BY_WATERMARK,
            Verdict.PARTIALLY_MARKED,
            Verdict.WATERMARK_ONLY,
        )


_TITLES = {
    Verdict.CREDENTIALS_VALID: "Valid Content Credentials",
    Verdict.CREDENTIALS_TAMPERED: "Content Credentials do not match this file",
    Verdict.CREDENTIALS_UNTRUSTED: "Content Credentials from an untrusted signer",
    Verdict.CREDENTIALS_RECOVERED_BY_WATERMARK: "Credentials recovered through the watermark",
    Verdict.PARTIALLY_MARKED: "Partly watermarked audio",
    Verdict.WATERMARK_ONLY: "Watermark found, no credentials",
    Verdict.NO_EVIDENCE: "No provenance evidence found",
    Verdict.ERROR: "The file could not be examined",
}

VERDICT_DESCRIPTIONS: dict[Verdict, str] = {
    Verdict.CREDENTIALS_VALID: "C2PA credentials validate against this exact file and chain to a trust anchor "
    "of this verifier.",
    Verdict.CREDENTIALS_TAMPERED: "C2PA credentials are present but invalid: the file or manifest was altered "
    "after signing.",
    Verdict.CREDENTIALS_UNTRUSTED: "C2PA credentials are intact but signed by a chain this verifier does not "
    "trust.",
    Verdict.CREDENTIALS_RECOVERED_BY_WATERMARK: "No valid credentials travel with the file, but its watermark "
    "points to a stored manifest (a re-encoded or edited copy).",
    Verdict.PARTIALLY_MARKED: "Only some time segments carry the watermark: marked audio was combined with "
    "other audio.",
    Verdict.WATERMARK_ONLY: "A FoleySeal watermark is present, but no stored manifest matches its payload.",
    Verdict.NO_EVIDENCE: "No credentials and no watermark were found. This does not mean the audio was made "
    "by a person.",
    Verdict.ERROR: "The file could not be examined (not audio or video, or unreadable).",
}


@dataclass(frozen=True)
class StreamInfo:
    """One stream of a container, as probed."""

    index: int
    kind: str
    """``audio``, ``video``, ``subtitle``, ``data`` or ``attachment``."""
    codec: str | None
    sample_rate: int | None = None
    """Hz (audio streams)."""
    channels: int | None = None
    width: int | None = None
    """Pixels (video streams)."""
    height: int | None = None
    duration_s: float | None = None
    bit_rate: int | None = None
    """Bits per second, when the container states it."""


@dataclass(frozen=True)
class ContainerInfo:
    """What the container says about the file (no samples decoded)."""

    format: str
    """Short format name, e.g. ``wav``, ``flac``, ``mp3``, ``ogg``, ``mp4``, ``mov``, ``webm``."""
    format_long: str
    mime_type: str
    extension: str
    """Canonical extension for the detected format, with the dot (``.wav``)."""
    size_bytes: int
    duration_s: float | None
    sample_rate: int | None
    """Hz, of the first audio stream."""
    channels: int | None
    codec: str | None
    """Codec of the first audio stream, e.g. ``pcm_s16le``, ``mp3``, ``aac``, ``opus``."""
    has_video: bool
    streams: tuple[StreamInfo, ...] = ()
    extension_mismatch: bool = False
    """True when the file name's extension names another format than the content (content wins)."""

    @property
    def has_audio(self) -> bool:
        """Whether the container holds an audio stream (the rest of the report is about it)."""
        return self.codec is not None or any(s.kind == "audio" for s in self.streams)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["streams"] = [asdict(s) for s in self.streams]
        return d


@dataclass(frozen=True)
class WatermarkResult:
    """The watermark search with one key of the verifier's keyring."""

    key_id: str
    """Public 8-hex-digit identifier of the key (never the secret)."""
    found: bool
    p_value: float
    """Probability of evidence this strong in unmarked audio, corrected for the number of blocks searched."""
    payloads: tuple[str, ...] = ()
    """Decoded 64-bit payloads (hex), most frequent first; several after a splice of two marked files."""
    segments: tuple[Segment, ...] = ()
    """Marked time spans, seconds from the start of the file, merged across analysis blocks."""
    analysed_s: float = 0.0
    """Seconds of audio analysed."""
    coverage: float = 0.0
    """Fraction of the analysed audio covered by marked segments, 0-1."""
    bit_confidence: float = 0.0
    windows: int = 0
    """Analysis windows searched (0: nothing analysable, e.g. digital silence or too short)."""
    store_confirmed: bool = False
    """True when the presence test alone missed the mark in every window it was found in, and a
    payload issued by the manifest store confirmed it (docs/watermark.md): a mark that weak does not
    show in a few seconds of audio, so no stretch of the file is called unmarked."""
    speed: float = 1.0
    """Playback-speed factor the detector undid where the mark was strongest (1.0: none; 1.1:
    the audio plays 10 % faster than the marked output)."""
    pitch_semitones: float = 0.0
    """Pitch shift the detector undid there, semitones (0: none)."""

    @property
    def warped(self) -> bool:
        """Whether the mark was found only after undoing a speed, tempo or pitch change."""
        return self.speed != 1.0 or self.pitch_semitones != 0.0

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["segments"] = [asdict(s) for s in self.segments]
        d["payloads"] = list(self.payloads)
        return d


@dataclass(frozen=True)
class StoreMatch:
    """A manifest-store record that this file leads to, and how strongly it is bound."""

    record_id: str
    payload: str | None
    algorithm: str | None
    binding: str
    """``hard``: the stored manifest validates against this exact file; ``soft``: the record is found
    only through the watermark payload (content re-encoded or edited); ``hash``: found by the file's
    SHA-256 (identical bytes)."""
    record: dict[str, Any]
    """The store record without the manifest bytes."""
    credentials: Any | None = None
    """:class:`provenance.core.c2pa_types.CredentialsReport` from validating the stored manifest
    against this file."""
    refused: str | None = None
    """Why the record cannot vouch for the file (a soft match whose manifest is unreadable,
    untrusted, or bound to another payload); None when it can."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "record_id": self.record_id,
            "payload": self.payload,
            "algorithm": self.algorithm,
            "binding": self.binding,
            "record": self.record,
            "credentials": _to_dict(self.credentials),
            "refused": self.refused,
        }


@dataclass
class VerificationReport:
    """Everything FoleySeal found about one file, and the verdict."""

    file: str
    """The name the file was given (never used to open anything on the server side)."""
    verdict: Verdict
    explanation: str
    """One plain-language paragraph explaining the verdict and what it does not mean."""
    size_bytes: int | None = None
    sha256: str | None = None
    container: ContainerInfo | None = None
    credentials: Any | None = None
    """:class:`provenance.core.c2pa_types.CredentialsReport` of the manifest found with the file."""
    watermark: list[WatermarkResult] = field(default_factory=list)
    store: list[StoreMatch] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    """Things a careful reader should know (skipped checks, extension mismatch, non-finite samples...)."""
    error: str | None = None
    """For verdict ``error``: what was wrong with the file, in one sentence."""
    elapsed_s: float = 0.0
    trust_anchors: int = 0
    """How many trust anchor certificates the verifier used (0: nothing is trusted)."""
    store_unavailable: bool = False
    """The configured manifest store could not be opened or read: records were not looked up,
    so the verdict may lack what a record would add (the notes say why)."""

    @property
    def title(self) -> str:
        return self.verdict.title

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": REPORT_SCHEMA,
            "file": self.file,
            "verdict": self.verdict.value,
            "title": self.verdict.title,
            "explanation": self.explanation,
            "size_bytes": self.size_bytes,
            "sha256": self.sha256,
            "container": self.container.to_dict() if self.container else None,
            "credentials": _to_dict(self.credentials),
            "watermark": [w.to_dict() for w in self.watermark],
            "store": [m.to_dict() for m in self.store],
            "notes": list(self.notes),
            "error": self.error,
            "elapsed_s": round(self.elapsed_s, 4),
            "trust_anchors": self.trust_anchors,
            "store_unavailable": self.store_unavailable,
        }

    def to_json(self, *, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, default=_json_default, allow_nan=False)


def _to_dict(obj: Any) -> Any:
    if obj is None:
        return None
    if hasattr(obj, "to_dict"):
        return obj.to_dict()
    return asdict(obj)


def _json_default(obj: Any) -> Any:
    if isinstance(obj, bytes):
        return obj.hex()
    if hasattr(obj, "isoformat"):
        return obj.isoformat()
    return str(obj)


# --- explanations ---------------------------------------------------------------------------


def _fmt_time(seconds: float) -> str:
    """``m:ss.s``; rounded to the tenth before it is split, so 3599.98 s is 60:00.0, not 59:60.0."""
    minutes, tenths = divmod(round(max(0.0, seconds) * 10), 600)
    return f"{minutes}:{tenths / 10:04.1f}"


def _segments_text(segments: tuple[Segment, ...] | list[Segment]) -> str:
    return first_few([f"{_fmt_time(s.start_s)}-{_fmt_time(s.end_s)}" for s in segments], 6)


def _payloads_text(mark: WatermarkResult, matches: list[StoreMatch] | None) -> str:
    """Each payload of ``mark`` with where it is and its stored record (``matches`` None: no store
    was consulted), e.g. ``"ab12... at 0:00-0:08, stored record urn:...; cd34... at 0:15-0:23,
    no stored record"``."""
    spans = []
    for payload in mark.payloads:
        segs = [s for s in mark.segments if s.payload == payload]
        where = f" at {_segments_text(segs)}" if segs else ""
        rec = next((m for m in matches if m.payload == payload), None) if matches is not None else None
        if rec is not None:
            title = rec.record.get("title")
            rec_text = f", stored record {rec.record_id}" + (f" ('{title}')" if title else "")
        else:
            rec_text = ", no stored record" if matches is not None else ""
        spans.append(f"{payload}{where}{rec_text}")
    return "; ".join(spans)


LAYERED_OVERLAP_S = 0.5
"""Overlap of two payloads' segments, seconds, beyond which the outputs are said to be layered
(mixed) rather than joined: a segment's edge is placed within about half a second."""


def _layered(mark: WatermarkResult) -> bool:
    """Whether segments with different payloads overlap by more than :data:`LAYERED_OVERLAP_S`."""
    segs = [s for s in mark.segments if s.payload is not None]
    return any(a.payload != b.payload and min(a.end_s, b.end_s) - max(a.start_s, b.start_s) > LAYERED_OVERLAP_S
               for i, a in enumerate(segs) for b in segs[i + 1:])


def _joined_marks_text(mark: WatermarkResult, matches: list[StoreMatch]) -> str:
    """The explanation for audio that carries several payloads: marked outputs joined together,
    or layered (mixed) where their segments overlap."""
    how = (
        "Some of these stretches overlap: the outputs are layered (mixed together), not only joined, so "
        "each mark may be present beyond the stretches where it was read, under the other"
        if _layered(mark) else
        "The audio joins pieces of several FoleySeal outputs (spliced or edited together)"
    )
    return (
        f"This file carries no valid Content Credentials of its own, but it contains FoleySeal "
        f"watermarks with {len(mark.payloads)} different payloads: {_payloads_text(mark, matches)}. Each "
        f"leads to the manifest of the output it was marked into. {how}, and no one manifest describes "
        "the whole."
    )


def _warp_text(mark: WatermarkResult | None) -> str:
    """A sentence on the speed or pitch change the detector undid, or ''."""
    if mark is None or not mark.warped:
        return ""
    parts = []
    if mark.speed != 1.0:
        parts.append(f"plays at {mark.speed:.3g} times the speed")
    if mark.pitch_semitones != 0.0:
        parts.append(f"is shifted by {mark.pitch_semitones:+.2f} semitones")
    return f" The mark was read after undoing a tempo or pitch edit: the audio {' and '.join(parts)} of the marked output."


def _bound_payloads(cred: Any) -> set[str]:
    """The watermark payloads the credentials' soft bindings name."""
    return {b.value.lower() for sb in (getattr(cred, "soft_bindings", ()) or ()) for b in sb.blocks}


def _signer_text(cred: Any) -> str:
    signer = getattr(cred, "signer", None)
    return f"signed by {signer}" if signer else "signed by an unnamed certificate"


_AI_SOURCE_TYPES = ("trainedAlgorithmicMedia", "compositeWithTrainedAlgorithmicMedia", "algorithmicMedia")


def is_ai_source_type(uri: str | None) -> bool:
    """Whether an IPTC digital source type says the media was made by an algorithm (AI)."""
    return bool(uri) and uri.rsplit("/", 1)[-1] in _AI_SOURCE_TYPES  # type: ignore[union-attr]


def _discloses_ai(cred: Any) -> bool:
    """Whether credentials disclose AI generation, themselves or through the audio they edit."""
    return cred is not None and (is_ai_source_type(getattr(cred, "digital_source_type", None))
                                 or is_ai_source_type(getattr(cred, "parent_source_type", None)))


def _ai_text(cred: Any) -> str:
    dst = getattr(cred, "digital_source_type", None) if cred is not None else None
    parent = getattr(cred, "parent_source_type", None) if cred is not None else None
    if not dst and parent:
        name = parent.rsplit("/", 1)[-1]
        kind = f"as AI-generated ({name})" if is_ai_source_type(parent) else f"with the digital source type {name}"
        return (f" They record an edit of audio whose own credentials, kept in them as its parent, "
                f"disclose it {kind}.")
    if not dst:
        return ""
    name = dst.rsplit("/", 1)[-1]
    if is_ai_source_type(dst):
        return f" The credentials disclose the audio as AI-generated ({name})."
    return f" The credentials state the digital source type {name}."


def _conflict_text(credentials: Any, store: list[StoreMatch] | None, named: str | None = None) -> str:
    """When the file's credentials do not disclose AI generation but a stored FoleySeal record
    the audio leads to does: the watermark outlives a re-signing, and says what the audio is.
    ``named``: the record the text has named already."""
    if credentials is None or _discloses_ai(credentials):
        return ""
    ai = next((m for m in store or [] if _discloses_ai(m.credentials)), None)
    if ai is None:
        return ""
    which = ("That record's credentials" if ai.record_id == named else
             f"But the watermark in its audio leads to the stored FoleySeal record {ai.record_id}, whose credentials")
    return (f" {which} disclose the audio as AI-generated, which these credentials do not: the audio "
            "was generated, whatever the credentials it carries now say.")


def _record_text(match: StoreMatch | None, soft_lead: str = "Its watermark leads to the stored record") -> str:
    """The sentence naming the stored record the evidence leads to, or '' without one
    (``soft_lead`` begins it for a record found through the watermark alone)."""
    if match is None:
        return ""
    when = match.record.get("created_at")
    title = match.record.get("title")
    if match.binding == "soft":  # found through the watermark only: a link, not a match
        rec_text = f" {soft_lead} {match.record_id}"
    else:
        rec_text = f" It matches the stored record {match.record_id}"
    rec_text += f" ('{title}')" if title else ""
    rec_text += f", registered {when}." if when else "."
    return rec_text


def _valid_text(credentials: Any, rec_text: str, store: list[StoreMatch] | None, sha256: str | None) -> str:
    """Credentials that validate and chain to a trust anchor: where they were found, who signed;
    and, when this file's SHA-256 is not the registered output's, that bytes the signature does
    not cover were added (an MP4's hash leaves boxes such as ``free`` out)."""
    src = getattr(credentials, "source", None)
    where = {
        "embedded": "embedded in the file",
        "sidecar": "in a sidecar .c2pa file next to it",
        "detached": "in the manifest store, found through the watermark",
    }.get(src or "", "with the file")
    return (
        f"This file carries Content Credentials {where}, {_signer_text(credentials)}. "
        "The signature is valid, the certificate chain ends in a trust anchor this verifier is "
        "configured to trust, and the recorded hash matches the file, so what it covers has not "
        f"been changed since it was signed.{_ai_text(credentials)}{rec_text}{_added_bytes_text(store, sha256)}"
    )


def _added_bytes_text(store: list[StoreMatch] | None, sha256: str | None) -> str:
    """A sentence when the registered output this file matches (its stored manifest validates
    against it) had other bytes: what the hash leaves out was changed or added; else ''."""
    bound = _hard_match(store)
    registered = bound.record.get("asset_sha256") if bound is not None else None
    if not registered or not sha256 or registered.lower() == sha256.lower():
        return ""
    return (" This file's bytes are not the registered output's, though (their SHA-256 differ): it holds "
            "data the signature does not cover (an MP4's hash leaves boxes such as 'free' out), which "
            "the credentials do not vouch for.")


def _hard_match(store: list[StoreMatch] | None) -> StoreMatch | None:
    """The first record whose stored manifest validates against this file (``hard`` or ``hash``)."""
    return next((m for m in store or [] if m.binding in ("hard", "hash")), None)


def _registered_output_text(store: list[StoreMatch] | None, what: str) -> str:
    """The sentence saying that the file is a registered output whose stored manifest validates
    against it (a hard binding), ending with ``what`` that means; else ''."""
    bound = _hard_match(store)
    if bound is None:
        return ""
    title = bound.record.get("title")
    return (f" This file is the registered output {bound.record_id}"
            + (f" ('{title}')" if title else "") + f", whose stored manifest validates against it: {what}")


def _tampered_text(
    credentials: Any, found: list[WatermarkResult], store: list[StoreMatch] | None, rec_text: str
) -> str:
    """Credentials that do not validate, and what the store and the watermark say about why."""
    codes = ", ".join(dict.fromkeys(getattr(credentials, "failure_codes", ()) or ())) or "validation failed"
    # A hard binding: the stored manifest validates against this file.
    wm = _registered_output_text(store, "the audio is unchanged, and it is the credentials travelling with it that "
                               "were replaced or damaged.")
    registered = bool(wm)
    carried = [p for w in found for p in w.payloads]
    bound = _bound_payloads(credentials)
    if carried and bound and not bound & set(carried):
        wm += (
            f" The credentials bind the watermark payload {', '.join(sorted(bound))}, but the audio "
            f"carries {', '.join(carried)}: they were made for another file."
        )
    elif found and not registered:
        wm = (
            " The audio still carries a FoleySeal watermark, so it most likely derives from a "
            "FoleySeal output that was edited or corrupted after signing."
        )
    return (
        "This file carries Content Credentials, but they do not validate: "
        f"{codes}. Either the file's bytes (its audio, its tags or other metadata) or the manifest were "
        "changed after signing, or the credentials were copied from another file. Do not rely on "
        "what the credentials claim about this file."
        f"{wm}{'' if registered else rec_text}"
    )


def _untrusted_text(credentials: Any) -> str:
    """Intact credentials this verifier cannot trust: an expired certificate, or an unknown root."""
    if "signingCredential.expired" in (getattr(credentials, "failure_codes", ()) or ()):
        return (
            f"This file carries intact Content Credentials, {_signer_text(credentials)}, and the file "
            "matches them, but the signing certificate has expired and the signature carries no "
            "trusted timestamp proving it was made while the certificate was valid, so the signature "
            "cannot be trusted any more. Nothing indicates that the file or its credentials were "
            f"changed.{_ai_text(credentials)}"
        )
    codes = getattr(credentials, "failure_codes", ()) or ()
    if {"signingCredential.revoked", "signingCredential.ocsp.revoked"} & set(codes):
        return (
            f"This file carries Content Credentials, {_signer_text(credentials)}, and the file "
            "matches them, but the signing certificate has been revoked by its issuer, so the "
            "signature cannot be trusted. Nothing indicates that the file or its credentials were "
            f"changed.{_ai_text(credentials)}"
        )
    if "signingCredential.invalid" in codes:
        return (
            f"This file carries Content Credentials, {_signer_text(credentials)}, and the file "
            "matches them, but the signing certificate is not one this verifier accepts for "
            "signing: it is outside the C2PA certificate profile it checks, most often through an "
            "extended key usage other than emailProtection (the one every C2PA verifier accepts, "
            "and the only one this one does). The signer's identity is not confirmed. Nothing "
            f"indicates that the file or its credentials were changed.{_ai_text(credentials)}"
        )
    return (
        f"This file carries intact Content Credentials, {_signer_text(credentials)}, and the file "
        "matches them, but the signing certificate does not chain to any trust anchor this verifier "
        "is configured with. Anyone can create such a certificate, so the signer's identity is not "
        "confirmed. Add the signer's root certificate to the trust configuration only if you trust "
        f"it.{_ai_text(credentials)}"
    )


def _recovered_text(
    found: list[WatermarkResult], store: list[StoreMatch] | None, match: StoreMatch | None, rec_text: str
) -> str:
    """No valid credentials with the file, but its watermark leads to a stored manifest (or,
    with several payloads, to several: joined outputs)."""
    payload = found[0].payloads[0] if found and found[0].payloads else "?"
    if found and len(found[0].payloads) > 1:
        return _joined_marks_text(found[0], store or [])
    return (
        "This file carries no valid Content Credentials of its own, but it contains a FoleySeal "
        f"watermark (payload {payload}) that leads to a stored manifest.{rec_text} The stored "
        "manifest does not validate against these exact bytes, which is expected when a file was "
        "re-encoded (e.g. to MP3 or Opus), remuxed or re-wrapped (which drops the manifest even when "
        "the audio is untouched), trimmed or otherwise edited: the audio is most likely a copy or a "
        "derivative of the registered output, in a file that is not its byte-identical copy. The "
        "watermark links it to that "
        "output; it does not prove it (whoever holds the watermark key can put a payload into any audio)."
        f"{_warp_text(found[0] if found else None)}"
        f"{_ai_text(getattr(match, 'credentials', None))}"
    )


def _partial_text(
    found: list[WatermarkResult], store: list[StoreMatch] | None, store_configured: bool, rec_text: str
) -> str:
    """A watermark over only part of the audio: where (times m:ss.s) and how much of it."""
    segs = found[0].segments if found else ()
    cov = found[0].coverage if found else 0.0
    if found and len(found[0].payloads) > 1:
        where = (f"FoleySeal watermarks with {len(found[0].payloads)} different payloads, "
                 f"{_payloads_text(found[0], (store or []) if store_configured else None)}")
        rec_text = ""  # each payload's record is named with it
    else:
        where = f"a FoleySeal watermark: {_segments_text(segs)}"
    return (
        f"Only part of this audio carries {where} "
        f"(about {cov * 100:.0f}% of the analysed audio). The rest carries no mark we can detect. "
        "This is what audio looks like when marked (generated) audio was spliced into other audio. "
        f"The unmarked parts are not proven to be made by a person.{rec_text}"
    )


def _watermark_only_text(found: list[WatermarkResult], store_read: bool, store_configured: bool,
                         refused: list[StoreMatch] | None = None) -> str:
    """A watermark that leads to no stored record, and why none was found (no store, store unread,
    or no record in it)."""
    payloads = found[0].payloads if found else ()
    if len(payloads) > 1:
        what = f"FoleySeal watermarks with {len(payloads)} different payloads ({_payloads_text(found[0], None)})"
    else:
        what = "a FoleySeal watermark" + (f" with payload {payloads[0]}" if payloads
                                          else " (its payload could not be read)")
    it = "them" if len(payloads) > 1 else "it"
    if not store_configured:
        return (
            f"This audio contains {what}, but no Content Credentials travel with it, and this "
            f"verifier has no manifest store, so no record was looked up for {it} (see the notes)."
        )
    if not store_read:
        return (
            f"This audio contains {what}, but no Content Credentials travel with it, "
            "and this verifier's manifest store could not be read (see the notes), so the "
            "record, if any, could not be looked up."
        )
    if refused:
        return (
            f"This audio contains {what}, but no Content Credentials travel with it, and the record "
            f"this verifier's manifest store holds for {it} ({refused[0].record_id}) cannot vouch for "
            f"it: {refused[0].refused}. Nothing that record claims is taken as this file's provenance; "
            "a record whose manifest is not validly signed by a trusted signer, for this payload, "
            "proves nothing."
        )
    return (
        f"This audio contains {what}, but no Content Credentials travel with it "
        f"and this verifier's manifest store has no record for {it}. The audio was most likely produced "
        "by a FoleySeal installation whose records this verifier cannot see, or marked again with a "
        "payload no record was issued for (which replaces the mark it had)."
    )


def _no_evidence_text(keys_checked: int, watermark_analysed: bool) -> str:
    """Nothing found, what was checked, and what that does not mean."""
    if not keys_checked:
        checked = "no watermark key is configured, so the watermark was not checked"
    elif not watermark_analysed:
        checked = (
            "the audio holds nothing a watermark could be searched in (silence, too short, or an "
            "unsupported sample rate; see the notes)"
        )
    else:
        checked = f"no FoleySeal watermark was detected with the {keys_checked} key(s) in this verifier's keyring"

    return (
        f"No Content Credentials were found with this file, and {checked}. "
        "This does NOT mean the audio was made by a person: credentials are easy to strip, other "
        "generators use other watermarks or none, and heavy processing can erase a watermark. It "
        "only means this verifier found no provenance evidence."
    )


def explain(
    verdict: Verdict,
    *,
    credentials: Any | None = None,
    watermark: list[WatermarkResult] | None = None,
    store: list[StoreMatch] | None = None,
    error: str | None = None,
    keys_checked: int = 0,
    watermark_analysed: bool = True,
    store_read: bool = True,
    store_configured: bool = True,
    advice: str = "Check that it is an audio file or a video with an audio track.",
    refused: list[StoreMatch] | None = None,
    sha256: str | None = None,
) -> str:
    """The plain-language paragraph for a verdict, filled in with the evidence found.
    ``store_read``: the configured store answered; ``store_configured``: the verifier has a store
    (False: no record could be looked up at all); ``advice``: what to do about an ``error``
    (empty: its message says it); ``refused``: records the watermark led to that cannot vouch
    for the file (:attr:`StoreMatch.refused`); ``sha256``: the file's, compared with a registered
    output's it matches."""
    found = [w for w in (watermark or []) if w.found]
    match = (store or [None])[0]
    rec_text = _record_text(match)

    if verdict is Verdict.CREDENTIALS_VALID:
        return _valid_text(credentials, rec_text, store, sha256) + _conflict_text(
            credentials, store, match.record_id if match is not None else None)
    if verdict is Verdict.CREDENTIALS_TAMPERED:
        return _tampered_text(credentials, found, store, rec_text)
    if verdict is Verdict.CREDENTIALS_UNTRUSTED:
        # what the store proves is said even though the credentials with the file decide the verdict
        vouched = _registered_output_text(store, "the audio is this verifier's registered output, and it is the "
                                          "credentials travelling with it that come from a signer it does not trust.")
        return _untrusted_text(credentials) + (vouched or rec_text) + _conflict_text(credentials, store)
    if verdict is Verdict.CREDENTIALS_RECOVERED_BY_WATERMARK:
        return _recovered_text(found, store, match, _record_text(match, "It is the stored record"))
    if verdict is Verdict.PARTIALLY_MARKED:
        return _partial_text(found, store, store_configured, rec_text)
    if verdict is Verdict.WATERMARK_ONLY:
        return _watermark_only_text(found, store_read, store_configured, refused)
    if verdict is Verdict.NO_EVIDENCE:
        return _no_evidence_text(keys_checked, watermark_analysed)
    # FFmpeg's and libsndfile's messages often end in a full stop of their own
    problem = (error or "unknown problem").rstrip(". ")
    return f"The file could not be examined: {problem}. No verdict about its origin can be given. {advice}".rstrip()


def error_report(file: str, message: str, *, advice: str | None = None, trust_anchors: int = 0,
                 **kw: Any) -> VerificationReport:
    """The report of a file that could not be examined: verdict ``error``, ``message`` the fault;
    ``advice``: what to do about it (None: check that it is media; empty: the message says it)."""
    return VerificationReport(
        file=file,
        verdict=Verdict.ERROR,
        explanation=explain(Verdict.ERROR, error=message, **({} if advice is None else {"advice": advice})),
        error=message,
        trust_anchors=trust_anchors,
        **kw,
    )
