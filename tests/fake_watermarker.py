#!/usr/bin/env python3
"""A tiny stand-in for an external watermarking CLI, used to test the command adapter.

    fake_watermarker.py add IN.wav OUT.wav HEX   -> writes OUT.wav with the payload as quiet tones
    fake_watermarker.py get IN.wav               -> prints "payload <hex> score <0..1> at <s>-<s>"

Each frame is an 8-bit preamble then the payload bits, one 20 ms symbol per bit: a tone at
3000 Hz for 1, 3600 Hz for 0, at -34 dBFS peak, added to every channel and repeated through the file.
Detection compares the two tones' energies per symbol (channel mean), votes per bit over the
repetitions, and scores the preamble agreement (2 * fraction - 1).
"""

from __future__ import annotations

import sys

import numpy as np
import soundfile as sf

PREAMBLE = np.array([1, 0, 1, 1, 0, 0, 1, 0], dtype=np.uint8)
SYMBOL_S = 0.02
F_ONE_HZ, F_ZERO_HZ = 3000.0, 3600.0
LEVEL = 0.02


def _tone(freq: float, n: int, rate: int) -> np.ndarray:
    return np.sin(2 * np.pi * freq * np.arange(n) / rate) * np.hanning(n)


def add(src: str, dst: str, payload_hex: str) -> None:
    x, rate = sf.read(src, dtype="float32", always_2d=True)
    bits = np.unpackbits(np.frombuffer(bytes.fromhex(payload_hex), dtype=np.uint8))
    frame = np.concatenate([PREAMBLE, bits])
    n = int(SYMBOL_S * rate)
    one, zero = _tone(F_ONE_HZ, n, rate), _tone(F_ZERO_HZ, n, rate)
    sig = np.zeros(x.shape[0])
    for i in range(x.shape[0] // n):
        sig[i * n : (i + 1) * n] = one if frame[i % frame.size] else zero
    sf.write(dst, np.clip(x + LEVEL * sig[:, None], -1, 1), rate, subtype="PCM_16")


def get(src: str, payload_bits: int = 64) -> None:
    x, rate = sf.read(src, dtype="float64", always_2d=True)
    m = x.mean(axis=1)
    n = int(SYMBOL_S * rate)
    flen = PREAMBLE.size + payload_bits
    one, zero = _tone(F_ONE_HZ, n, rate), _tone(F_ZERO_HZ, n, rate)
    votes = np.zeros(flen)
    count = np.zeros(flen)
    for i in range(m.size // n):
        seg = m[i * n : (i + 1) * n]
        votes[i % flen] += np.sign(abs(seg @ one) - abs(seg @ zero))
        count[i % flen] += 1
    if count.min() == 0:
        print("no complete frame")
        return
    bits = (votes > 0).astype(np.uint8)
    score = 2 * np.mean(bits[: PREAMBLE.size] == PREAMBLE) - 1
    payload = np.packbits(bits[PREAMBLE.size :]).tobytes().hex()
    print(f"payload {payload} score {score:.3f} at 0.000-{m.size / rate:.3f}")


if __name__ == "__main__":
    cmd = sys.argv[1:2]
    if cmd == ["add"] and len(sys.argv) == 5:
        add(*sys.argv[2:5])
    elif cmd == ["get"] and len(sys.argv) == 3:
        get(sys.argv[2])
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
