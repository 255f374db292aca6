"""Any watermarking tool with a command line, driven through command templates.

Templates are split like a shell would (``shlex``) but run without one; each argument of the embed
template may use ``{input}``, ``{output}``, ``{payload_hex}`` and ``{payload_bin}``, the detect
template ``{input}`` only (detection is blind). The bits a detect prints are scored for bit
accuracy whether or not its score reaches ``min_score`` (which decides presence), as for every
watermarker; a row whose output the payload regex did not match keeps the output's end. Audio
goes to and from the tool as WAV files in a private temporary directory. The detect command's
standard output (and error) is searched with ``payload_regex`` (named group ``payload``, hex; an
optional group ``score`` picks the best of several matches); ``score_regex`` (named group ``score``) gives the confidence, and
``segment_regex`` (named groups ``start`` and optional ``end``, in seconds or m:ss, and optional
``payload``; without ``end`` a segment lasts ``block_s``) the marked spans. A command that exits with
a code outside ``ok_exit_codes`` (default ``[0]``) has failed, whatever it printed; the embed
command's output must keep the input's channels and length. Example
(``--external-config`` TOML; see ``audiowmark.example.toml`` beside this module)::

    [[watermarker]]
    name = "audiowmark"
    payload_bits = 128
    embed = "audiowmark add {input} {output} {payload_hex}"
    detect = "audiowmark get {input}"
    payload_regex = '^pattern\\s+\\S+\\s+(?P<payload>[0-9a-f]+)\\s+(?P<score>[-0-9.]+)'
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import shlex
import signal
import string
import subprocess
import tempfile
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

import numpy as np
import soundfile as sf

from benchmarks.attacks.base import resample
from benchmarks.watermarkers.base import WatermarkerBase, WatermarkerResult, bits_to_hex, hex_to_bits
from provenance.core.audio import Audio
from provenance.core.errors import ConfigError, FoleySealError
from provenance.core.results import Segment


_PLACEHOLDERS = {"input", "output", "payload_hex", "payload_bin"}
"""What an embed template may name (see the module docstring)."""
_DETECT_PLACEHOLDERS = {"input"}
"""What a detect template may name: detection is blind."""
OUTPUT_TAIL_CHARS = 300
"""How much of a detect command's output a row keeps when the payload regex matched none of it."""


class ExternalToolError(FoleySealError):
    """An external watermarking command failed or printed nothing usable."""


@dataclass(frozen=True)
class ExternalCommandWatermarker(WatermarkerBase):
    """An external watermarker given as command templates (see the module docstring)."""

    name: str
    embed_cmd: str
    detect_cmd: str
    payload_regex: str
    payload_bits: int = 64
    score_regex: str | None = None
    segment_regex: str | None = None
    min_score: float | None = None
    """Scores below this count as not found (default: found whenever a payload is printed)."""
    wav_subtype: str = "PCM_16"
    sample_rate_hz: int | None = None
    """Rate the tool needs (e.g. 16000 for 16 kHz models); audio is resampled there and back."""
    timeout_s: float = 300.0
    block_s: float = 1.0  # type: ignore[misc]
    ok_exit_codes: tuple[int, ...] = (0,)
    """Exit codes of a command that ran as it should (a tool that exits 1 for "no watermark"
    needs ``[0, 1]``). Any other code is a failure of the tool, even if it printed something."""

    def __post_init__(self) -> None:
        self._check_regexes()
        self._check_settings()

    def _check_regexes(self) -> None:
        for attr in ("payload_regex", "score_regex", "segment_regex"):
            pat = getattr(self, attr)
            if pat is None:
                continue
            try:
                rx = re.compile(pat, re.MULTILINE)
            except re.error as exc:
                raise ConfigError(f"watermarker {self.name!r}: bad {attr}: {exc}") from None
            need = {"payload_regex": "payload", "score_regex": "score", "segment_regex": "start"}[attr]
            if need not in rx.groupindex:
                raise ConfigError(f"watermarker {self.name!r}: {attr} needs a named group (?P<{need}>...)")

    def _check_settings(self) -> None:
        """Types and ranges of the settings, and the templates' placeholders: a mistake is a
        configuration error before the run, not an error in every trial."""
        def bad(what: str) -> ConfigError:
            return ConfigError(f"watermarker {self.name!r}: {what}")

        def number(v: Any) -> bool:
            return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)

        if not isinstance(self.name, str) or not self.name.strip() or any(c in self.name for c in ",|"):
            raise bad("name must be a non-empty string without commas or bars")
        for attr, needs, allowed in (("embed_cmd", {"input", "output"}, _PLACEHOLDERS),
                                     ("detect_cmd", set(), _DETECT_PLACEHOLDERS)):
            template = getattr(self, attr)
            key = attr.removesuffix("_cmd")
            if not isinstance(template, str) or not template.strip():
                raise bad(f"{key} must be a non-empty command template")
            try:
                used = {f for tok in shlex.split(template) for _, f, _, _ in string.Formatter().parse(tok) if f is not None}
            except ValueError as exc:
                raise bad(f"{key} template {template!r} does not parse: {exc}") from None
            if used - allowed:
                why = ("; detection is blind: it reads {input} alone (the payload is what it must find, "
                       "and it writes no file)" if attr == "detect_cmd" and used <= _PLACEHOLDERS else "")
                raise bad(f"{key} template uses {sorted(used - allowed)}; its placeholders are "
                          + ", ".join("{" + p + "}" for p in sorted(allowed)) + why)
            if needs - used:
                raise bad(f"{key} template must contain " + " and ".join("{" + p + "}" for p in sorted(needs)))
        if not isinstance(self.payload_bits, int) or isinstance(self.payload_bits, bool) or not 1 <= self.payload_bits <= 4096:
            raise bad(f"payload_bits must be a whole number from 1 to 4096, got {self.payload_bits!r}")
        if self.min_score is not None and not number(self.min_score):
            raise bad(f"min_score must be a finite number, got {self.min_score!r}")
        for attr in ("timeout_s", "block_s"):
            if not number(getattr(self, attr)) or getattr(self, attr) <= 0:
                raise bad(f"{attr} must be a number of seconds above 0, got {getattr(self, attr)!r}")
        rate = self.sample_rate_hz
        if rate is not None and (not isinstance(rate, int) or isinstance(rate, bool) or not 1000 <= rate <= 768_000):
            raise bad(f"sample_rate_hz must be a whole number of Hz from 1000 to 768000, got {rate!r}")
        if self.wav_subtype not in sf.available_subtypes("WAV"):
            raise bad(f"wav_subtype {self.wav_subtype!r} is not a WAV encoding; e.g. PCM_16, PCM_24, FLOAT")
        codes = self.ok_exit_codes
        if not isinstance(codes, tuple) or not codes or not all(isinstance(c, int) and not isinstance(c, bool) for c in codes):
            raise bad(f"ok_exit_codes must be a list of whole numbers, got {codes!r}")

    def _run(self, template: str, **values: str) -> str:
        try:
            args = [tok.format(**values) for tok in shlex.split(template)]
        except (KeyError, IndexError, ValueError) as exc:
            raise ConfigError(f"watermarker {self.name!r}: bad command template {template!r}: {exc}") from None
        try:
            # its own process group: on a timeout the tool's children (a shell's sleep, a model
            # server) are stopped with it instead of left running for the rest of the benchmark
            proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
        except FileNotFoundError:
            raise ExternalToolError(f"watermarker {self.name!r}: command not found: {args[0]}") from None
        try:
            out, err = proc.communicate(timeout=self.timeout_s)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(OSError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            # the whole command, as for a crash: args[0] alone named only "python3"
            raise ExternalToolError(
                f"watermarker {self.name!r}: {shlex.join(args)} timed out after {self.timeout_s} s") from None
        except BaseException:
            with contextlib.suppress(OSError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise
        # bytes a tool prints that are not UTF-8 are no reason to fail a trial
        stdout, stderr = out.decode("utf-8", "replace"), err.decode("utf-8", "replace")
        if proc.returncode not in self.ok_exit_codes:
            tail = _last_lines(stderr)
            raise ExternalToolError(f"watermarker {self.name!r}: {shlex.join(args)} {_ended(proc.returncode)}"
                                    + (f": {tail}" if tail else ""))
        return stdout + "\n" + stderr

    def _write(self, audio: Audio, path: Path) -> None:
        x = audio.samples
        if self.sample_rate_hz and self.sample_rate_hz != audio.sample_rate:
            x = resample(x, audio.sample_rate, self.sample_rate_hz)
        rate = self.sample_rate_hz or audio.sample_rate
        sf.write(path, np.clip(x, -1.0, 1.0).T, rate, subtype=self.wav_subtype, format="WAV")

    def embed(self, audio: Audio, payload_bits: np.ndarray) -> Audio:
        with tempfile.TemporaryDirectory(prefix="fs-ext-") as tmp:
            src, dst = Path(tmp) / "input.wav", Path(tmp) / "output.wav"
            self._write(audio, src)
            bits = np.asarray(payload_bits, dtype=np.uint8)
            self._run(self.embed_cmd, input=str(src), output=str(dst),
                      payload_hex=bits_to_hex(bits), payload_bin="".join(map(str, bits.tolist())))
            if not dst.exists():
                raise ExternalToolError(f"watermarker {self.name!r}: embed command wrote no output file")
            y, rate = self._read_output(dst)
        if not np.isfinite(y).all():
            # quality and every attack would be measured on NaN (the figures quietly became n/a)
            raise ExternalToolError(f"watermarker {self.name!r}: embed output holds NaN or infinite samples")
        y = y.T
        if rate != audio.sample_rate:
            y = resample(y, rate, audio.sample_rate)
        # A marked file is the input with a mark in it: a tool that returns other lengths or
        # channels (or samples at a rate it does not declare) would be scored on other audio.
        slack = max(0.02 * audio.frames, 0.1 * audio.sample_rate)
        if y.shape[0] != audio.channels or abs(y.shape[1] - audio.frames) > slack:
            raise ExternalToolError(
                f"watermarker {self.name!r}: embed output is {y.shape[1] / audio.sample_rate:.3f} s of "
                f"{y.shape[0]} channel(s), the input {audio.duration_s:.3f} s of {audio.channels}"
            )
        return audio.with_samples(np.ascontiguousarray(y))

    def _read_output(self, path: Path) -> tuple[np.ndarray, int]:
        """The embed command's output file as (frames x channels float32 samples, rate in Hz).
        An unreadable one is said as such: libsndfile's message named the temporary file,
        deleted by the time anyone read it, and not the watermarker."""
        try:
            return sf.read(path, dtype="float32", always_2d=True)
        except (sf.LibsndfileError, RuntimeError, ValueError, TypeError) as exc:
            size = path.stat().st_size
            raise ExternalToolError(f"watermarker {self.name!r}: embed output is not a readable audio file "
                                    f"({size} bytes{'' if size == 0 else f'; {_libsndfile_reason(exc)}'})") from None

    def detect(self, audio: Audio) -> WatermarkerResult:
        with tempfile.TemporaryDirectory(prefix="fs-ext-") as tmp:
            src = Path(tmp) / "input.wav"
            self._write(audio, src)
            text = self._run(self.detect_cmd, input=str(src))
        return self.parse(text)

    def parse(self, text: str) -> WatermarkerResult:
        """Turn the detect command's output into a result (public so configurations can be tested)."""
        best: tuple[float, str] | None = None
        for m in re.finditer(self.payload_regex, text, re.MULTILINE):
            hex_str = m.group("payload").lower()
            s = self._number(m.group("score"), "payload_regex's score") if m.groupdict().get("score") else 1.0
            if best is None or s > best[0]:
                best = (s, hex_str)
        score = best[0] if best else 0.0
        if self.score_regex:
            scores = [self._number(m.group("score"), "score_regex's score")
                      for m in re.finditer(self.score_regex, text, re.MULTILINE)]
            score = max(scores) if scores else (score if best else 0.0)
        found = best is not None and (self.min_score is None or score >= self.min_score)
        segments: list[Segment] = []
        if self.segment_regex:
            for m in re.finditer(self.segment_regex, text, re.MULTILINE):
                gd = m.groupdict()
                start = self._seconds(gd["start"], "segment_regex's start")
                end = self._seconds(gd["end"], "segment_regex's end") if gd.get("end") else start + self.block_s
                payload = (gd.get("payload") or "").lower() or None
                segments.append(Segment(start, end, payload, float("nan")))
        # Bits are what the tool read, found or not (as for every watermarker: a score below
        # min_score decides presence, not what the bit accuracy is measured on). A payload of
        # another length is no reading of the one embedded: it would be zero-padded or cut to
        # size and scored bit by bit.
        whole = best is not None and len(best[1]) == 2 * ((self.payload_bits + 7) // 8)
        try:
            bits = hex_to_bits(best[1], self.payload_bits) if best and whole else None
        except ValueError:
            bits = None
        details: dict[str, Any] = {"payload_regex_matched": best is not None}
        if best is None:  # kept so a regex that never matches can be told from a weak watermark
            details["output_tail"] = text.strip()[-OUTPUT_TAIL_CHARS:]
        return WatermarkerResult(found=found, score=score, payload_bits=bits, segments=tuple(segments),
                                 details=details)

    def describe(self) -> dict[str, Any]:
        """Every setting, so that a rerun with any of them changed (a regex, ``min_score``, the
        rate) measures its trials again instead of reusing rows made with the old ones."""
        settings = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("embed_cmd", "detect_cmd")}
        return {**settings, "embed": self.embed_cmd, "detect": self.detect_cmd, "version": "external"}


    def _number(self, text: str, what: str) -> float:
        """A finite number the tool printed; :class:`ExternalToolError` naming the watermarker and
        the setting that captured ``text`` otherwise (a ``-`` caught by ``[-0-9.]+``, ``nan``)."""
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not math.isfinite(value):
            raise ExternalToolError(f"watermarker {self.name!r}: {what} captured {text!r}, which is no finite number")
        return value

    def _seconds(self, text: str, what: str) -> float:
        try:
            return _seconds(text)
        except ValueError:
            raise ExternalToolError(f"watermarker {self.name!r}: {what} captured {text!r}, which is no time "
                                    "(seconds, m:ss or h:mm:ss)") from None


def _seconds(text: str) -> float:
    """Seconds from ``12.5``, ``1:23`` (m:ss) or ``1:02:03.5`` (h:mm:ss)."""
    total = 0.0
    for part in text.strip().split(":"):
        total = total * 60.0 + float(part)
    return total


_TOML_KEYS = {"embed": "embed_cmd", "detect": "detect_cmd"}


def load_external_config(path: str | Path) -> list[ExternalCommandWatermarker]:
    """External watermarkers from a TOML file: ``[[watermarker]]`` tables (or one ``[external]``)."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError("external watermarker config not found", path=path) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"not valid TOML: {exc}", path=path) from None
    tables = data.get("watermarker", [])
    if not isinstance(tables, list):
        raise ConfigError("watermarkers are [[watermarker]] tables (double brackets)", path=path)
    tables = list(tables)
    if "external" in data:
        tables.append(data["external"])
    if not tables:
        raise ConfigError("no [[watermarker]] table", path=path)
    if not all(isinstance(t, dict) for t in tables):
        raise ConfigError("each watermarker must be a [[watermarker]] table", path=path)
    known = {f.name for f in fields(ExternalCommandWatermarker)}
    names = [t.get("name") for t in tables]
    twice = sorted({n for n in names if isinstance(n, str) and names.count(n) > 1})
    if twice:
        # the last table won silently, or the run failed as if a name were typed twice
        raise ConfigError(f"watermarker name(s) {twice} are given to more than one table; each needs its own",
                          path=path)
    out = []
    for t in tables:
        kw = {_TOML_KEYS.get(k, k): v for k, v in t.items()}
        unknown = set(kw) - known
        missing = {"name", "embed_cmd", "detect_cmd", "payload_regex"} - set(kw)
        if unknown or missing:
            raise ConfigError(
                f"watermarker table {t.get('name', '?')!r}: "
                + (f"unknown keys {sorted(unknown)} " if unknown else "")
                + (f"missing keys {sorted(missing)}" if missing else ""),
                path=path,
            )
        if isinstance(kw.get("ok_exit_codes"), list):
            kw["ok_exit_codes"] = tuple(kw["ok_exit_codes"])
        try:
            out.append(ExternalCommandWatermarker(**kw))
        except ConfigError as exc:
            raise ConfigError(exc.message, path=path) from None
    return out


def _ended(returncode: int) -> str:
    """How a command that failed ended: ``exited 1``, or ``killed by SIGSEGV`` (a negative
    return code is the signal's number; "exited -11" with nothing after it said little)."""
    if returncode >= 0:
        return f"exited {returncode}"
    try:
        return f"killed by {signal.Signals(-returncode).name}"
    except ValueError:
        return f"killed by signal {-returncode}"


def _libsndfile_reason(exc: Exception) -> str:
    """libsndfile's reason without the file name it puts first (``Error opening '/tmp/...': ``)."""
    text = str(exc)
    return re.sub(r"^Error opening .*?: ", "", text).strip() or type(exc).__name__


def _last_lines(text: str, chars: int = 500) -> str:
    """The last whole lines of ``text`` that fit in about ``chars`` characters (a traceback's end
    names the error), not a slice that starts mid-word."""
    lines = text.strip().splitlines()
    kept: list[str] = []
    for line in reversed(lines):
        if kept and sum(len(k) + 1 for k in kept) + len(line) > chars:
            break
        kept.insert(0, line)
    return "\n".join(kept)[-4 * chars:]
