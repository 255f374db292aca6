"""Error correction for the watermark payload: CRC-16 and a soft-decision convolutional code.

The payload (64 bits) gets a CRC-16/CCITT, then a rate-1/2, constraint-length-7
convolutional code (generators 171/133 octal, the NASA/CCSDS code) with a zero tail.
Decoding is soft-decision Viterbi: each coded bit arrives as a real number whose sign
is the bit (positive = 0) and whose magnitude is its reliability.
"""

from __future__ import annotations

import numpy as np

CONSTRAINT_LENGTH = 7
GENERATORS = (0o171, 0o133)
TAIL_BITS = CONSTRAINT_LENGTH - 1
CRC_BITS = 16
_N_STATES = 1 << (CONSTRAINT_LENGTH - 1)


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


def conv_encode(bits: np.ndarray) -> np.ndarray:
    """Encode bits (zero-tailed) to ``2 * (len(bits) + 6)`` coded bits."""
    bits = np.concatenate([np.asarray(bits, dtype=np.uint8), np.zeros(TAIL_BITS, dtype=np.uint8)])
    state = 0
    out = np.empty(2 * len(bits), dtype=np.uint8)
    for i, u in enumerate(bits):
        out[2 * i : 2 * i + 2] = _OUT[state, u]
        state = _NEXT[state, u]
    return out


def viterbi_decode(soft: np.ndarray, n_bits: int) -> np.ndarray:
    """Soft-decision Viterbi decoding of a zero-tailed code.

    ``soft`` has ``2 * (n_bits + 6)`` reals, positive meaning bit 0; returns ``n_bits`` bits.
    """
    steps = n_bits + TAIL_BITS
    soft = np.asarray(soft, dtype=np.float64).reshape(steps, 2)
    metric = np.full(_N_STATES, -np.inf)
    metric[0] = 0.0
    decisions = np.empty((steps, _N_STATES), dtype=np.int8)
    for t in range(steps):
        branch = _PRED_SIGNS @ soft[t]  # (states, 2): correlation of each branch with the soft input
        cand = metric[_PRED_STATE] + branch
        if t >= n_bits:  # tail: only zero inputs are allowed
            cand = np.where(_PRED_INPUT == 0, cand, -np.inf)
        choice = np.argmax(cand, axis=1)
        decisions[t] = choice
        metric = cand[np.arange(_N_STATES), choice]
    state = 0
    bits = np.empty(steps, dtype=np.uint8)
    for t in range(steps - 1, -1, -1):
        c = decisions[t, state]
        bits[t] = _PRED_INPUT[state, c]
        state = _PRED_STATE[state, c]
    return bits[:n_bits]


def encode_payload(payload_bits: np.ndarray) -> np.ndarray:
    """Payload bits -> payload + CRC-16 -> convolutional codeword (0/1 array)."""
    payload_bits = np.asarray(payload_bits, dtype=np.uint8)
    return conv_encode(np.concatenate([payload_bits, crc16(payload_bits)]))


def decode_payload(soft: np.ndarray, payload_bits: int) -> tuple[np.ndarray, bool]:
    """Soft codeword -> (payload bits, CRC ok)."""
    bits = viterbi_decode(soft, payload_bits + CRC_BITS)
    payload, crc = bits[:payload_bits], bits[payload_bits:]
    return payload, bool(np.array_equal(crc16(payload), crc))


def coded_length(payload_bits: int) -> int:
    """Number of coded bits for a payload of ``payload_bits`` bits."""
    return 2 * (payload_bits + CRC_BITS + TAIL_BITS)
