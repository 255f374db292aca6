"""Continuous sounds (ambience beds and motion-driven textures), rendered block by block.

A bed is generated in fixed blocks with filter state, control curves and spill-over of
grains carried across blocks, so a ten-minute bed costs the same memory as a ten-second
one and has no seams. Each bed is a small recipe over a :class:`Stream`: noise through
stateful filters, slow random control curves, and Poisson-timed grains (crackles, drops,
chirps). Output is stereo (2, n), roughly unit RMS before the cue's gain.

Some beds hold sounds of other categories (:data:`PARTS`: a forest's birds, a cave's drips); a
recipe adds such a part only when :meth:`Stream.allows` its category, so the negative prompt
holds inside a bed too.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.signal import butter, sosfilt, sosfilt_zi

from v2a_core.render import oneshots
from v2a_core.render.dsp import SR, bandpass, decay, highpass, lowpass, sine, white

BLOCK = 1 << 16
"""Samples per rendered block (1.37 s)."""


class Stream:
    """Stateful helpers for one bed: everything continues seamlessly from block to block."""

    def __init__(self, rng: np.random.Generator, total: int,
                 automation: Callable[[int, int], np.ndarray] | None = None,
                 excluded: frozenset[str] = frozenset()) -> None:
        self.excluded = excluded
        """Categories that must not be heard: parts of those categories are left out."""
        self.rng = rng
        self.total = total
        self.pos = 0
        self.n = 0
        self._zi: dict[str, np.ndarray] = {}
        self._sos: dict[str, np.ndarray] = {}
        self._curves: dict[str, np.ndarray] = {}
        self._carry: dict[str, np.ndarray] = {}
        self.automation = automation
        """``automation(pos, n)``: the motion level of samples ``[pos, pos + n)`` of the bed."""

    def allows(self, category: str) -> bool:
        """Whether a part that sounds as ``category`` may be added (it is not excluded)."""
        return category not in self.excluded

    def begin(self, n: int) -> None:
        self.n = n

    def end(self) -> None:
        self.pos += self.n

    # -- filtered noise -------------------------------------------------------------
    def filt(self, key: str, x: np.ndarray, kind: str, f1: float, f2: float = 0.0, order: int = 2) -> np.ndarray:
        if key not in self._sos:
            nyq = SR / 2
            if kind == "band":
                sos = butter(order, [f1 / nyq, min(f2, nyq * 0.95) / nyq], btype="bandpass", output="sos")
            else:
                sos = butter(order, min(f1, nyq * 0.95) / nyq, btype="lowpass" if kind == "low" else "highpass", output="sos")
            self._sos[key] = sos
            self._zi[key] = sosfilt_zi(sos) * 0.0
        y, self._zi[key] = sosfilt(self._sos[key], x, zi=self._zi[key])
        return y.astype(np.float32)

    def noise(self, key: str, kind: str = "white", f1: float = 0.0, f2: float = 0.0, order: int = 2) -> np.ndarray:
        x = white(self.n, self.rng)
        if kind == "white":
            return x
        return self.filt(key, x, kind, f1, f2, order)

    def brown(self, key: str, cutoff_hz: float = 400.0) -> np.ndarray:
        """Deep rumble: white noise through a steep low-pass (order 4), about unit RMS."""
        y = self.filt(key, white(self.n, self.rng), "low", cutoff_hz, order=4)
        return y * float(np.sqrt(SR / 2 / cutoff_hz))

    # -- control ----------------------------------------------------------------------
    def curve(self, key: str, rate_hz: float, lo: float = 0.0, hi: float = 1.0) -> np.ndarray:
        """Slow random curve (smoothstep between random points), continuous across blocks."""
        if key not in self._curves:
            k = int(np.ceil(self.total / SR * rate_hz)) + 3
            self._curves[key] = self.rng.uniform(lo, hi, k)
        pts = self._curves[key]
        x = (self.pos + np.arange(self.n)) / SR * rate_hz
        i = np.minimum(x.astype(int), len(pts) - 2)
        f = x - i
        f = f * f * (3 - 2 * f)
        return (pts[i] * (1 - f) + pts[i + 1] * f).astype(np.float32)

    def level(self) -> np.ndarray:
        """Automation (motion) level for this block, 1.0 if none."""
        if self.automation is None:
            return np.ones(self.n, np.float32)
        return self.automation(self.pos, self.n)

    # -- grains -----------------------------------------------------------------------
    def events(
        self,
        key: str,
        rate_hz: float | np.ndarray,
        grain: Callable[[np.random.Generator], np.ndarray] | None = None,
        *,
        grains: Callable[[np.random.Generator, int], np.ndarray] | None = None,
    ) -> np.ndarray:
        """Poisson-timed grains (rate in Hz, may vary per sample); tails spill into the next block.

        ``grain(rng)`` makes one grain; ``grains(rng, k)`` makes ``k`` at once as the rows of a
        (k, samples) array, which is much faster for dense textures of short grains (rain).
        """
        out = np.zeros(self.n, np.float32)
        carry = self._carry.pop(key, None)
        if carry is not None:
            m = min(len(carry), self.n)
            out[:m] += carry[:m]
            if len(carry) > self.n:
                self._carry[key] = carry[self.n :]
        rate = np.broadcast_to(np.asarray(rate_hz, dtype=np.float64), (self.n,))
        mean_rate = float(rate.mean()) if self.n else 0.0
        count = self.rng.poisson(mean_rate * self.n / SR)
        if count:
            # thin a uniform draw by the rate profile (inhomogeneous Poisson process)
            cand = self.rng.integers(0, self.n, count * 2)
            keep = self.rng.uniform(0, rate.max() + 1e-12, len(cand)) < rate[cand]
            starts = np.sort(cand[keep][:count])
            batch = grains(self.rng, len(starts)) if grains is not None else None
            for k, start in enumerate(starts):
                g = batch[k] if batch is not None else grain(self.rng)
                m = min(len(g), self.n - start)
                out[start : start + m] += g[:m]
                if len(g) > m:
                    spill = g[m:]
                    prev = self._carry.get(key)
                    if prev is None:
                        self._carry[key] = spill.copy()
                    else:
                        size = max(len(prev), len(spill))
                        merged = np.zeros(size, np.float32)
                        merged[: len(prev)] += prev
                        merged[: len(spill)] += spill
                        self._carry[key] = merged
        return out


def _noise_grains(rng: np.random.Generator, k: int, n: int, decay_s: float, gain: tuple[float, float],
                  lo_hz: float, hi_hz: float | None = None) -> np.ndarray:
    """(k, n) decaying bursts of filtered white noise: highpass at ``lo_hz`` Hz, or bandpass
    ``lo_hz``..``hi_hz`` Hz; peak gains uniform in ``gain``; envelope time constant ``decay_s`` s."""
    noise = rng.standard_normal((k, n), dtype=np.float32)
    shaped = highpass(noise, lo_hz) if hi_hz is None else bandpass(noise, lo_hz, hi_hz)
    return rng.uniform(*gain, (k, 1)).astype(np.float32) * shaped * decay(n, decay_s)


def _stereo(s: Stream, left: np.ndarray, right: np.ndarray | None = None) -> np.ndarray:
    return np.stack([left, left if right is None else right]).astype(np.float32)


# ------------------------------------------------------------------------------- recipes
def room(s: Stream) -> np.ndarray:
    # air-handling hiss, darkened but broadband, over a faint rumble. Broadband on purpose:
    # when a soundtrack of sparse events is normalised to its loudness target, the bed carries
    # the loudness, and a bass-heavy bed would need huge, event-masking swings to get there
    hiss_l = s.filt("hl", s.noise("w"), "low", 3500, order=1)
    hiss_r = s.filt("hr", s.noise("w2"), "low", 3500, order=1)
    rumble = s.brown("rum", 120)
    hum = 0.03 * sine(50.0, s.n, phase=2 * np.pi * 50 * s.pos / SR) if s.allows("machine.hum") else 0.0
    return _stereo(s, hiss_l + 0.3 * rumble + hum, hiss_r + 0.3 * rumble + hum)


def forest(s: Stream) -> np.ndarray:
    leaves = s.curve("gust", 0.3, 0.3, 1.0)
    l = s.noise("l", "band", 300, 3000) * leaves * 3
    r = s.noise("r", "band", 300, 3000) * leaves * 3
    chirp = s.events("birds", 0.3, lambda rg: 0.15 * lowpass(_chirp(rg), 3000)) if s.allows("animal.birds") else 0.0
    return _stereo(s, l + chirp, r + 0.7 * chirp)


def night(s: Stream) -> np.ndarray:
    air = s.brown("air", 200)
    crickets = s.events("crk", 0.4, lambda rg: 0.1 * _cricket(rg)) if s.allows("animal.insects") else 0.0
    return _stereo(s, 0.5 * air + crickets, 0.5 * air + 0.8 * crickets)


def space(s: Stream) -> np.ndarray:
    drone = sum(sine(f, s.n, phase=2 * np.pi * f * s.pos / SR) * (0.5 / (k + 1)) for k, f in enumerate((55.0, 55.4, 82.5, 110.3)))
    sweep = s.noise("n", "band", 150, 900) * s.curve("sw", 0.1, 0.2, 1.0) * 2
    return _stereo(s, drone + sweep, drone * 0.95 + sweep)


def cave(s: Stream) -> np.ndarray:
    air = s.brown("air", 150)
    drips = s.events("drip", 0.6, lambda rg: 0.3 * _drop(rg)) if s.allows("water.drips") else 0.0
    return _stereo(s, 0.4 * air + drips, 0.4 * air + 0.6 * drips)


def ocean(s: Stream) -> np.ndarray:
    swell = s.curve("swell", 0.15, 0.1, 1.0) ** 2
    foam = s.curve("foam", 0.3, 0.2, 1.0)
    body_l = s.noise("bl", "band", 150, 2500) * swell * 3
    body_r = s.noise("br", "band", 150, 2500) * np.roll(swell, 2000) * 3
    hiss = s.noise("h", "high", 2500) * swell * foam * 1.5
    return _stereo(s, body_l + hiss, body_r + hiss)


def stream(s: Stream) -> np.ndarray:
    a = s.noise("a", "band", 300, 3500) * (0.6 + 0.4 * s.curve("m1", 25, 0, 1)) * 3
    b = s.noise("b", "band", 300, 3500) * (0.6 + 0.4 * s.curve("m2", 25, 0, 1)) * 3
    bub = (s.events("bub", 25, lambda rg: 0.15 * oneshots.bubble(rg, rg.uniform(300, 1800)))
           if s.allows("water.bubbles") else 0.0)
    return _stereo(s, a + bub, b + 0.8 * bub)


def underwater(s: Stream) -> np.ndarray:
    rumble = s.brown("rum", 250) * (0.6 + 0.4 * s.curve("swell", 0.2))
    bub = (s.events("bub", 1.5, lambda rg: 0.2 * lowpass(oneshots.bubble(rg, rg.uniform(200, 700)), 1500))
           if s.allows("water.bubbles") else 0.0)
    return _stereo(s, rumble + bub, rumble * 0.9 + bub * 0.7)


def bubbles(s: Stream) -> np.ndarray:
    bub = s.events("bub", 6, lambda rg: oneshots.bubble(rg, rg.uniform(300, 1500)))
    return _stereo(s, bub, 0.8 * bub)


def drips(s: Stream) -> np.ndarray:
    d = s.events("drip", 1.5, _drop)
    return _stereo(s, d, 0.7 * d)


def rain(s: Stream) -> np.ndarray:
    hiss_l = s.noise("hl", "high", 1200) * 1.5
    hiss_r = s.noise("hr", "high", 1200) * 1.5
    drops = s.events("d", 120, grains=lambda rg, k: _noise_grains(rg, k, 96, 0.002, (0.05, 0.3), 2000))
    return _stereo(s, hiss_l + drops, hiss_r + drops[::-1])


def wind(s: Stream) -> np.ndarray:
    gust = s.curve("gust", 0.4, 0.3, 1.0) * s.level()
    low = s.noise("lo", "band", 150, 600) * 3
    mid = s.noise("mi", "band", 500, 1800) * 3
    whistle = s.noise("wh", "band", 900, 1100, 4) * 6 * s.curve("w", 0.2, 0, 1)
    mix = low * (1.2 - gust) + mid * gust + 0.3 * whistle * gust
    return _stereo(s, mix * gust, np.roll(mix, 3000) * gust)


def fire(s: Stream) -> np.ndarray:
    roar = s.brown("roar", 300) * (0.6 + 0.4 * s.curve("flick", 3, 0, 1))
    crackle = s.events("c", 8, _crackle)
    return _stereo(s, 0.5 * roar + crackle, 0.5 * roar + 0.8 * crackle)


def crowd(s: Stream) -> np.ndarray:
    babble = np.zeros(s.n, np.float32)
    for v in range(8):
        syll = 0.4 + 0.6 * s.curve(f"syl{v}", 5.0, 0, 1)
        f1 = s.curve(f"f{v}", 4.0, 300, 900)
        voice = s.noise(f"v{v}", "band", 250, 3000) * syll
        babble += voice * (0.6 + 0.4 * (f1 / 900))
    return _stereo(s, babble, np.roll(babble, 1500))


def cheer(s: Stream) -> np.ndarray:
    swell = 0.5 + 0.5 * s.curve("sw", 0.3, 0, 1)
    body = s.noise("b", "band", 500, 4000) * swell * 2
    claps = s.events("cl", 40, grains=lambda rg, k: _noise_grains(rg, k, 480, 0.01, (0.1, 0.5), 800, 5000))
    return _stereo(s, body + claps, body + claps[::-1])


def traffic(s: Stream) -> np.ndarray:
    rumble = s.brown("r", 180)
    passing = s.curve("pass", 0.25, 0.0, 1.0) ** 3
    car = s.noise("car", "band", 200, 2500) * passing * 3 if s.allows("engine.car") else 0.0
    pan = s.curve("pan", 0.25, 0.0, 1.0)
    return _stereo(s, 0.6 * rumble + car * (1 - pan), 0.6 * rumble + car * pan)


def engine(s: Stream) -> np.ndarray:
    lvl = s.level()
    rpm = 25 + 45 * lvl  # firing frequency, Hz: revs follow the motion
    if "phase" not in s._curves:
        s._curves["phase"] = np.zeros(1)
    ph = s._curves["phase"][0] + 2 * np.pi * np.cumsum(rpm) / SR
    s._curves["phase"][0] = float(ph[-1] % (2 * np.pi)) if len(ph) else s._curves["phase"][0]
    tone = sum(np.sin(k * ph) / k for k in range(1, 9)).astype(np.float32)
    mech = s.noise("m", "band", 80, 1200) * 0.5
    out = (tone + mech) * (0.5 + 0.5 * lvl)
    return _stereo(s, out)


def aircraft(s: Stream) -> np.ndarray:
    lvl = s.level()
    roar = s.noise("r", "band", 150, 5000) * 2
    whine = sine(1800.0, s.n, phase=2 * np.pi * 1800 * s.pos / SR) * 0.1
    return _stereo(s, (roar + whine) * lvl)


def hum(s: Stream) -> np.ndarray:
    ph = 2 * np.pi * s.pos / SR
    tone = sum(sine(50.0 * k, s.n, phase=ph * 50 * k) / k for k in range(1, 6))
    fan = s.noise("f", "low", 800) * 2
    return _stereo(s, tone + fan, tone + 0.9 * fan)


def buzz(s: Stream) -> np.ndarray:
    ph = 2 * np.pi * s.pos / SR
    tone = sum(sine(100.0 * k, s.n, phase=ph * 100 * k) / k for k in range(1, 12))
    flicker = 0.7 + 0.3 * s.curve("fl", 8, 0, 1)
    return _stereo(s, tone * flicker)


def birds(s: Stream) -> np.ndarray:
    a = s.events("a", 0.8, _chirp)
    b = s.events("b", 0.5, _chirp)
    return _stereo(s, a + 0.4 * b, 0.4 * a + b)


def insects(s: Stream) -> np.ndarray:
    c = s.events("c", 2.0, _cricket)
    cicada = s.noise("ci", "band", 4500, 7000) * (0.5 + 0.5 * s.curve("sw", 0.2, 0, 1)) * 0.5
    return _stereo(s, c + cicada, 0.6 * c + cicada)


def marine(s: Stream) -> np.ndarray:
    calls = s.events("whale", 0.12, _whale)
    clicks = s.events("click", 3, lambda rg: rg.uniform(0.05, 0.2) * highpass(white(48, rg), 3000))
    return _stereo(s, calls + clicks, 0.8 * calls + clicks)


def typing(s: Stream) -> np.ndarray:
    burst = (s.curve("burst", 0.5, 0, 1) > 0.45).astype(np.float32)
    keys = s.events("k", 9 * burst + 0.01, lambda rg: rg.uniform(0.4, 1.0) * oneshots.modal("plastic", 0.35, 0.5, rg))
    return _stereo(s, keys, 0.8 * keys)


def clock(s: Stream, tempo_bpm: float) -> np.ndarray:
    out = np.zeros(s.n, np.float32)
    period = 60.0 / tempo_bpm if tempo_bpm > 0 else 1.0
    step = int(period * SR)
    first = -s.pos % step
    for start in range(first, s.n, step):
        tick = oneshots.modal("metal", 0.15 if (s.pos + start) // step % 2 else 0.2, 0.4, s.rng)
        m = min(len(tick), s.n - start)
        out[start : start + m] += 0.5 * tick[:m]
    return _stereo(s, out)


def _crackle(rg: np.random.Generator) -> np.ndarray:
    k = int(rg.uniform(40, 250))
    return (rg.uniform(0.2, 1.0) * highpass(white(k, rg), 1500) * decay(k, 0.004)).astype(np.float32)


def _chirp(rg: np.random.Generator) -> np.ndarray:
    notes = []
    for _ in range(int(rg.integers(2, 6))):
        n = int(rg.uniform(0.04, 0.12) * SR)
        f0, f1 = rg.uniform(2500, 6000), rg.uniform(2500, 6000)
        env = np.sin(np.linspace(0, np.pi, n)) ** 2
        notes.append(sine(np.linspace(f0, f1, n), n) * env)
        notes.append(np.zeros(int(rg.uniform(0.02, 0.08) * SR), np.float32))
    return (np.concatenate(notes) * rg.uniform(0.2, 0.6)).astype(np.float32)


def _cricket(rg: np.random.Generator) -> np.ndarray:
    n = int(0.12 * SR)
    f = rg.uniform(4200, 5200)
    pulses = (np.sin(2 * np.pi * 30 * np.arange(n) / SR) > 0.3).astype(np.float32)
    env = np.sin(np.linspace(0, np.pi, n)) ** 2
    return (sine(f, n) * pulses * env * rg.uniform(0.2, 0.5)).astype(np.float32)


def _drop(rg: np.random.Generator) -> np.ndarray:
    n = int(0.05 * SR)
    f = rg.uniform(900, 2500) * (1 + 0.6 * np.linspace(0, 1, n))
    return (sine(f, n) * decay(n, 0.04) * np.minimum(1, np.arange(n) / 24) * rg.uniform(0.3, 1.0)).astype(np.float32)


def _whale(rg: np.random.Generator) -> np.ndarray:
    n = int(rg.uniform(1.5, 3.0) * SR)
    t = np.linspace(0, 1, n)
    f = rg.uniform(180, 300) * (1 + 0.8 * np.sin(np.pi * t) * rg.uniform(0.3, 1.0)) * (1 + 0.01 * np.sin(2 * np.pi * 5 * t * n / SR))
    env = np.sin(np.pi * t) ** 2
    return (lowpass(sine(f, n) + 0.3 * sine(2 * f, n), 1200) * env * rg.uniform(0.3, 0.7)).astype(np.float32)


#: renderer -> categories of the parts it adds besides its own sound (see :meth:`Stream.allows`).
PARTS: dict[str, tuple[str, ...]] = {
    "room": ("machine.hum",),
    "forest": ("animal.birds",),
    "night": ("animal.insects",),
    "cave": ("water.drips",),
    "stream": ("water.bubbles",),
    "underwater": ("water.bubbles",),
    "traffic": ("engine.car",),
}


def left_out(renderer: str, excluded: frozenset[str]) -> tuple[str, ...]:
    """The categories whose parts the ``renderer``'s bed leaves out because they are excluded."""
    return tuple(c for c in PARTS.get(renderer, ()) if c in excluded)


RECIPES: dict[str, Callable[[Stream], np.ndarray]] = {
    "room": room,
    "forest": forest,
    "night": night,
    "space": space,
    "cave": cave,
    "ocean": ocean,
    "stream": stream,
    "underwater": underwater,
    "bubbles": bubbles,
    "drips": drips,
    "rain": rain,
    "wind": wind,
    "fire": fire,
    "crowd": crowd,
    "cheer": cheer,
    "traffic": traffic,
    "engine": engine,
    "aircraft": aircraft,
    "hum": hum,
    "buzz": buzz,
    "birds": birds,
    "insects": insects,
    "marine": marine,
    "typing": typing,
}


def render_bed(
    renderer: str,
    n: int,
    rng: np.random.Generator,
    *,
    automation: Callable[[int, int], np.ndarray] | None = None,
    tempo_bpm: float = 0.0,
    sample_source: str | None = None,
    excluded: frozenset[str] = frozenset(),
    out: np.ndarray | None = None,
) -> np.ndarray:
    """(2, n) float32 bed made by ``renderer``, normalised to unit RMS over its length, without
    its parts of ``excluded`` categories; written into ``out`` (zeros of that shape) if given.
    ``automation(pos, m)`` gives the motion level of samples ``[pos, pos + m)``."""
    s = Stream(rng, n, automation, excluded)
    if out is None:
        out = np.zeros((2, n), np.float32)
    energy = 0.0
    for start in range(0, n, BLOCK):
        m = min(BLOCK, n - start)
        s.begin(m)
        if renderer == "clock":
            block = clock(s, tempo_bpm)
        elif renderer == "sample" and sample_source:
            block = _sparse_samples(s, sample_source)
        else:
            block = RECIPES[renderer](s)
        out[:, start : start + m] = block
        energy += float(np.einsum("ij,ij->", block, block, dtype=np.float64))
        s.end()
    rms = float(np.sqrt(energy / (2 * n))) if n else 0.0
    if rms > 0:
        out *= np.float32(1.0 / (rms * 4.0))  # -12 dB RMS: the cue gain sets the level
    return out


def _sparse_samples(s: Stream, name: str) -> np.ndarray:
    """Occasional bank calls (a crow now and then)."""
    calls = s.events("call", 0.15, lambda rg: oneshots.bank_oneshot(name, rg, semitones=2.0))
    return _stereo(s, calls, 0.7 * calls)
