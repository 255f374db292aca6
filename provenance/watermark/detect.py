"""Detection: search the alignment, test presence against a calibrated null, decode, localise.

This module runs the steps below and holds the public :func:`detect`; each step's parts live in
their own module: the features (:mod:`.features`), the presence test (:mod:`.presence`), decoding
(:mod:`.decode`), segments (:mod:`.segments`), the p-values of the confirming routes
(:mod:`.confirm`), the tempo and pitch search (:mod:`.search`) and matching against the issued
payloads (:mod:`.known`).

1. The input's mono mix is resampled to 16 kHz and analysed with a fine hop
   (``hop / FINE``), giving tiles at every 2.5 ms offset: the alignment search covers
   ``slot_hops * FINE`` sub-slot phases x ``block_slots`` block offsets.
2. For each alignment, every group's statistic is reduced modulo the keyed lattice to
   a residual ``r`` in [-1/2, 1/2). Without the mark (or with another key) ``r`` is
   uniform, because the key's dither is independent of the audio. The presence score
   sums ``cos(2 pi (r - b/2))`` over pilot groups (known bits ``b``) and
   ``cos(4 pi r)`` over payload groups (bit-blind), weighted by tile reliability;
   under the null each term has mean 0 and variance 1/2 times its weight squared.
3. The z-scores of all alignments are standardised by their own robust location and
   spread (median and MAD over the alignments away from the best one), which absorbs
   hosts whose statistics are correlated or periodic at the block length (steady tones,
   loops); the best standardised z is turned into a p-value with the law of the maximum
   of ``EFFECTIVE_ALIGNMENTS`` independent normals of spread ``NULL_Z_SCALE``, fitted by
   maximum likelihood on measured null scores (``python -m benchmarks.null_trials``).
4. The payload is decoded by soft-decision Viterbi from the soft bits summed over
   every repetition of the block, and checked with its CRC. When no path passes, it is
   decoded once more with soft values weighted by the agreement measured in each frequency
   region and reliability class (:func:`~provenance.watermark.decode.channel_state_soft`).
5. Segments: per-slot agreement with the pilots and the decoded codeword, smoothed
   over 0.5 s, gives the marked time spans; the search then repeats on the unmarked
   rest of the file to find other marked parts (e.g. splices of other marked files).
6. Clipping: when enough of the input lies in clipped runs (:mod:`.clipping`), the test is
   also run with the clipped tiles erased (weight zero), and the better of the two is kept
   with its p-value doubled (a union bound over the two readings).
7. Echo: when the cepstrum of the marked band shows one dominant echo (:mod:`.echo`), the file
   is also read through the echo's inverse filter; the better reading is kept, again with the
   p-values doubled.
8. Issued payloads: when the caller passes the payloads it has issued (:mod:`.known`) and the
   mark is found but no path passes the CRC, the reported reading is made again with a list of
   65,536 paths per block phase and soft reading (whole file, and the pieces jointly), and the
   paths whose CRC passes are looked up among them; a store that can list its payloads also has
   each issued codeword correlated with the file's soft values
   (:func:`~provenance.watermark.known.match_issued`). An issued payload confirms a mark as a
   passed CRC does (the p-values of these routes: :mod:`.confirm`). A decoded payload that was
   never issued is matched the same way, and an issued one that matches replaces it (its CRC
   may have passed by chance: :func:`_issued_instead`).
"""

from __future__ import annotations

import dataclasses
import math
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
from scipy import special

from provenance.core.audio import Audio, require_audio
from provenance.core.errors import InputError
from provenance.core.results import Detection, Segment
from provenance.watermark.clipping import CLIP_MIN_FRACTION, clipped_fraction, clipped_samples
from provenance.watermark.confirm import (
    CONFIRM_P_VALUE,
    confirmed_p_value,
    issued_p_value,
    presence_p_value,
    store_confirmed_p_value,
)
from provenance.watermark.decode import (
    Piece,
    block_phase_options,
    codeword_agreement,
    decode_at,
    decode_joint,
    expected_symbols,
    join_pieces,
    presence_agreement,
    repetition_phases,
    slot_agreement,
    whole_reading,
)
from provenance.watermark.echo import cancel_echo, find_echo
from provenance.watermark.embed import bits_to_hex, payload_to_bits
from provenance.watermark.features import (
    FINE,
    Features,
    Grouped,
    clip_weights,
    features_from_band_power,
    grouped,
    timeline_features,
)
from provenance.watermark.keys import WatermarkKey, as_key
from provenance.watermark.known import MAX_FALSE_MATCH, IssuedList, KnownPayloads, false_match_bound, match_issued
from provenance.watermark.layout import DEFAULT_PARAMS, Layout, WatermarkParams
from provenance.watermark.model import resample
from provenance.watermark.presence import ScanTables, null_scale, p_value_from_z, scan
from provenance.watermark.search import (
    SEARCH_WINDOW_S,
    min_search_slots,
    search_hypotheses,
    search_warp,
    unwarped_features,
)
from provenance.watermark.segments import (
    SEGMENT_EDGE_S,
    SEGMENT_MIN_S,
    SEGMENT_Z,
    segments_from_agreement,
    smoothed_z,
    trim_edges,
)
from provenance.watermark.warp import IDENTITY, Warp, resampled_band_power

DEFAULT_THRESHOLD = 1e-6
"""Default p-value threshold for ``found``."""
MAX_SEGMENT_SEARCHES = 4
"""Alignment searches per reading: the first finds the mark, the others look for further marked
parts (another mark spliced in, a piece at another alignment) in the slots not yet covered."""
RELABEL_WINDOW_S = 1.0
"""When segments carry several payloads, each slot goes to the payload whose codeword agrees
best over this window, seconds (:func:`_segments_by_best_codeword`)."""
JOINT_PIECE_P_VALUE = 0.01
JOINT_PIECE_MIN_S = 1.0
"""Once the mark is found, a further alignment whose p-value is above the threshold but at most
``JOINT_PIECE_P_VALUE``, or that was found in less than a block of remaining audio (at least
``JOINT_PIECE_MIN_S`` seconds) where the null law was not calibrated, is not reported as a
segment but joins the joint decode of the pieces."""


def check_threshold(threshold: object) -> None:
    """:class:`InputError` unless ``threshold`` is a p-value strictly between 0 and 1: at 1 or above
    every file counts as marked, at 0 or below (or NaN) none does."""
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float, np.floating)) or not 0.0 < threshold < 1.0:
        raise InputError(f"threshold is a p-value between 0 and 1 (exclusive), got {threshold!r}")


def detect_features(
    x16: np.ndarray,
    key: WatermarkKey | bytes | str | Path,
    *,
    duration_s: float,
    threshold: float = DEFAULT_THRESHOLD,
    params: WatermarkParams = DEFAULT_PARAMS,
    source_rate_hz: float | None = None,
    search: bool = True,
    clipped16: np.ndarray | None = None,
    known: KnownPayloads | None = None,
    checkpoint: Callable[[], None] | None = None,
) -> Detection:
    """Detect in a 16 kHz mono signal (see :func:`detect`); ``source_rate_hz`` is the rate of the
    file it came from (bands above its Nyquist frequency are ignored); ``clipped16`` is the
    clipped share of each 16 kHz sample (:func:`~provenance.watermark.clipping.clipped_fraction`)
    or None; ``known``: the issued payloads, if the caller has them (:mod:`.known`);
    ``checkpoint``: called between the search's steps (see :func:`detect`)."""
    layout = Layout.from_key(as_key(key), params)
    tables = ScanTables.for_layout(layout)
    bp, feat = timeline_features(x16, params, source_rate_hz)
    if feat.v.shape[1] < 2:
        return Detection(False, None, 1.0, 0.0, (), threshold, duration_s)
    det, chosen = _unedited_reading(x16, bp, feat, layout, tables, params, source_rate_hz, clipped16,
                                    threshold=threshold, duration_s=duration_s)

    def unedited(d: Detection) -> Detection:
        return _with_issued_payload(d, lambda kn: (
            _detect_in(f, layout, tables, threshold=threshold, duration_s=duration_s,
                       hypotheses=int(det.details["hypotheses"]), known=kn)
            for f in _readings_of(det, *chosen, clipped16, params, source_rate_hz)), known)

    if not search or (det.found and det.payload is not None):
        return unedited(det)
    # Not found, or found without its payload: a pitch shift of a semitone or a small time
    # stretch can leave enough of the mark in place to be found, but not to be decoded.
    searched = _search_readings(x16, feat, layout, tables, params, source_rate_hz,
                                threshold=threshold, duration_s=duration_s, checkpoint=checkpoint)
    if searched is None:
        return unedited(det)
    wdet, warped_feat, warp, start = searched
    best, warped = _unedited_or_searched(det, wdet)
    if not warped:
        # The unedited reading: found without its payload, or not found (the issued payloads may
        # name it, and confirm a mark that nearly passed the presence test).
        return unedited(best)
    return _with_issued_payload(best, lambda kn: iter([
        _detect_in(warped_feat, layout, tables, threshold=threshold, duration_s=duration_s,
                   hypotheses=search_hypotheses(), warp=warp, start_s=start / params.analysis_rate_hz, known=kn)]),
        known)


def _unedited_reading(
    x16: np.ndarray, bp: np.ndarray, feat: Features, layout: Layout, tables: ScanTables, params: WatermarkParams,
    source_rate_hz: float | None, clipped16: np.ndarray | None, *, threshold: float, duration_s: float,
) -> tuple[Detection, tuple[np.ndarray, Features]]:
    """The reading of the unedited timeline (:func:`_detect_timeline`) from the band power ``bp``
    and features ``feat`` of the 16 kHz signal ``x16``, and once more with the echo undone when the
    file holds one strong echo (:func:`~provenance.watermark.echo.find_echo`; the better reading is
    kept, with the echo in ``details``). Returns the detection and the band power and features
    it was read from."""
    echo = find_echo(x16, params)
    readings = 1 if echo is None else 2
    det = _detect_timeline(bp, feat, layout, tables, params, source_rate_hz, clipped16,
                           threshold=threshold, duration_s=duration_s, readings=readings)
    # The features the reported reading was made from (for the issued-payload step).
    chosen = (bp, feat)
    if echo is not None:
        # The file holds one strong echo: read it a second time with the echo undone, and keep
        # the better reading (both p-values carry the union bound over the two).
        bp_e, feat_e = timeline_features(cancel_echo(x16, echo), params, source_rate_hz)
        det_e = _detect_timeline(bp_e, feat_e, layout, tables, params, source_rate_hz, clipped16,
                                 threshold=threshold, duration_s=duration_s, readings=readings)
        best = _better_reading([det, det_e])
        echo_info = {"echo_delay_s": round(echo.delay_s, 4), "echo_gain": round(echo.gain, 3),
                     "echo_cancelled": best is det_e}
        det = dataclasses.replace(best, details={**best.details, **echo_info})
        if best is det_e:
            chosen = (bp_e, feat_e)
    return det, chosen


def _unedited_or_searched(det: Detection, wdet: Detection) -> tuple[Detection, bool]:
    """The reading to report of the unedited one ``det`` and the search's ``wdet``
    (:func:`_search_readings`), with both readings' z and p-values in ``details``, and whether it
    is the search's: a found mark gives way only to a warped reading whose payload decodes, a
    missed one to the smaller p-value."""
    if det.found:
        warped = wdet.found and wdet.payload is not None
    else:
        warped = wdet.p_value < det.p_value
    best = wdet if warped else det
    details = {**best.details,
               "unedited_z": det.details["z"], "unedited_p_value": det.p_value,
               "search_z": wdet.details["z"], "search_p_value": wdet.p_value,
               "search_speed": wdet.speed, "search_pitch_semitones": wdet.pitch_semitones,
               "search_noise_floor": wdet.details["noise_floor"]}
    return dataclasses.replace(best, details=details), warped


def _search_readings(
    x16: np.ndarray, feat: Features, layout: Layout, tables: ScanTables, params: WatermarkParams,
    source_rate_hz: float | None, *, threshold: float, duration_s: float,
    checkpoint: Callable[[], None] | None = None,
) -> tuple[Detection, Features, Warp, int] | None:
    """The tempo and pitch search (:func:`~provenance.watermark.search.search_warp`) with both reliability readings, with and
    without the noise-floor discount (see :func:`_detect_timeline`: steady content ranks the
    warps poorly with the discount). Returns the better warped detection (one whose payload
    decodes, then the smaller p-value; ``details["noise_floor"]`` says which reading), the
    features it was read from, its warp and the first sample of its window (16 kHz); None when
    the signal is too short to search. The p-values carry the union bound over both readings'
    warps, :func:`~provenance.watermark.search.search_hypotheses`."""
    searched = search_warp(x16, feat, layout, tables, params, source_rate_hz, (True, False), checkpoint)
    if searched is None:
        return None
    readings: list[tuple[Detection, Features, Warp, int]] = []
    for noise_floor, (warp, resampled, start, end) in zip((True, False), searched):
        wfeat = unwarped_features(resampled, warp, params, source_rate_hz, noise_floor=noise_floor)
        wdet = _detect_in(wfeat, layout, tables, threshold=threshold, duration_s=duration_s,
                          hypotheses=search_hypotheses(), warp=warp, start_s=start / params.analysis_rate_hz)
        if wdet.found:
            wdet = _extend_warped(wdet, x16, warp, (start, end), layout, tables, params, source_rate_hz,
                                  threshold=threshold, duration_s=duration_s, noise_floor=noise_floor)
        wdet = dataclasses.replace(wdet, details={**wdet.details, "noise_floor": noise_floor})
        readings.append((wdet, wfeat, warp, start))
        if wdet.found and wdet.payload is not None:
            break
    best = _better_reading([item[0] for item in readings])
    return next(item for item in readings if item[0] is best)


def _readings_of(
    det: Detection, bp: np.ndarray, feat: Features, clipped16: np.ndarray | None, params: WatermarkParams,
    source_rate_hz: float | None,
) -> list[Features]:
    """The features of the timeline reading ``det`` reports (with or without the noise-floor
    discount, :func:`_detect_timeline`), then those of the other reading of a clipped file
    (:func:`_detect_clipped`: as is, and with the clipped tiles erased)."""
    noise_floor = bool(det.details.get("noise_floor", True))
    if not noise_floor:
        feat = features_from_band_power(bp, params, source_rate_hz, noise_floor=False)
    if clipped16 is None or "clipping_erased" not in det.details:
        return [feat]
    erased = features_from_band_power(bp, params, source_rate_hz, noise_floor=noise_floor,
                                       tile_weight=clip_weights(clipped16, bp.shape[0], params))
    return [erased, feat] if det.details["clipping_erased"] else [feat, erased]


def _with_issued_payload(
    det: Detection, rereads: Callable[[KnownPayloads], Iterator[Detection]], known: KnownPayloads | None
) -> Detection:
    """``det``, with the payload named by matching against the issued payloads when its payload
    did not decode (:mod:`provenance.watermark.known`). ``rereads`` runs the reading ``det``
    reports again with ``known`` (the detector is deterministic, so it finds the same alignment
    and pieces), then any other reading worth trying. For a found mark only the payload, its
    confidence, the segments' payloads, the p-value (the better of the routes open to it) and
    ``details`` change. A mark the presence test missed is found when an issued payload
    confirms it (:func:`~provenance.watermark.confirm.issued_p_value`, with the false-match bound over every reading tried).
    When the issued payloads can be listed, the presence test alone keeps a smaller share of the
    false-positive budget (:func:`~provenance.watermark.confirm.presence_p_value`), so a mark found only just, that no payload
    confirms, can end up missed."""
    if known is None:
        return det
    listing = isinstance(known, IssuedList)
    presence = float(det.details.get("presence_p_value", 1.0))
    # A decoded payload that was never issued is read again: its CRC may have passed by chance
    # (_issued_instead).
    unissued = det.payload is not None and not known.find([det.payload])
    if det.details.get("crc_confirmed"):
        # Its payload decoded (CRC): with the issued payloads the confirmed route is wider. If that
        # is not enough, only the matched route is left to try.
        det = _with_p_value(det, store_confirmed_p_value(presence))
        if (det.found or not listing) and not unissued:
            return det
    else:
        det = _with_p_value(det, presence_p_value(presence, listing=listing))
        if (det.payload is not None and not unissued) or (
                not det.found and presence > CONFIRM_P_VALUE and not listing):
            return det
    candidates = tests = 0
    best_z = 0.0
    for again in rereads(known):
        candidates += int(again.details.get("issued_candidates", 0))
        tests += int(again.details.get("issued_correlation_tests", 0))
        best_z = max(best_z, float(again.details.get("issued_correlation_z", 0.0)))
        source = again.details.get("payload_source")
        if source not in ("issued_payloads", "issued_correlation") or again.payload is None:
            continue
        records = int(again.details["issued_records"])
        bound = false_match_bound(candidates, records)  # over all the readings tried
        corr_bound = again.details.get("issued_correlation_bound")  # with a store that lists its payloads
        if source == "issued_correlation":
            bound += float(corr_bound)
        if bound > MAX_FALSE_MATCH:
            break
        info = {"payload_source": source, "issued_candidates": candidates, "issued_correlation_tests": tests,
                "issued_records": records, "issued_false_match_bound": bound}
        if corr_bound is not None:
            info["issued_correlation_z"] = again.details["issued_correlation_z"]
            info["issued_correlation_bound"] = corr_bound = float(corr_bound)
        pval = issued_p_value(float(again.details.get("presence_p_value", presence)), corr_bound)
        if det.found and unissued:
            # The reading again, with the issued payload in place of the one decoded: its segments
            # follow that payload's codeword.
            return dataclasses.replace(again, p_value=min(det.p_value, pval),
                                       details={**det.details, **again.details, **info})
        if det.found:
            segments = tuple(seg if seg.payload is not None else dataclasses.replace(seg, payload=again.payload)
                             for seg in det.segments)
            return dataclasses.replace(det, payload=again.payload, bit_confidence=again.bit_confidence,
                                       p_value=min(det.p_value, pval), segments=segments,
                                       details={**det.details, **info})
        if pval > det.threshold or not again.found:
            break
        info["store_confirmed"] = True
        return dataclasses.replace(again, p_value=pval, details={**det.details, **again.details, **info})
    return dataclasses.replace(det, details={**det.details, "issued_candidates": candidates,
                                             "issued_correlation_tests": tests, "issued_correlation_z": best_z})


def _with_p_value(det: Detection, pval: float) -> Detection:
    """``det`` with p-value ``pval``, no longer found (nor reporting a payload or segments) when
    that is above its threshold."""
    if pval <= det.threshold or not det.found:
        return dataclasses.replace(det, p_value=pval)
    return dataclasses.replace(det, found=False, payload=None, p_value=pval, bit_confidence=0.0, segments=())


def _better_reading(readings: list[Detection]) -> Detection:
    """Of several readings of one file, the one whose payload decodes among those found, then
    the one with the smaller p-value. When only one of several found readings decodes, that many
    decodes were tried, which multiplies the chance of a CRC passing by accident as much."""
    return min(readings, key=lambda d: (not (d.found and d.payload is not None), d.p_value))


def _detect_timeline(
    bp: np.ndarray, feat: Features, layout: Layout, tables: ScanTables, params: WatermarkParams,
    source_rate_hz: float | None, clipped16: np.ndarray | None, *, threshold: float, duration_s: float,
    readings: int = 1,
) -> Detection:
    """Presence test and decoding on the unedited timeline, read with two sets of reliabilities.

    The first (``feat``) discounts the tiles near each band's floor, the 5th percentile of the
    file's tile levels: added noise fills the quiet tiles of speech pauses and sparse sounds, and
    there the floor is that noise. In steady content (rain, an ambience bed, a drone: most of a
    generated soundtrack) the floor is the content itself, every tile carries the mark, and the
    discount throws most of them away, so unless the first reading finds the mark and decodes
    its payload, the file is read again without it. Both p-values are doubled (a union bound over
    the two readings; the first is reported as soon as it decodes) and multiplied by
    ``readings``, the number of readings of the file tried otherwise (2 when an echo is also
    undone). ``details["noise_floor"]`` says which reading is reported."""
    first = _detect_weighted(bp, feat, layout, tables, params, source_rate_hz, clipped16,
                             threshold=threshold, duration_s=duration_s, readings=2 * readings, noise_floor=True)
    if first.found and first.payload is not None:
        return dataclasses.replace(first, details={**first.details, "noise_floor": True})
    flat = features_from_band_power(bp, params, source_rate_hz, noise_floor=False)
    second = _detect_weighted(bp, flat, layout, tables, params, source_rate_hz, clipped16,
                              threshold=threshold, duration_s=duration_s, readings=2 * readings, noise_floor=False)
    best = _better_reading([first, second])
    return dataclasses.replace(best, details={**best.details, "noise_floor": best is first})


def _detect_weighted(
    bp: np.ndarray, feat: Features, layout: Layout, tables: ScanTables, params: WatermarkParams,
    source_rate_hz: float | None, clipped16: np.ndarray | None, *, threshold: float, duration_s: float,
    readings: int, noise_floor: bool,
) -> Detection:
    """One reading of :func:`_detect_timeline`, with clipped tiles read as erasures when enough
    of the file is clipped; ``readings`` multiplies the p-value."""
    if clipped16 is not None and float(clipped16.mean()) >= CLIP_MIN_FRACTION:
        erased = features_from_band_power(bp, params, source_rate_hz, noise_floor=noise_floor,
                                           tile_weight=clip_weights(clipped16, bp.shape[0], params))
        return _detect_clipped(feat, erased, layout, tables, threshold=threshold, duration_s=duration_s,
                               readings=readings)
    return _detect_in(feat, layout, tables, threshold=threshold, duration_s=duration_s, hypotheses=readings)


def _detect_clipped(
    feat: Features, erased: Features, layout: Layout, tables: ScanTables, *, threshold: float,
    duration_s: float, readings: int = 1,
) -> Detection:
    """The presence test read twice, as is and with the clipped tiles erased; the p-values are
    doubled (a union bound over the two readings), and multiplied by ``readings`` as well (see
    :func:`_detect_timeline`). The better reading is kept (:func:`_better_reading`)."""
    both = [
        _detect_in(f, layout, tables, threshold=threshold, duration_s=duration_s, hypotheses=2 * readings)
        for f in (feat, erased)
    ]
    best = _better_reading(both)
    return dataclasses.replace(best, details={**best.details, "clipping_erased": best is both[1]})


def _weak_piece(
    feat: Features, layout: Layout, phase: int, offset: int, mask: np.ndarray
) -> tuple[Piece, bool]:
    """A piece not reported on its own, at one alignment, and whether it could be placed: the
    slots of ``mask`` where its presence agreement (pilots and lattice) is significant, or all
    of ``mask`` when there are none (not placed)."""
    agree, w2 = presence_agreement(feat, layout, phase, offset, mask)
    runs = segments_from_agreement(agree, w2, mask, layout.params.slot_s)
    piece = np.zeros_like(mask) if runs else mask.copy()
    for a, b in runs:
        piece[a:b] = 1.0
    return Piece(phase, offset, piece, reported=False), bool(runs)


def _segments_of_joint(
    payload: str, pieces: list[Piece], agreements: list[tuple[np.ndarray, np.ndarray]],
    segments: list[Segment], seg_slots: list[tuple[int, int, int]],
    make_segment: Callable[[int, int, int, np.ndarray, np.ndarray, str | None], Segment], slot_s: float,
) -> list[Segment]:
    """Segments after a joint decode of ``pieces`` gave ``payload``: a reported segment
    (``seg_slots``: its piece, first and end slot) takes the payload where it agrees with its
    codeword (the other side of a splice of two marks does not), and the pieces not reported on
    their own, which the CRC now vouches for, become segments where they agree with it."""
    out = list(segments)
    for i, (k, a, b) in enumerate(seg_slots):
        agree, w2 = agreements[k]
        if make_segment(a, b, pieces[k].phase, agree, w2, None).p_value < special.ndtr(-SEGMENT_Z):
            out[i] = dataclasses.replace(out[i], payload=payload)
    for pc, (agree, w2) in zip(pieces, agreements):
        if not pc.reported:
            runs = segments_from_agreement(agree, w2, pc.mask, slot_s)
            out += [make_segment(a, b, pc.phase, agree, w2, payload) for a, b in runs]
    return out


def _issued_instead(
    feat: Features, layout: Layout, phase: int, offset: int, mask: np.ndarray, known: KnownPayloads
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float, np.ndarray, dict] | None:
    """An issued payload that the slots in ``mask`` at one alignment match, for a reading whose
    decoded payload was never issued; None if none matches.

    A decode whose CRC passed is still wrong with probability up to ``CRC_PASS_BOUND`` when the
    codeword is barely readable (a mark in a few seconds at the edge of an excerpt): the list's
    paths differ in the bits the file hardly carries, and one of them passes the CRC by chance.
    Its payload then names no record, while the issued payload the file carries can still match
    (:func:`~provenance.watermark.known.match_issued`, with its false-match bound). Returns the
    payload bits, per-slot agreement with its codeword and weight, bit confidence, the codeword's
    symbols and the match's details."""
    g = grouped(feat, layout, phase, offset, mask)
    options = block_phase_options([g.w * np.cos(2 * np.pi * g.r)], layout)
    bits, conf, info, expected = match_issued([(g, options)], layout, known, lists=True)
    if bits is None or expected is None:
        return None
    agree, w2 = slot_agreement(g, codeword_agreement(g, expected), layout)
    return bits, agree, w2, conf, expected, info


@dataclasses.dataclass(frozen=True)
class _FileClock:
    """Where the slots of one reading's features lie in the file, for the times it reports.

    ``warp`` and ``start_s`` map feature time ``t`` (seconds) back to file time
    ``start_s + warp.time_scale * t``, kept within ``[0, duration_s]``."""

    slot_s: float
    """Slot length, seconds."""
    fine_s: float
    """Fine hop (one phase step of the alignment search), seconds."""
    edge_slots: int
    """Slots a segment's reported span may lose at each edge (``SEGMENT_EDGE_S``)."""
    min_slots: int
    """Shortest reported span, slots (``SEGMENT_MIN_S``)."""
    duration_s: float
    start_s: float
    warp: Warp

    @classmethod
    def of(cls, params: WatermarkParams, *, duration_s: float, start_s: float, warp: Warp) -> _FileClock:
        slot_s = params.slot_s
        return cls(slot_s=slot_s, fine_s=slot_s / (params.slot_hops * FINE),
                   edge_slots=int(round(SEGMENT_EDGE_S / slot_s)), min_slots=int(round(SEGMENT_MIN_S / slot_s)),
                   duration_s=duration_s, start_s=start_s, warp=warp)

    def file_time(self, t: float) -> float:
        """File time of feature time ``t``, seconds rounded to the millisecond."""
        return round(float(min(self.duration_s, max(0.0, self.start_s + self.warp.time_scale * t))), 3)

    def segment(self, a: int, b: int, ph: int, agree: np.ndarray, w2: np.ndarray, payload: str | None) -> Segment:
        """The segment of slots ``a:b`` read at fine phase ``ph``, its span trimmed to where the
        per-slot agreement ``agree`` (weights ``w2``) holds, and its p-value from that agreement."""
        # Runs keep their full extent for masking and decoding; only the reported span is trimmed.
        a, b = trim_edges(agree, w2, a, b, self.edge_slots, self.min_slots)
        var = 0.5 * float(w2[a:b].sum())
        seg_z = float(agree[a:b].sum()) / math.sqrt(var) if var > 0 else 0.0
        t0 = ph * self.fine_s
        return Segment(start_s=self.file_time(t0 + a * self.slot_s),
                       end_s=self.file_time(t0 + b * self.slot_s + 2 * self.fine_s),
                       payload=payload, p_value=float(special.ndtr(-seg_z)))


@dataclasses.dataclass(frozen=True)
class _Alignment:
    """The best alignment of one search: fine phase, block offset (slots), its presence score
    standardised by the null (``z``; ``z_raw`` before, ``null_scale`` the null's spread) and its
    p-value (with the union bound over the hypotheses)."""

    phase: int
    offset: int
    z: float
    z_raw: float
    null_scale: float
    p_value: float

    def details(self, clock: _FileClock, hypotheses: int) -> dict:
        """The alignment as reported in ``Detection.details``."""
        return {"z": self.z, "z_raw": self.z_raw, "null_scale": self.null_scale,
                "phase": self.phase, "offset_slots": self.offset,
                "alignment_s": clock.file_time(self.offset * clock.slot_s + self.phase * clock.fine_s),
                "hypotheses": hypotheses}


@dataclasses.dataclass
class _Searches:
    """What the alignment searches of one reading have found (:func:`_search_alignments`)."""

    mask: np.ndarray
    """Per slot: 1.0 while no segment or piece covers it yet, else 0.0."""
    first: tuple[float, str | None, float, dict] | None = None
    """The first search's p-value, payload (hex) or None, bit confidence and details: the reading
    that is reported."""
    segments: list[Segment] = dataclasses.field(default_factory=list)
    seg_slots: list[tuple[int, int, int]] = dataclasses.field(default_factory=list)
    """(piece index, first slot, end slot) of each segment."""
    pieces: list[Piece] = dataclasses.field(default_factory=list)


@dataclasses.dataclass(frozen=True)
class _Reported:
    """The reading :func:`_detect_in` reports, as its steps complete it."""

    p_value: float
    payload: str | None
    conf: float
    """Bit confidence of the payload."""
    segments: list[Segment]
    info: dict
    """``Detection.details``."""


def _detect_in(
    feat: Features,
    layout: Layout,
    tables: ScanTables,
    *,
    threshold: float,
    duration_s: float,
    hypotheses: int = 1,
    warp: Warp = IDENTITY,
    start_s: float = 0.0,
    known: KnownPayloads | None = None,
) -> Detection:
    """Presence test, decoding and segments on features of the unedited timeline.

    ``hypotheses`` is the number of tempo/pitch hypotheses the features were chosen from
    (the p-value is multiplied by it: a union bound); ``warp`` and ``start_s`` map feature
    time ``t`` back to file time ``start_s + warp.time_scale * t``. ``known``: issued payloads
    to match a found but undecoded mark against (:func:`_with_issued_payload` passes them).

    Steps: the alignment searches (:func:`_search_alignments`), the payload of a found mark whose
    whole-file decode failed taken from its parts (:func:`_named_by_parts`), then the match
    against the issued payloads (:func:`_with_issued_match`).
    """
    clock = _FileClock.of(layout.params, duration_s=duration_s, start_s=start_s, warp=warp)
    searched = _search_alignments(feat, layout, tables, clock, threshold=threshold, hypotheses=hypotheses,
                                  known=known)
    assert searched.first is not None
    pval, payload, conf, info = searched.first
    rep = _Reported(pval, payload, conf, searched.segments, info)
    if rep.p_value <= threshold and rep.payload is None and rep.segments:
        rep = _named_by_parts(rep, feat, layout, clock, searched)
    if known is not None:
        rep = _with_issued_match(rep, feat, layout, clock, searched.pieces, known, threshold=threshold)
    if rep.p_value <= threshold and rep.payload is not None and "joint_pieces" not in rep.info:
        rep = _pieces_vouched_by_codeword(rep, feat, layout, clock, searched.pieces)
    if rep.p_value <= threshold:
        rep = _segments_by_best_codeword(rep, feat, layout, clock, searched)
    found = rep.p_value <= threshold
    return Detection(
        found=found,
        payload=rep.payload if found else None,
        p_value=rep.p_value,
        bit_confidence=rep.conf if found else 0.0,
        segments=tuple(sorted(rep.segments, key=lambda s: s.start_s)) if found else (),
        threshold=threshold,
        duration_s=duration_s,
        speed=round(warp.speed, 5),
        pitch_semitones=round(warp.pitch_semitones, 4),
        details=rep.info,
    )


def _search_alignments(
    feat: Features, layout: Layout, tables: ScanTables, clock: _FileClock, *, threshold: float, hypotheses: int,
    known: KnownPayloads | None,
) -> _Searches:
    """Up to ``MAX_SEGMENT_SEARCHES`` alignment searches over the slots not yet covered. The first
    gives the reported reading (presence p-value, confirmed by a decoded payload where it can be:
    :func:`~provenance.watermark.confirm.confirmed_p_value`); each search that passes
    ``threshold`` adds the segments where its reading agrees, and once the mark is found a weaker
    one joins the joint decode as a piece (``JOINT_PIECE_P_VALUE``)."""
    params = layout.params
    s = _Searches(mask=np.ones(feat.v.shape[1]))
    for _search in range(MAX_SEGMENT_SEARCHES):
        al = _best_alignment(feat, layout, tables, s.mask, hypotheses)
        if s.first is not None and (al.p_value > threshold or s.mask.sum() < params.block_slots):
            if al.p_value > JOINT_PIECE_P_VALUE:
                break
            # Not reported on its own (too weak, or found in less audio than the null law was
            # calibrated on), but it may complete the codeword (see decode_joint).
            weak, placed = _weak_piece(feat, layout, al.phase, al.offset, s.mask)
            s.pieces.append(weak)
            if not placed:  # it stands for the whole rest: nothing is left to search
                break
            s.mask = s.mask * (1.0 - weak.mask)
        else:
            payload, agree, w2, conf, expected, issued_info = _decode_alignment(feat, layout, al, s.mask, known)
            info = {**al.details(clock, hypotheses), **issued_info}
            pval = al.p_value
            if s.first is None:
                info["presence_p_value"] = pval
                if payload is not None and pval <= CONFIRM_P_VALUE:
                    info["crc_confirmed"] = True  # the p-value below is the confirmed route's
                pval = confirmed_p_value(pval, payload is not None)
                s.first = (pval, payload, conf, info)
            if pval > threshold:
                break
            runs = segments_from_agreement(agree, w2, s.mask, clock.slot_s)
            if not runs:
                break
            _add_reported_piece(s, feat, layout, clock, al, runs, payload, expected)
        if s.mask.sum() < JOINT_PIECE_MIN_S / clock.slot_s:
            break
    return s


def _best_alignment(
    feat: Features, layout: Layout, tables: ScanTables, mask: np.ndarray, hypotheses: int
) -> _Alignment:
    """The alignment whose presence score over the slots in ``mask`` is highest, that score
    standardised by the robust location and spread of every alignment's score
    (:func:`~provenance.watermark.presence.null_scale`), and its p-value times ``hypotheses``."""
    z = scan(feat, layout, mask, tables)
    ph, off = (int(i) for i in np.unravel_index(int(np.argmax(z)), z.shape))
    loc, scale = null_scale(z, (ph, off))
    z_eff = (float(z[ph, off]) - loc) / scale
    return _Alignment(phase=ph, offset=off, z=z_eff, z_raw=float(z[ph, off]), null_scale=scale,
                      p_value=min(1.0, p_value_from_z(z_eff) * hypotheses))


def _decode_alignment(
    feat: Features, layout: Layout, al: _Alignment, mask: np.ndarray, known: KnownPayloads | None
) -> tuple[str | None, np.ndarray, np.ndarray, float, np.ndarray | None, dict]:
    """The payload decoded at alignment ``al`` from the slots in ``mask``; with the issued
    payloads, a decoded payload that was never issued gives way to an issued one that matches
    (:func:`_issued_instead`). Returns the payload (hex) or None, the per-slot agreement and
    weight, the bit confidence, the codeword's symbols (None when nothing decoded) and the
    details of that match (empty without one)."""
    payload_bits, agree, w2, conf, expected = decode_at(feat, layout, al.phase, al.offset, mask)
    payload = bits_to_hex(payload_bits) if payload_bits is not None else None
    if payload is not None and known is not None and not known.find([payload]):
        issued = _issued_instead(feat, layout, al.phase, al.offset, mask, known)
        if issued is not None:
            payload_bits, agree, w2, conf, expected, issued_info = issued
            return bits_to_hex(payload_bits), agree, w2, conf, expected, {**issued_info, "unissued_crc_pass": payload}
    return payload, agree, w2, conf, expected, {}


def _add_reported_piece(
    s: _Searches, feat: Features, layout: Layout, clock: _FileClock, al: _Alignment, runs: list[tuple[int, int]],
    payload: str | None, expected: np.ndarray | None,
) -> None:
    """Add the segments of ``runs`` (first and end slot) found at alignment ``al``, each with the
    payload it carries; their slots leave ``s.mask`` and make one reported piece."""
    n_slots = feat.v.shape[1]
    piece = np.zeros(n_slots)
    for a, b in runs:
        seg_mask = np.zeros(n_slots)
        seg_mask[a:b] = 1.0
        if expected is not None:
            # The runs are where the decoded codeword itself agrees. A splice of another
            # payload at this alignment (two outputs of one key) agrees through its pilots, a
            # fifth of the groups, and a loud one reaches SEGMENT_Z with them alone: a run
            # carries this payload only where its payload groups agree too. Decoding a run
            # again, too short to hold the codeword, would pass the CRC by chance with
            # probability up to CRC_PASS_BOUND and name a payload nobody issued.
            g = grouped(feat, layout, al.phase, al.offset, seg_mask)
            seg_agree, seg_w2 = slot_agreement(g, codeword_agreement(g, expected), layout)
            seg_pay = payload if _carries_codeword(_without_pilots(g, layout), expected, layout) else None
        else:
            seg_payload_bits, seg_agree, seg_w2, _, _ = decode_at(feat, layout, al.phase, al.offset, seg_mask)
            seg_pay = bits_to_hex(seg_payload_bits) if seg_payload_bits is not None else None
        s.segments.append(clock.segment(a, b, al.phase, seg_agree, seg_w2, seg_pay))
        s.seg_slots.append((len(s.pieces), a, b))
        piece[a:b] = 1.0
        s.mask[a:b] = 0.0
    s.pieces.append(Piece(al.phase, al.offset, piece, reported=True))


def _without_pilots(g: Grouped, layout: Layout) -> Grouped:
    """``g`` with its pilot groups' weights set to 0: the pilots are the same in every mark, so
    another mark spliced in agrees with them as well as this one does; only the payload groups
    tell one payload's codeword from another's."""
    return dataclasses.replace(g, w=np.where(np.broadcast_to(layout.pilot, g.r.shape), 0.0, g.w))


def _segments_by_best_codeword(
    rep: _Reported, feat: Features, layout: Layout, clock: _FileClock, searched: _Searches
) -> _Reported:
    """The reported segments split and labelled slot by slot with the payload whose codeword
    agrees best there, when they carry two payloads or more (outputs cut together).

    Each search claims the slots where its codeword agrees with the pilots counted in, and the
    first one runs on into a part that carries another payload at the same alignment (two
    outputs of one key) for as long as its pilots agree; the other payload, decoded by a later
    search from what was left, then gets only the rest. Each payload's codeword is read at the
    alignment it was found at, over its payload groups (:func:`_without_pilots`); a slot goes
    to the payload whose smoothed agreement is highest, where that reaches ``SEGMENT_Z``, and
    keeps its label otherwise."""
    n_reported = len(searched.seg_slots)
    found: dict[str, tuple[int, int]] = {}
    for (k, _, _), seg in zip(searched.seg_slots, rep.segments[:n_reported]):
        if seg.payload is not None:
            found.setdefault(seg.payload, (searched.pieces[k].phase, searched.pieces[k].offset))
    for k, a, b in searched.seg_slots:
        for payload in _payloads_at_the_ends(feat, layout, searched.pieces[k], a, b):
            found.setdefault(payload, (searched.pieces[k].phase, searched.pieces[k].offset))
    n_slots = feat.v.shape[1]
    covered = np.zeros(n_slots)
    for _, a, b in searched.seg_slots:
        covered[a:b] = 1.0
    half = max(1, int(round(RELABEL_WINDOW_S / clock.slot_s / 2)))
    if len(found) == 1:
        other = _payload_of_the_rest(feat, layout, covered, half, *next(iter(found.items())))
        if other is not None:
            found.setdefault(other, found[next(iter(found))])
    if len(found) < 2:
        return rep
    payloads = list(found)
    readings = []
    for payload in payloads:
        phase, offset = found[payload]
        g = _without_pilots(grouped(feat, layout, phase, offset, covered), layout)
        agree, w2 = _best_block_phase_agreement(g, layout, _scrambled(payload, layout))
        readings.append((phase, agree, w2, smoothed_z(agree, w2, half)))
    z = np.stack([r[3] for r in readings])
    best = np.argmax(z, axis=0)
    confident = z[best, np.arange(n_slots)] >= SEGMENT_Z
    min_len = int(round(SEGMENT_MIN_S / clock.slot_s))
    segments: list[Segment] = []
    for (k, a, b), seg in zip(searched.seg_slots, rep.segments[:n_reported]):
        own = payloads.index(seg.payload) if seg.payload in found else -1
        label = np.where(confident[a:b], best[a:b], own)
        runs = _label_runs(label, min_len)
        if len(runs) == 1 and runs[0][2] == own:
            segments.append(seg)
            continue
        for s0, s1, lab in runs:
            if lab < 0:
                segments.append(clock.segment(a + s0, a + s1, searched.pieces[k].phase,
                                              *_piece_agreement(feat, layout, searched.pieces[k], a + s0, a + s1), None))
            else:
                phase, agree, w2, _ = readings[lab]
                segments.append(clock.segment(a + s0, a + s1, phase, agree, w2, payloads[lab]))
    segments += rep.segments[n_reported:]
    if rep.payload is None:
        # No whole reading decoded: the reading is named by the payload that holds most of it.
        held = Counter({p: 0.0 for p in payloads})
        for seg in segments:
            if seg.payload in held:
                held[seg.payload] += seg.end_s - seg.start_s
        named, seconds = held.most_common(1)[0]
        if seconds > 0:
            rep = dataclasses.replace(rep, payload=named, info={**rep.info, "payload_source": "segments"})
    return dataclasses.replace(rep, segments=segments)


def _payload_of_the_rest(
    feat: Features, layout: Layout, covered: np.ndarray, half: int, payload: str, alignment: tuple[int, int]
) -> str | None:
    """Another payload decoded, at ``alignment``, from the covered slots where ``payload``'s
    codeword does not agree (its payload groups, smoothed over ``2 * half + 1`` slots), when
    those make a block or more: the other output of a cut whose ends did not both decode."""
    phase, offset = alignment
    g = _without_pilots(grouped(feat, layout, phase, offset, covered), layout)
    agree, w2 = _best_block_phase_agreement(g, layout, _scrambled(payload, layout))
    rest = covered * (smoothed_z(agree, w2, half) < SEGMENT_Z)
    if rest.sum() < layout.params.block_slots:
        return None
    bits = decode_at(feat, layout, phase, offset, rest)[0]
    other = bits_to_hex(bits) if bits is not None else None
    return other if other != payload else None


def _payloads_at_the_ends(feat: Features, layout: Layout, piece: Piece, a: int, b: int) -> list[str]:
    """The payloads that decode from the first and the last block of a segment (slots ``a:b``)
    of at least two blocks, each on its own.

    One search's run covers two outputs of one key cut together at one timeline position
    (candidate soundtracks of one video, cut at a scene change) as long as the pilots agree,
    and its decode, mixing two codewords, fails or names one of them. Each end holds one whole
    codeword. A decode that passes its CRC by chance (``CRC_PASS_BOUND``) names a codeword that
    agrees with no slot, and so takes none in :func:`_segments_by_best_codeword`."""
    block = layout.params.block_slots
    if b - a < 2 * block:
        return []
    out = []
    for lo, hi in ((a, a + block), (b - block, b)):
        mask = np.zeros(feat.v.shape[1])
        mask[lo:hi] = 1.0
        bits = decode_at(feat, layout, piece.phase, piece.offset, mask)[0]
        if bits is not None:
            out.append(bits_to_hex(bits))
    return out


def _label_runs(label: np.ndarray, min_len: int) -> list[tuple[int, int, int]]:
    """Runs ``(start, end, label)`` of equal labels; a run shorter than ``min_len`` slots joins
    the run before it (or after it, at the start)."""
    runs: list[list[int]] = []
    for t, lab in enumerate(label.tolist()):
        if runs and runs[-1][2] == lab:
            runs[-1][1] = t + 1
        else:
            runs.append([t, t + 1, lab])
    merged: list[list[int]] = []
    for run in runs:
        if merged and (run[1] - run[0] < min_len or merged[-1][2] == run[2]):
            merged[-1][1] = run[1]
        elif merged and merged[-1][1] - merged[-1][0] < min_len:
            merged[-1] = [merged[-1][0], run[1], run[2]]
        else:
            merged.append(run)
    return [(a, b, lab) for a, b, lab in merged]


def _piece_agreement(feat: Features, layout: Layout, piece: Piece, a: int, b: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-slot presence agreement (pilots and lattice) of ``piece``'s alignment over slots ``a:b``."""
    mask = np.zeros(feat.v.shape[1])
    mask[a:b] = 1.0
    return presence_agreement(feat, layout, piece.phase, piece.offset, mask)


def _carries_codeword(g: Grouped, expected: np.ndarray, layout: Layout) -> bool:
    """Whether the groups of ``g`` agree with the codeword symbols ``expected`` by at least
    ``SEGMENT_Z`` standard deviations of their null (the rule for every segment)."""
    agree, w2 = slot_agreement(g, codeword_agreement(g, expected), layout)
    var = 0.5 * float(w2.sum())
    return var > 0 and float(agree.sum()) / math.sqrt(var) >= SEGMENT_Z


def _named_by_parts(
    rep: _Reported, feat: Features, layout: Layout, clock: _FileClock, searched: _Searches
) -> _Reported:
    """A found mark whose whole-file decode failed, named by its parts: the longest segment that
    decodes on its own, else the joint decode of the pieces (:func:`_segments_of_joint`)."""
    # The whole-file decode mixes in unmarked audio (e.g. a marked excerpt spliced into
    # other audio); the longest segment that decodes on its own then names the payload.
    decoded = [s for s in rep.segments if s.payload is not None]
    if decoded:
        return dataclasses.replace(rep, payload=max(decoded, key=lambda s: s.end_s - s.start_s).payload)
    pieces = searched.pieces
    if len(pieces) <= 1:
        return rep
    # Pieces at different alignments (the two sides of a cut, a montage of excerpts
    # shorter than a block) may carry the whole codeword only together.
    joint_bits, joint_conf, agreements = decode_joint(feat, layout, pieces)
    if joint_bits is None:
        return rep
    payload = bits_to_hex(joint_bits)
    segments = _segments_of_joint(payload, pieces, agreements, rep.segments, searched.seg_slots,
                                  clock.segment, clock.slot_s)
    return dataclasses.replace(rep, payload=payload, conf=joint_conf, segments=segments,
                               info={**rep.info, "joint_pieces": len(pieces)})


def _scrambled(payload: str, layout: Layout) -> np.ndarray:
    """The bits the codeword of ``payload`` (hex) encodes: the payload scrambled with the key."""
    return payload_to_bits(payload, layout.params.payload_bits) ^ layout.scramble


def _pieces_vouched_by_codeword(
    rep: _Reported, feat: Features, layout: Layout, clock: _FileClock, pieces: list[Piece]
) -> _Reported:
    """Segments for the pieces not reported on their own (shorter than a block, at another
    alignment: the part after a cut or an inserted gap), where they agree with the codeword of
    the reported payload, as :func:`_segments_of_joint` does after a joint decode. The CRC (or the
    issued-payload match) vouches for that codeword, so a run agreeing with it carries the same
    payload; the other side of a splice of another mark does not agree and stays out."""
    assert rep.payload is not None
    codeword_bits = _scrambled(rep.payload, layout)
    extra: list[Segment] = []
    for pc in pieces:
        if pc.reported:
            continue
        g = _without_pilots(grouped(feat, layout, pc.phase, pc.offset, pc.mask), layout)
        agree, w2 = _best_block_phase_agreement(g, layout, codeword_bits)
        runs = segments_from_agreement(agree, w2, pc.mask, clock.slot_s)
        extra += [clock.segment(a, b, pc.phase, agree, w2, rep.payload) for a, b in runs]
    if not extra:
        return rep
    return dataclasses.replace(rep, segments=rep.segments + extra,
                               info={**rep.info, "codeword_pieces": len(extra)})


def _best_block_phase_agreement(g: Grouped, layout: Layout, codeword_bits: np.ndarray
                                ) -> tuple[np.ndarray, np.ndarray]:
    """Per-slot agreement of ``g`` with the codeword of ``codeword_bits`` (and its weights) under
    the block phase it agrees with best: an edit moves a piece by any number of blocks, so the
    phase of its first repetition is unknown."""
    reps = g.r.shape[0]
    best: tuple[float, np.ndarray] | None = None
    for h in range(layout.params.block_phases):
        expected = expected_symbols(layout, codeword_bits, repetition_phases(layout, reps, h))
        agree = codeword_agreement(g, expected)
        score = float(np.sum(g.w * agree))
        if best is None or score > best[0]:
            best = (score, agree)
    assert best is not None
    return slot_agreement(g, best[1], layout)


def _with_issued_match(
    rep: _Reported, feat: Features, layout: Layout, clock: _FileClock, pieces: list[Piece], known: KnownPayloads,
    *, threshold: float,
) -> _Reported:
    """``rep`` matched against the issued payloads (:func:`~provenance.watermark.known.match_issued`,
    from the whole file's reading and the pieces' joint one) when its payload is not confirmed:
    a found mark without a payload, or, when the issued payloads can be listed, a missed one. A
    missed mark near the threshold, or any with a listing store, is tried; a match names the
    payload, and confirms a missed mark (:func:`_store_confirmed`)."""
    found = rep.p_value <= threshold
    near = found or rep.info["presence_p_value"] <= CONFIRM_P_VALUE
    listing = isinstance(known, IssuedList)
    # A payload that decoded without reaching the threshold can still be confirmed by the matched
    # route (matched_p_value), when the issued payloads can be listed.
    unconfirmed = rep.payload is None or (not found and listing)
    if not (unconfirmed and (near or listing)):
        return rep
    readings = [whole_reading(feat, layout, rep.info["phase"], rep.info["offset_slots"])]
    if len(pieces) > 1:
        _, joint, options = join_pieces(feat, layout, pieces)
        readings.append((joint, options))
    # Far from the threshold only a strong correlation can confirm the mark: the decoder's
    # long lists (seconds) are left out there.
    payload_bits, known_conf, known_info, expected = match_issued(readings, layout, known, lists=near)
    if not found and payload_bits is not None:
        rep = _store_confirmed(rep, feat, layout, clock, payload_bits, expected, known_info, threshold=threshold)
        found = rep.p_value <= threshold
    counts = ("issued_candidates", "issued_correlation_tests", "issued_correlation_z")
    info = {**rep.info, **(known_info if found else {k: v for k, v in known_info.items() if k in counts})}
    rep = dataclasses.replace(rep, info=info)
    if found and payload_bits is not None:
        payload = bits_to_hex(payload_bits)
        # Like a decoded whole-file payload, it names the segments that did not decode alone.
        segments = [seg if seg.payload is not None else dataclasses.replace(seg, payload=payload)
                    for seg in rep.segments]
        rep = dataclasses.replace(rep, payload=payload, conf=known_conf, segments=segments)
    return rep


def _store_confirmed(
    rep: _Reported, feat: Features, layout: Layout, clock: _FileClock, payload_bits: np.ndarray,
    expected: np.ndarray, known_info: dict, *, threshold: float,
) -> _Reported:
    """A mark the presence test missed, with the p-value of its confirmation by the issued payload
    ``payload_bits`` (:func:`~provenance.watermark.confirm.issued_p_value`); when that passes
    ``threshold``, its segments are where the file agrees with that payload's codeword (symbols
    ``expected``) at the first alignment."""
    # An issued payload confirms presence as a passed CRC does (see confirmed_p_value):
    # its codeword is independent of everything the presence test reads.
    pval = issued_p_value(rep.info["presence_p_value"], known_info.get("issued_correlation_bound"))
    found = pval <= threshold
    if not found:
        return dataclasses.replace(rep, p_value=pval)
    ph, off = rep.info["phase"], rep.info["offset_slots"]
    whole = np.ones(feat.v.shape[1])  # nothing was masked: the first alignment missed
    g = grouped(feat, layout, ph, off, whole)
    agree, w2 = slot_agreement(g, codeword_agreement(g, expected), layout)
    segments = [clock.segment(a, b, ph, agree, w2, bits_to_hex(payload_bits))
                for a, b in segments_from_agreement(agree, w2, whole, clock.slot_s)]
    return dataclasses.replace(rep, p_value=pval, segments=segments, info={**rep.info, "store_confirmed": True})


def _extend_warped(
    det: Detection, x16: np.ndarray, warp: Warp, done: tuple[int, int], layout: Layout,
    tables: ScanTables, params: WatermarkParams, source_rate_hz: float | None, *, threshold: float,
    duration_s: float, noise_floor: bool = True,
) -> Detection:
    """Segments of a warped mark outside the window the search chose (``done``, 16 kHz samples).

    The search aligns one window of up to ``SEARCH_WINDOW_S``; a tempo estimate good to 0.05 %
    drifts by a slot every 40 s, so the rest of a long file is read window by window, each with
    the warp found and its own alignment search. A window's segments count when its own test
    passes ``threshold`` after a union bound over the windows read; the payload and p-value
    stay those of the chosen window. ``noise_floor``: the reliability reading the warp was
    found with."""
    rate = params.analysis_rate_hz
    win = int(SEARCH_WINDOW_S * rate)
    shortest = min_search_slots(params) * params.slot_len
    starts = list(range(done[0] - win, -win, -win)) + list(range(done[1], x16.shape[-1], win))
    spans = [(max(0, a), min(x16.shape[-1], a + win)) for a in starts]
    spans = [(a, b) for a, b in spans if b - a >= shortest]
    if not spans:
        return det
    segments = list(det.segments)
    for a, b in spans:
        bp = resampled_band_power(x16[a:b], params, warp.freq_scale, params.hop // FINE)
        feat = unwarped_features(bp, warp, params, source_rate_hz, noise_floor=noise_floor)
        part = _detect_in(feat, layout, tables, threshold=threshold, duration_s=duration_s,
                          hypotheses=len(spans), warp=warp, start_s=a / rate)
        if part.found:
            segments.extend(part.segments)
    segments.sort(key=lambda seg: seg.start_s)
    return dataclasses.replace(det, segments=tuple(segments))


def detect(
    audio: Audio,
    key: WatermarkKey | bytes | str | Path,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    params: WatermarkParams = DEFAULT_PARAMS,
    search: bool = True,
    known: KnownPayloads | None = None,
    checkpoint: Callable[[], None] | None = None,
) -> Detection:
    """Look for the watermark of ``key`` in ``audio``.

    ``found`` is True when the presence p-value is at most ``threshold`` (default 1e-6).
    The payload is reported only when its CRC verifies. When the mark is not found as it
    was embedded, the detector searches speed changes, time stretches and pitch shifts
    (``search=False`` skips that); ``speed`` and ``pitch_semitones`` of the result say
    where it was found. ``known``, the payloads the operator has issued (a manifest store,
    :class:`~provenance.watermark.known.PayloadSet`), lets the detector name the payload of a
    mark that is found but too damaged to decode on its own, by matching a long list of
    decoding paths against them (:mod:`provenance.watermark.known`; ``details`` then holds
    ``payload_source`` and the bound on a false match). An issued payload also confirms the
    mark: one the presence test missed can then be found (``details["store_confirmed"]``), and a
    found one reports the better p-value of the routes open to it. When ``known`` can list its
    payloads (:class:`~provenance.watermark.known.IssuedList`), their codewords are correlated
    with the file's soft values, and the presence test alone keeps a smaller share of the
    false-positive budget (:func:`~provenance.watermark.confirm.presence_p_value`, :func:`~provenance.watermark.confirm.matched_p_value`).
    ``checkpoint`` is called between the speed/pitch search's steps (a few hundredths of a
    second apart); whatever it raises ends the detection: a caller's time limit.
    """
    check_threshold(threshold)
    audio = require_audio(audio).validate()
    x16 = resample(audio.mono(), audio.sample_rate, params.analysis_rate_hz)
    clipped16 = clipped_fraction(clipped_samples(audio.samples), audio.sample_rate,
                                 params.analysis_rate_hz, x16.shape[-1])
    return detect_features(
        x16, key, duration_s=audio.duration_s, threshold=threshold, params=params,
        source_rate_hz=audio.sample_rate, search=search, clipped16=clipped16, known=known,
        checkpoint=checkpoint,
    )
