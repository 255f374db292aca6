"""Error correction for the watermark payload: CRC-16 and a soft-decision convolutional code.

The payload (64 bits) gets a CRC-16/CCITT, then a rate-1/2, constraint-length-7
convolutional code (generators 171/133 octal, the NASA/CCSDS code) with a zero tail.
Decoding is soft-decision list Viterbi: each coded bit arrives as a real number whose sign
is the bit (positive = 0) and whose magnitude is its reliability; the ``LIST_SIZE`` best
paths are tried in order and the first whose CRC checks is the payload. When the best path
is wrong but a close runner-up is right (bursts of erasures from a crop, a codec's errors),
the list finds it. The price: when none of the paths is right, one of the others passes the
CRC by chance with probability at most ``LIST_SIZE / 2**16`` (1.2e-4), where plain Viterbi
has 1/2**16.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

CONSTRAINT_LENGTH = 7
GENERATORS = (0o171, 0o133)
TAIL_BITS = CONSTRAINT_LENGTH - 1
CRC_BITS = 16
_N_STATES = 1 << (CONSTRAINT_LENGTH - 1)
LIST_SIZE = 8
"""Paths tried by :func:`decode_payload`."""


def crc16(bits: np.ndarray) -> np.ndarray:
    """CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF) of a bit array (MSB first), as 16 bits."""
    reg = 0xFFFF
    for b in np.asarray(bits, dtype=np.uint8):
        top = ((reg >> 15) & 1) ^ int(b)
        reg = ((reg << 1) & 0xFFFF) ^ (0x1021 if top else 0)
    return np.array([(reg >> (15 - i)) & 1 for i in range(16)], dtype=np.uint8)


def _parity(x: int) -> int:
    return bin(x).count("1") & 1


def _build_trellis() -> tuple[np.ndarray, np.ndarray]:
    """Output bits for (state, input): shape (states, 2, 2); next state: (states, 2)."""
    out = np.zeros((_N_STATES, 2, 2), dtype=np.int8)
    nxt = np.zeros((_N_STATES, 2), dtype=np.int64)
    for s in range(_N_STATES):
        for u in (0, 1):
            reg = (u << (CONSTRAINT_LENGTH - 1)) | s
            for k, g in enumerate(GENERATORS):
                out[s, u, k] = _parity(reg & g)
            nxt[s, u] = reg >> 1
    return out, nxt


_OUT, _NEXT = _build_trellis()
N_STATES = _N_STATES


# Predecessor tables: for each next state, the two (state, input) pairs that lead to it.
_PRED_STATE = np.zeros((_N_STATES, 2), dtype=np.int64)
_PRED_INPUT = np.zeros((_N_STATES, 2), dtype=np.int64)
_fill = np.zeros(_N_STATES, dtype=np.int64)
for _s in range(_N_STATES):
    for _u in (0, 1):
        _n = _NEXT[_s, _u]
        _PRED_STATE[_n, _fill[_n]] = _s
        _PRED_INPUT[_n, _fill[_n]] = _u
        _fill[_n] += 1
# Antipodal expected outputs (+1 for bit 0, -1 for bit 1) along each predecessor branch.
_PRED_SIGNS = 1.0 - 2.0 * _OUT[_PRED_STATE, _PRED_INPUT, :].astype(np.float64)  # (states, 2, 2)


def trellis() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The encoder's trellis, by the two (state, input) branches that lead to each state: their
    states and inputs ``(states, 2)`` each, and their antipodal outputs (+1 for bit 0)
    ``(states, 2, 2)``."""
    return _PRED_STATE, _PRED_INPUT, _PRED_SIGNS


# Antipodal outputs of each (state, input) branch, float32, for the long list decoder.
_SIGNS = 1.0 - 2.0 * _OUT.astype(np.float32)  # (states, inputs, 2)


def conv_encode(bits: np.ndarray) -> np.ndarray:
    """Encode bits (zero-tailed) to ``2 * (len(bits) + 6)`` coded bits."""
    bits = np.concatenate([np.asarray(bits, dtype=np.uint8), np.zeros(TAIL_BITS, dtype=np.uint8)])
    state = 0
    out = np.empty(2 * len(bits), dtype=np.uint8)
    for i, u in enumerate(bits):
        out[2 * i : 2 * i + 2] = _OUT[state, u]
        state = _NEXT[state, u]
    return out


def viterbi_decode(soft: np.ndarray, n_bits: int, list_size: int = 1) -> list[np.ndarray]:
    """Soft-decision list Viterbi decoding of a zero-tailed code.

    ``soft`` has ``2 * (n_bits + 6)`` reals, positive meaning bit 0. Returns up to
    ``list_size`` candidate messages of ``n_bits`` bits, best path metric first (with
    ``list_size=1``, the maximum-likelihood path of ordinary Viterbi decoding).
    """
    steps = n_bits + TAIL_BITS
    size = max(1, int(list_size))
    soft = np.asarray(soft, dtype=np.float64).reshape(steps, 2)
    metric = np.full((_N_STATES, size), -np.inf)
    metric[0, 0] = 0.0
    # for each step, state and rank: which of the 2 * size incoming candidates survived
    back = np.empty((steps, _N_STATES, size), dtype=np.int32)
    tail_ok = (_PRED_INPUT == 0)[..., None]
    for t in range(steps):
        branch = _PRED_SIGNS @ soft[t]  # (states, 2): correlation of each branch with the soft input
        cand = metric[_PRED_STATE] + branch[..., None]  # (states, 2 predecessors, size ranks)
        if t >= n_bits:  # tail: only zero inputs are allowed
            cand = np.where(tail_ok, cand, -np.inf)
        flat = cand.reshape(_N_STATES, 2 * size)
        keep = np.argsort(-flat, axis=1, kind="stable")[:, :size]
        back[t] = keep
        metric = np.take_along_axis(flat, keep, axis=1)
    paths = []
    for rank in range(size):
        if not np.isfinite(metric[0, rank]):
            break
        state, r = 0, rank
        bits = np.empty(steps, dtype=np.uint8)
        for t in range(steps - 1, -1, -1):
            c, r = divmod(int(back[t, state, r]), size)
            bits[t] = _PRED_INPUT[state, c]
            state = _PRED_STATE[state, c]
        paths.append(bits[:n_bits])
    return paths


def long_list_decode(soft: np.ndarray, n_bits: int, list_size: int) -> np.ndarray:
    """The ``list_size`` best messages of a zero-tailed code, ``(paths, n_bits)`` uint8, best
    path metric first (the same paths as :func:`viterbi_decode`'s list, up to ties).

    Built for lists of tens of thousands of paths: a beam search ranked by each partial path's
    metric plus the exact best metric of any completion from its state (one backward Viterbi
    pass). Keeping the ``list_size`` best partial paths by that sum loses none of the
    ``list_size`` best complete paths: distinct partial paths have distinct completions, so a
    partial path ranked below ``list_size`` others has that many complete paths above its best
    completion. The work per step is proportional to the list, not to states x list as in
    parallel list Viterbi (65,536 paths of the 80-bit message in about 0.5 s).
    """
    steps = n_bits + TAIL_BITS
    size = max(1, int(list_size))
    # float32 metrics: ranking needs no more precision, and selection runs faster
    soft = np.asarray(soft, dtype=np.float32).reshape(steps, 2)
    branch = np.einsum("sub,tb->tsu", _SIGNS, soft)  # (steps, states, inputs)
    best_rest = np.full((steps + 1, _N_STATES), -np.inf, dtype=np.float32)
    best_rest[steps, 0] = 0.0  # the tail returns the encoder to state 0
    for t in range(steps - 1, -1, -1):
        cont = branch[t] + best_rest[t + 1][_NEXT]
        if t >= n_bits:
            cont[:, 1] = -np.inf
        best_rest[t] = cont.max(axis=1)
    states = np.zeros(1, dtype=np.int64)
    metric = np.zeros(1, dtype=np.float32)
    parents: list[np.ndarray] = []
    inputs: list[np.ndarray] = []
    for t in range(steps):
        n_in = 2 if t < n_bits else 1  # tail: zero inputs only
        cand_state = _NEXT[states, :n_in].reshape(-1)
        cand_metric = (metric[:, None] + branch[t][states, :n_in]).reshape(-1)
        score = cand_metric + best_rest[t + 1][cand_state]
        keep = np.flatnonzero(np.isfinite(score))
        if keep.size > size:
            keep = keep[np.argpartition(-score[keep], size - 1)[:size]]
        parents.append((keep // n_in).astype(np.int32))
        inputs.append((keep % n_in).astype(np.uint8))
        states, metric = cand_state[keep], cand_metric[keep]
    idx = np.argsort(-metric, kind="stable")
    bits = np.empty((idx.size, steps), dtype=np.uint8)
    for t in range(steps - 1, -1, -1):
        bits[:, t] = inputs[t][idx]
        idx = parents[t][idx]
    return bits[:, :n_bits]


def crc_candidates(soft: np.ndarray, payload_bits: int, list_size: int) -> tuple[list[np.ndarray], int]:
    """Payloads of the ``list_size`` best paths whose CRC checks, best first, and the number of
    paths examined. Without the right codeword each path passes the CRC with probability
    ``2**-CRC_BITS``, so a long list yields a wrong candidate now and then: only a check against
    payloads known to have been issued makes them usable (:mod:`provenance.watermark.known`)."""
    paths = long_list_decode(soft, payload_bits + CRC_BITS, list_size)
    ok = (_crc_of_rows(paths[:, :payload_bits]) == paths[:, payload_bits:]).all(axis=1)
    return [bits[:payload_bits].copy() for bits in paths[ok]], int(paths.shape[0])


@lru_cache(maxsize=4)
def _crc_affine(n_bits: int) -> tuple[np.ndarray, np.ndarray]:
    """CRC-16 as an affine map over GF(2): ``crc16(m) = m @ A + c (mod 2)`` for ``n_bits``-bit
    messages (the CRC is linear in the message; the initial register value adds ``c``)."""
    zero = crc16(np.zeros(n_bits, dtype=np.uint8)).astype(np.int64)
    rows = np.empty((n_bits, CRC_BITS), dtype=np.int64)
    for i in range(n_bits):
        unit = np.zeros(n_bits, dtype=np.uint8)
        unit[i] = 1
        rows[i] = crc16(unit) ^ zero
    return rows, zero


def _crc_of_rows(messages: np.ndarray) -> np.ndarray:
    """:func:`crc16` of every row of ``messages`` ``(paths, n_bits)``, at once."""
    a, c = _crc_affine(messages.shape[1])
    return ((messages.astype(np.int64) @ a + c) % 2).astype(np.uint8)


def encode_payload(payload_bits: np.ndarray) -> np.ndarray:
    """Payload bits -> payload + CRC-16 -> convolutional codeword (0/1 array)."""
    payload_bits = np.asarray(payload_bits, dtype=np.uint8)
    return conv_encode(np.concatenate([payload_bits, crc16(payload_bits)]))


@lru_cache(maxsize=4)
def _codeword_affine(n_bits: int) -> tuple[np.ndarray, np.ndarray]:
    """:func:`encode_payload` as an affine map over GF(2): ``encode_payload(m) = m @ A + c (mod 2)``
    for ``n_bits``-bit payloads (the CRC and the convolutional code are both linear)."""
    zero = encode_payload(np.zeros(n_bits, dtype=np.uint8)).astype(np.float32)
    rows = np.empty((n_bits, zero.size), dtype=np.float32)
    for i in range(n_bits):
        unit = np.zeros(n_bits, dtype=np.uint8)
        unit[i] = 1
        rows[i] = (encode_payload(unit) + zero) % 2
    return rows, zero


def encode_payloads(payloads: np.ndarray) -> np.ndarray:
    """:func:`encode_payload` of every row of ``payloads`` ``(n, payload bits)``, at once: ``(n,
    coded bits)`` of 0/1. (A float matrix product, exact: each sum counts at most 64 ones.)"""
    a, c = _codeword_affine(payloads.shape[1])
    ones = np.asarray(payloads, dtype=np.float32) @ a
    ones += c
    ones -= 2.0 * np.floor(ones * 0.5)
    return ones.astype(np.uint8)


def decode_payload(soft: np.ndarray, payload_bits: int, list_size: int = LIST_SIZE) -> tuple[np.ndarray, bool]:
    """Soft codeword -> (payload bits, CRC ok): the best of ``list_size`` paths whose CRC
    checks, else the best path with ``False``."""
    paths = viterbi_decode(soft, payload_bits + CRC_BITS, list_size)
    for bits in paths:
        payload, crc = bits[:payload_bits], bits[payload_bits:]
        if np.array_equal(crc16(payload), crc):
            return payload, True
    return paths[0][:payload_bits], False


def coded_length(payload_bits: int) -> int:
    """Number of coded bits for a payload of ``payload_bits`` bits."""
    return 2 * (payload_bits + CRC_BITS + TAIL_BITS)
