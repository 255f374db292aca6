"""Parameters of the watermark and the keyed layout of one block.

The mark lives in a time-frequency grid computed on a 16 kHz mono mix:
STFT frames of 40 ms every 10 ms; *tiles* of 3 frames (30 ms, one *slot*) x one of
``n_bands`` mel-spaced bands between ``f_lo_hz`` and ``f_hi_hz``. Adjacent bands form
*pairs* (16 per slot). A *group* is a small time-frequency patch: ``group_band_pairs``
neighbouring band pairs over a *run* of ``run_slots`` consecutive slots. Each group
carries one symbol by spread-transform dither modulation (STDM): the mean over its pairs
of ``chip * (logamp_a - logamp_b)`` is quantised to a keyed, dithered lattice of step
``delta``. Groups are local in frequency and time so that damage (noise filling a quiet
band, a codec starving a region) erases whole groups, which the decoder can discount,
instead of corrupting all of them a little. A *block* of ``block_runs`` runs holds the
pilot symbols and the coded payload once; blocks repeat back to back through the file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from provenance.watermark.ecc import coded_length
from provenance.watermark.keys import WatermarkKey

SOFT_BINDING_ALG = "org.foleyseal.audio-wm.1"
PAYLOAD_BITS = 64


@dataclass(frozen=True)
class WatermarkParams:
    """Fixed parameters of watermark version 1 (changing any of them changes the format)."""

    analysis_rate_hz: int = 16_000
    frame_len: int = 640
    """STFT frame length at the analysis rate, samples (40 ms)."""
    hop: int = 160
    """STFT hop at the analysis rate, samples (10 ms)."""
    slot_hops: int = 2
    """Frames (hops) per slot: a slot is 20 ms."""
    n_bands: int = 16
    f_lo_hz: float = 250.0
    f_hi_hz: float = 5500.0
    run_slots: int = 4
    """Slots per run: a group holds 4 slots (80 ms of audio)."""
    run_stride: int = 1
    """Slots between consecutive slots of a run. With ``run_stride`` S > 1, S runs are
    interleaved in a *super-block* of ``S * run_slots`` slots (run ``i`` of a super-block holds
    its slots ``i, i + S, i + 2S, ...``), so a group samples its host at times up to
    ``(run_slots - 1) * S`` slots apart (time diversity against sparse audio)."""
    group_band_pairs: int = 2
    """Band pairs per group (a group spans 4 neighbouring bands)."""
    pilot_fraction: float = 0.2
    payload_bits: int = PAYLOAD_BITS
    delta: float = 0.6
    """Quantiser step of the group statistic, nepers of log amplitude (at strength 1)."""
    max_pair_change: float = 0.6
    """Cap on the log-amplitude change of one tile, nepers (keeps any one tile change small)."""
    group_budget_db: float = 15.0
    """A group's mark energy stays at least this far (dB) below the group's own energy."""
    rel_floor_db: float = 45.0
    """Tiles more than this far below the loudest tile of their slot carry no mark."""
    rel_ramp_db: float = 15.0
    abs_floor_db: float = -96.0
    """Tiles below this level (dBFS per tile) carry no mark (digital silence, dither)."""
    block_phases: int = 2
    """Consecutive blocks cycle through this many placements of the coded bits: in phase ``h``
    each coded bit sits ``h * groups_per_run / block_phases`` frequency regions (groups) higher,
    wrapping around, at a keyed run, so its repetitions land in different regions."""

    def __post_init__(self) -> None:
        if self.run_stride < 1 or self.block_runs % self.run_stride:
            raise ValueError(f"run_stride {self.run_stride} must divide the {self.block_runs} runs of a block")

    @property
    def slot_len(self) -> int:
        """Slot length, samples at the analysis rate."""
        return self.hop * self.slot_hops

    @property
    def slot_s(self) -> float:
        return self.slot_len / self.analysis_rate_hz

    @property
    def pairs_per_slot(self) -> int:
        return self.n_bands // 2

    @property
    def superblock_slots(self) -> int:
        """Slots of one super-block (``run_stride`` interleaved runs); chunks and cut phases
        of the alignment scan fall on this grid."""
        return self.run_stride * self.run_slots

    @property
    def groups_per_run(self) -> int:
        return self.pairs_per_slot // self.group_band_pairs

    @property
    def pairs_per_group(self) -> int:
        return self.run_slots * self.group_band_pairs

    @property
    def coded_bits(self) -> int:
        return coded_length(self.payload_bits)

    @property
    def block_runs(self) -> int:
        total = self.coded_bits / (1.0 - self.pilot_fraction)
        return int(np.ceil(total / self.groups_per_run))

    @property
    def groups_per_block(self) -> int:
        return self.block_runs * self.groups_per_run

    @property
    def n_pilots(self) -> int:
        return self.groups_per_block - self.coded_bits

    @property
    def block_slots(self) -> int:
        return self.block_runs * self.run_slots

    @property
    def block_s(self) -> float:
        """Length of one full payload block, seconds."""
        return self.block_slots * self.slot_s

    @cached_property
    def band_edges_hz(self) -> np.ndarray:
        """``n_bands + 1`` mel-spaced band edges, Hz."""

        def mel(f: np.ndarray | float) -> np.ndarray:
            return 2595.0 * np.log10(1.0 + np.asarray(f) / 700.0)

        m = np.linspace(mel(self.f_lo_hz), mel(self.f_hi_hz), self.n_bands + 1)
        return 700.0 * (10 ** (m / 2595.0) - 1.0)

    @cached_property
    def band_of_bin(self) -> np.ndarray:
        """Band index of each rfft bin of a frame (-1 outside the marked range)."""
        freqs = np.fft.rfftfreq(self.frame_len, 1.0 / self.analysis_rate_hz)
        idx = np.searchsorted(self.band_edges_hz, freqs, side="right") - 1
        idx[(freqs < self.band_edges_hz[0]) | (freqs >= self.band_edges_hz[-1])] = -1
        return idx


DEFAULT_PARAMS = WatermarkParams()


def to_groups(a: np.ndarray, params: WatermarkParams) -> np.ndarray:
    """Regroup per-pair values ``(..., runs * run_slots, pairs_per_slot)`` into
    ``(..., runs, groups_per_run, pairs_per_group)`` (pair index = slot of the run *
    ``group_band_pairs`` + band pair). The slot count must be a whole number of super-blocks."""
    p = params
    lead = a.shape[:-2]
    n = len(lead)
    blocks = a.shape[-2] // p.superblock_slots
    a = a.reshape(lead + (blocks, p.run_slots, p.run_stride, p.groups_per_run, p.group_band_pairs))
    a = a.transpose(tuple(range(n)) + (n, n + 2, n + 3, n + 1, n + 4))
    return a.reshape(lead + (blocks * p.run_stride, p.groups_per_run, p.pairs_per_group))


def from_groups(a: np.ndarray, params: WatermarkParams) -> np.ndarray:
    """Inverse of :func:`to_groups`."""
    p = params
    lead = a.shape[:-3]
    n = len(lead)
    blocks = a.shape[-3] // p.run_stride
    a = a.reshape(lead + (blocks, p.run_stride, p.groups_per_run, p.run_slots, p.group_band_pairs))
    a = a.transpose(tuple(range(n)) + (n, n + 3, n + 1, n + 2, n + 4))
    return a.reshape(lead + (blocks * p.superblock_slots, p.pairs_per_slot))


def run_slot_index(params: WatermarkParams) -> np.ndarray:
    """``(superblock runs, run_slots)``: the slot, within its super-block, of each slot of each run."""
    p = params
    return np.arange(p.run_stride)[:, None] + p.run_stride * np.arange(p.run_slots)[None, :]


def balanced_chips(rng: np.random.Generator, params: WatermarkParams) -> np.ndarray:
    """Keyed chips ``(block_runs, groups_per_run, pairs_per_group)`` of +-1: over a run, each band
    pair of a group reads ``+ + - -`` or ``- - + +`` (a keyed sign per band pair and group).

    A static filter (EQ, band limit, a codec's or a phone line's fixed response) adds a constant
    to a band pair's level difference; chips with as many +1 as -1 per band pair cancel it from
    the group statistic, so such filters leave the symbols in place instead of shifting them on
    the lattice (300-3400 Hz bandpass: 2/12 payloads recovered with independent random chips,
    12/12 with these). One sign change per run, rather than any balanced order, keeps the
    pattern slow: a gain on one slot leaks into its neighbours through the overlapping frames,
    and slow patterns lose less to that (mean z of marked test files about 8 %
    higher than with random chips, 20 % higher than with any balanced order; docs/watermark.md).
    """
    r, g = params.block_runs, params.groups_per_run
    s, b = params.run_slots, params.group_band_pairs
    if s % 2:
        raise ValueError("balanced chips need an even number of slots per run")
    pattern = np.repeat(np.array([1.0, -1.0], dtype=np.float32), s // 2)  # (slot,)
    sign = rng.choice(np.array([-1.0, 1.0], dtype=np.float32), size=(r, g, 1, b))
    return (sign * pattern[:, None]).reshape(r, g, s * b)  # pair index = slot * b + band_pair


@dataclass(frozen=True)
class Layout:
    """The keyed layout of one block: what each group of each run carries.

    Arrays are indexed ``[run_in_block, group]`` (and ``pair`` within the group).
    """

    params: WatermarkParams
    chips: np.ndarray
    """(block_runs, groups_per_run, pairs_per_group) of +-1, balanced per band pair (:func:`balanced_chips`)."""
    dither: np.ndarray
    """(block_runs, groups_per_run) lattice dither as a fraction of ``delta``, in [0, 1)."""
    role: np.ndarray
    """(block_phases, block_runs, groups_per_run): -1 for a pilot, else the index of the coded
    bit the group carries in blocks of that phase (block ``i`` of a file has phase
    ``i % block_phases``). Pilots sit at the same places in every phase."""
    pilot_bits: np.ndarray
    """(block_runs, groups_per_run) keyed pilot bits (meaningful where :attr:`pilot` is set)."""
    scramble: np.ndarray = field(repr=False)
    """(payload_bits,) keyed bits XORed onto the payload before coding."""

    @classmethod
    def from_key(cls, key: WatermarkKey, params: WatermarkParams = DEFAULT_PARAMS) -> "Layout":
        r, g = params.block_runs, params.groups_per_run
        chips = balanced_chips(key.rng("chips"), params)
        dither = key.rng("dither").random((r, g))
        role = coded_bit_placement(key.rng("roles"), params)
        pilot_bits = key.rng("pilots").integers(0, 2, size=(r, g)).astype(np.uint8)
        scramble = key.rng("scramble").integers(0, 2, size=params.payload_bits).astype(np.uint8)
        return cls(params, chips, dither, role, pilot_bits, scramble)

    @property
    def pilot(self) -> np.ndarray:
        """(block_runs, groups_per_run) True where the group carries a pilot (in every phase)."""
        return self.role[0] < 0

    def symbol_bits(self, codeword: np.ndarray) -> np.ndarray:
        """(block_phases, block_runs, groups_per_run) bit each group carries for a given codeword."""
        bits = np.broadcast_to(self.pilot_bits, self.role.shape).copy()
        data = self.role >= 0
        bits[data] = codeword[self.role[data]]
        return bits


def coded_bit_placement(rng: np.random.Generator, params: WatermarkParams) -> np.ndarray:
    """Keyed roles ``(block_phases, block_runs, groups_per_run)``: -1 for a pilot, else a coded bit.

    Every group index (frequency region) gets the same number of pilots, at keyed runs, so each
    region has as many payload groups as any other. In phase 0 the coded bits fill the payload
    groups in a keyed order; in phase ``h`` the bit that phase 0 puts in region ``j`` moves to
    region ``(j + h * groups_per_run / block_phases) % groups_per_run``, at a keyed run. A bit
    whose region a file or an edit leaves empty (a band-limited codec, content with nothing in
    the upper bands) then still has repetitions elsewhere: the repetitions of a block in a
    longer file are spread over regions instead of all sharing one.
    """
    r, g, phases = params.block_runs, params.groups_per_run, params.block_phases
    if params.n_pilots % g or g % phases:
        raise ValueError("pilots must divide evenly among the regions, and phases among the groups")
    per_region = params.n_pilots // g
    role = np.empty((phases, r, g), dtype=np.int64)
    pilot = np.zeros((r, g), dtype=bool)
    for j in range(g):
        pilot[rng.choice(r, size=per_region, replace=False), j] = True
    payload = np.flatnonzero(~pilot.reshape(-1))
    first = np.full(r * g, -1, dtype=np.int64)
    first[rng.permutation(payload)[: params.coded_bits]] = np.arange(params.coded_bits)
    role[0] = first.reshape(r, g)
    step = g // phases
    for h in range(1, phases):
        nxt = np.full((r, g), -1, dtype=np.int64)
        for j in range(g):
            src = np.flatnonzero(~pilot[:, j])
            dst = rng.permutation(np.flatnonzero(~pilot[:, (j + h * step) % g]))
            nxt[dst, (j + h * step) % g] = role[0][src, j]
        role[h] = nxt
    return role
