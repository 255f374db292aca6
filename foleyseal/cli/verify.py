"""``foleyseal verify`` (what is this file?) and ``foleyseal serve`` (the HTTP service).

Exit codes of ``verify`` (several files: the first that applies of 5, 3, 1, 0):

=====  =====================================================================================
code   meaning
=====  =====================================================================================
0      evidence found and intact: credentials_valid, credentials_recovered_by_watermark,
       partially_marked, watermark_only
1      no evidence found (no_evidence); as for every foleyseal command, 1 = "found nothing"
2      usage error (bad option or argument), reported by the command-line parser
3      a file could not be examined (verdict ``error``), or bad configuration
4      internal error (a bug)
5      credentials present but not valid: credentials_tampered or credentials_untrusted
=====  =====================================================================================

The issue suggested 1 tampered / 2 no evidence; 2 is already the parser's usage error and 1
means "found nothing" everywhere else in foleyseal, so ``verify`` uses 1 for no evidence and 5
for invalid credentials instead.
"""

from __future__ import annotations

import errno
import json
import os
import sys
import textwrap
from pathlib import Path
from typing import Any

import typer

from foleyseal.cli import exit_codes
from foleyseal.cli.names import shown
from foleyseal.cli.numbers import finite, p_text
from foleyseal.cli.progress import wanted as progress_wanted

EXIT_VALID = exit_codes.OK
EXIT_NO_EVIDENCE = exit_codes.NOT_FOUND
EXIT_ERROR = exit_codes.INPUT_ERROR
EXIT_INVALID = 5

_EXIT_BY_VERDICT = {
    "credentials_valid": EXIT_VALID,
    "credentials_recovered_by_watermark": EXIT_VALID,
    "partially_marked": EXIT_VALID,
    "watermark_only": EXIT_VALID,
    "no_evidence": EXIT_NO_EVIDENCE,
    "credentials_tampered": EXIT_INVALID,
    "credentials_untrusted": EXIT_INVALID,
    "error": EXIT_ERROR,
}
_EXIT_PRECEDENCE = (EXIT_INVALID, EXIT_ERROR, EXIT_NO_EVIDENCE, EXIT_VALID)

_VERIFY_HELP = (
    "Tell what audio or video files are: Content Credentials (C2PA), FoleySeal watermark, "
    "manifest-store record, and a verdict with a plain-language explanation.\n\n"
    "FILE may be a file or a directory (walked recursively, with a progress bar; hidden files, "
    ".c2pa sidecars and text files such as cue sheets (.json, .txt, .md, .log, .csv...) are skipped).\n\n"
    "Verdicts: credentials_valid, credentials_tampered, credentials_untrusted, "
    "credentials_recovered_by_watermark, partially_marked, watermark_only, no_evidence (which never "
    "means 'made by a person'), error.\n\n"
    "Trust: only FoleySeal's own root (if this machine has one), the configured trust_anchors / "
    "trust_list, and --trust-anchors files are trusted. Nothing else.\n\n"
    "Exit codes (several files: the first of 5, 3, 1, 0 that applies to any file):\n"
    "  0  evidence found and intact (valid, recovered by watermark, partially marked, watermark only)\n"
    "  1  no evidence found\n"
    "  2  usage error (bad option or argument; from the command-line parser)\n"
    "  3  a file could not be examined, or bad configuration (also a configured manifest store that "
    "could not be read, when the verdict would otherwise be 0 or 1; --no-store verifies without it)\n"
    "  4  internal error\n"
    "  5  credentials tampered/invalid, or signed by an untrusted chain"
)


def exit_code_for(verdict: str) -> int:
    """The exit code of one verdict (see the module docstring)."""
    return _EXIT_BY_VERDICT.get(verdict, EXIT_ERROR)


def report_exit_code(report: dict[str, Any]) -> int:
    """The exit code of one report: its verdict's, or 3 when a configured manifest store could
    not be read for it and the verdict would say nothing worse (a record may have been missed:
    "watermark only" or "no evidence" from a store that is down is not an answer to act on)."""
    code = exit_code_for(report["verdict"])
    if report.get("store_unavailable") and code in (EXIT_VALID, EXIT_NO_EVIDENCE):
        return EXIT_ERROR
    return code


def combined_exit_code(verdicts: list[str], codes: list[int] | None = None) -> int:
    """The first of 5, 3, 1, 0 among the ``verdicts``' codes (or the given per-file ``codes``)."""
    codes = set(codes) if codes is not None else {exit_code_for(v) for v in verdicts}
    for c in _EXIT_PRECEDENCE:
        if c in codes:
            return c
    return EXIT_NO_EVIDENCE


# Files a directory walk leaves out: C2PA sidecars (read with their media) and the text files
# that sit beside media (the generator's cue sheets and JSON summaries, notes, logs). A file named
# on the command line is always examined, whatever its name.
_NOT_MEDIA_SUFFIXES = frozenset({".c2pa", ".json", ".jsonl", ".txt", ".md", ".log", ".csv", ".tsv",
                                 ".yaml", ".yml", ".toml", ".xml", ".html", ".pdf", ".pem", ".key",
                                 # a corpus's licence files, and the scripts that made it
                                 ".copyright", ".license", ".py", ".sh"})


def _collect(paths: list[Path]) -> list[Path]:
    files: list[Path] = []
    for p in paths:
        if p.is_dir():
            for root, dirs, names in os.walk(p):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                for n in sorted(names):
                    if n.startswith(".") or Path(n).suffix.lower() in _NOT_MEDIA_SUFFIXES:
                        continue
                    files.append(Path(root) / n)
        else:
            files.append(p)  # a missing file gets verdict "error" with the reason
    return files


def _summary(report: dict[str, Any], console: Any) -> None:
    from rich.markup import escape

    from provenance.core.text import first_few

    verdict = report["verdict"]
    style = {
        0: "bold green",
        1: "bold yellow",
        3: "bold red",
        5: "bold red",
    }.get(exit_code_for(verdict), "bold")
    console.print(f"[{style}]{escape(verdict)}[/]  {escape(shown(report['file']))}")
    console.print(f"  [bold]{escape(report['title'])}[/]")
    for line in textwrap.wrap(report["explanation"], width=96):
        console.print(f"  {escape(line)}")
    c = report.get("container")
    if c:
        dur = f"{c['duration_s']:.1f} s" if c.get("duration_s") is not None else "?"
        video = ", with video" if c.get("has_video") else ""
        # a stream FFmpeg could not read the parameters of has no rate or channel count to show
        shape = [f"{c[k]} {unit}" for k, unit in (("sample_rate", "Hz"), ("channels", "ch")) if c.get(k) is not None]
        audio = ", ".join([f"({c.get('codec')})", dur, *shape]) if c.get("codec") else f"{dur}, no audio"
        console.print(f"  container: {c['format']} {audio}{video}")
    cred = report.get("credentials") or {}
    if cred.get("present"):
        codes = ", ".join(cred.get("failure_codes") or []) or "none"
        console.print(
            f"  credentials: {cred.get('source')}, state {cred.get('state')}, signer "
            f"{escape(str(cred.get('signer') or '(unreadable)'))}, failure codes: {escape(codes)}"
        )
        if cred.get("digital_source_type"):
            console.print(f"  source type: {escape(_source_type_text(cred['digital_source_type']))}")
        elif cred.get("parent_source_type"):
            console.print(f"  source type: {escape(_source_type_text(cred['parent_source_type']))}"
                          " (of the audio this file was edited from)")
    for w in report.get("watermark") or []:
        if w["found"]:
            several = len(w["payloads"]) > 1  # joined outputs: say which span holds which
            segs = first_few([f"{s['start_s']:.1f}-{s['end_s']:.1f} s"
                              + (f" ({s.get('payload') or '?'})" if several else "") for s in w["segments"]], 6)
            if len(w["segments"]) > 6:  # a long file: where the mark ends counts most
                segs += f", the last ending at {w['segments'][-1]['end_s']:.1f} s"
            console.print(
                f"  watermark (key {w['key_id']}): found, p={p_text(w['p_value'])}, payload "
                f"{', '.join(w['payloads']) or '?'}, segments {segs}"
            )
        else:
            console.print(f"  watermark (key {w['key_id']}): not found (p={p_text(w['p_value'])})")
    for m in report.get("store") or []:
        refused = f"; cannot vouch: {m['refused']}" if m.get("refused") else ""
        console.print(f"  store: record {escape(m['record_id'])} ({m['binding']} binding{escape(refused)})")
    for n in report.get("notes") or []:
        console.print(f"  note: {escape(n)}")


def verify_cmd(
    files: list[Path] = typer.Argument(..., metavar="FILE...", help="Files or directories to verify.", readable=False),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON report per file (JSON Lines) on stdout."),
    trust_anchors: list[Path] = typer.Option(
        [], "--trust-anchors", metavar="PEM", help="Extra PEM trust anchor(s) for this run (repeatable)."
    , readable=False),
    keys: list[Path] = typer.Option(
        [], "--key", metavar="KEYFILE", help="Extra watermark key file(s) to search with (repeatable)."
    , readable=False),
    no_store: bool = typer.Option(False, "--no-store", help="Do not look payloads up in the manifest store."),
    time_limit: float = typer.Option(
        300.0, "--time-limit", min=1.0, callback=finite,
        help="Time limit per file, seconds. A file that runs out of it is an error, unless its credentials were "
             "already validated: they then give the verdict, with a note that the watermark and store were not "
             "checked."),
) -> None:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from provenance.watermark import load_key

    from detectors.verify import Verifier, VerifyLimits

    stdout = _stdout_console(highlight=False, soft_wrap=True)
    stderr = Console(stderr=True, highlight=False)
    targets = _collect(list(files))
    if not targets:
        from provenance.core.errors import InputError

        # raised, not printed: the CLI's error path gives `error: ...` on one line, and with
        # --json the error object on stdout that a program reading it expects
        raise InputError("no files to verify: hidden files, .c2pa sidecars and text, data and key files "
                         "(.txt, .json, .pem ...) are skipped, and nothing else is there",
                         path=", ".join(shown(str(p)) for p in files))

    verifier = Verifier(
        None,
        None,
        extra_trust_anchors=trust_anchors,
        limits=VerifyLimits(time_limit_s=time_limit),
        use_store=not no_store,
    )
    if keys:
        known = {k.key_id for k in verifier.keyring}
        for p in keys:
            k = load_key(p)
            if k.key_id not in known:
                verifier.keyring.append(k)
                known.add(k.key_id)
    verdicts: list[str] = []
    codes: list[int] = []
    if len(targets) == 1:
        # one file: a bar of the share of its audio read, where a person watches (a long file
        # takes a while: about 7 s for 30 minutes of stereo on one core)
        from foleyseal.cli.progress import file_progress

        with verifier, file_progress(targets[0].name[:40]) as report_share:
            report = verifier.verify(targets[0], progress=lambda share: report_share("verifying", share)).to_dict()
        _print_report(report, json_out, stdout)
        sys.exit(report_exit_code(report))
    # A bar only where a person watches (or when asked): it is drawn on stderr and disappears.
    show_progress = progress_wanted()
    with verifier, Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=stderr,
        transient=True,
        disable=not show_progress,
    ) as progress:
        task = progress.add_task("verifying", total=len(targets))
        for path in targets:
            progress.update(task, description=f"verifying {path.name[:40]}")
            report = verifier.verify(path).to_dict()
            verdicts.append(report["verdict"])
            codes.append(report_exit_code(report))
            _print_report(report, json_out, progress.console if show_progress else stdout)
            progress.advance(task)
    # sys.exit rather than typer.Exit: with standalone_mode=False click *returns* an Exit's code,
    # and the console entry point would turn it into 0.
    sys.exit(combined_exit_code(verdicts, codes))


def _stdout_console(**options: Any) -> Any:
    """A rich console on stdout whose reader may go away (``| head``): rich would exit 1 then,
    which reads as "no evidence"; the error goes up to the CLI's handler instead, which exits as
    SIGPIPE does (141)."""
    from rich.console import Console

    class Stdout(Console):
        def on_broken_pipe(self) -> None:
            self.quiet = True
            raise BrokenPipeError(errno.EPIPE, "the reader of the output went away")

    return Stdout(**options)


def _print_report(report: dict, json_out: bool, console: Any) -> None:
    """One file's report: a JSON line on stdout, or the summary on ``console``."""
    if json_out:
        sys.stdout.write(json.dumps(report, allow_nan=False, default=str) + "\n")
        sys.stdout.flush()
    else:
        _summary(report, console)


verify_cmd.__doc__ = _VERIFY_HELP


def serve_cmd(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (127.0.0.1: this machine only)."),
    port: int = typer.Option(8000, "--port", min=0, max=65535, help="TCP port (0: one the system picks, printed at start)."),
    database_url: str | None = typer.Option(
        None, "--database-url", metavar="URL",
        help="SQLAlchemy URL of the manifest store, e.g. postgresql+psycopg://user@db/foleyseal "
        "(default: the configured store, SQLite in the FoleySeal home).",
    ),
    workers: int = typer.Option(2, "--workers", min=0, max=64, help="Detector worker processes (0: threads)."),
    max_upload_mb: float = typer.Option(500.0, "--max-upload-mb", min=0.001, callback=finite,
                                        help="Upload size limit, MiB (1 MiB = 1,048,576 bytes)."),
    verify_timeout: float = typer.Option(120.0, "--verify-timeout", min=1.0, callback=finite,
                                         help="Time limit per verification, s."),
    rate_limit: float = typer.Option(
        60.0, "--rate-limit", min=0.0, callback=finite, help="Read requests per minute per client IP (0: unlimited)."
    ),
    trust_anchors: list[Path] = typer.Option(
        [], "--trust-anchors", metavar="PEM", help="Extra PEM trust anchor(s) (repeatable)."
    , readable=False),
    header_timeout: float = typer.Option(
        20.0, "--header-timeout", min=0.1, callback=finite,
        help="Seconds a connection has to send its request headers (later: 408, closed).",
    ),
    max_connections_per_client: int = typer.Option(
        64, "--max-connections-per-client", min=0,
        help="Open connections per client address; more get 503 (0: no cap).",
    ),
    create_api_key: str | None = typer.Option(
        None, "--create-api-key", metavar="NAME",
        help="Create an API key for the write endpoints, print it once, and exit (only its hash is kept).",
    ),
    list_api_keys: bool = typer.Option(
        False, "--list-api-keys", help="List this home's API keys (id, name, created, revoked) and exit.",
    ),
    revoke_api_key: str | None = typer.Option(
        None, "--revoke-api-key", metavar="ID",
        help="Revoke the API key with this id (see --list-api-keys) and exit; every instance sharing the "
        "keys file refuses it from its next request.",
    ),
) -> None:
    """Run the verification service: POST /v1/verify, the C2PA Soft Binding Resolution API, the web page at /, OpenAPI docs at /docs.

    Starts with one command on the embedded default (SQLite store in the FoleySeal home); --database-url points it at PostgreSQL for a shared deployment. Reads are public but rate-limited per client; writes need an API key (--create-api-key NAME makes one).
    """  # noqa: E501 - one line per paragraph: the help renderer re-wraps it
    if sum((create_api_key is not None, list_api_keys, revoke_api_key is not None)) > 1:
        raise typer.BadParameter("give one of --create-api-key, --list-api-keys and --revoke-api-key")
    if create_api_key is not None or list_api_keys or revoke_api_key is not None:
        _manage_api_keys(create_api_key, list_api_keys, revoke_api_key)
        return
    try:
        # imported here: a stop asked for while the service's modules load is a stop, too
        from detectors.service import ServiceConfig, serve
        from detectors.service.app import check_config

        config = ServiceConfig(
            database_url=database_url,
            trust_anchors=list(trust_anchors),
            max_upload_bytes=int(max_upload_mb * 1024 * 1024),
            verify_timeout_s=verify_timeout,
            workers=workers,
            rate_limit_per_min=rate_limit,
            header_timeout_s=header_timeout,
            max_connections_per_client=max_connections_per_client,
        )
        for note in check_config(config):
            typer.echo(f"note: {note}", err=True)
        serve(config, host=host, port=port, checked=True,
              announce=lambda url: typer.echo(f"FoleySeal verification service on {url}  (docs: /docs)", err=True))
    except KeyboardInterrupt:
        # A stop asked for (Ctrl-C, SIGTERM) before uvicorn took the signals over, while the
        # service loaded and checked its store, keys and trust anchors: it stops as it would
        # later, with 0 (README).
        typer.echo("stopped before the service started", err=True)


def _manage_api_keys(create: str | None, list_them: bool, revoke: str | None) -> None:
    """``serve --create-api-key NAME``, ``--list-api-keys`` or ``--revoke-api-key ID``, on this
    home's ``api-keys.json`` (not in the manifest store: instances that share a PostgreSQL store
    each have their own)."""
    from provenance.core.config import load_settings

    from detectors.service.api_keys import ApiKeyStore, home_keys_file

    keys_file = home_keys_file(load_settings().home)
    keys = ApiKeyStore(keys_file)
    if create is not None:
        key, entry = keys.create(create)
        typer.echo(key)
        typer.echo(f"API key {entry.id} ({shown(entry.name)}) created in {keys_file} (the services of this home "
                   "accept it); it is shown only this once.", err=True)
    elif list_them:
        _list_api_keys(keys, keys_file)
    elif revoke is not None:
        _revoke_api_key(keys, keys_file, revoke)


def _list_api_keys(keys: Any, keys_file: Path) -> None:
    """One line per key of ``keys``: id, name, when created and, if so, revoked (UTC)."""
    entries = keys.list()
    if not entries:
        typer.echo(f"no API keys in {keys_file}", err=True)
    for e in entries:
        state = f"revoked {e.revoked_at}" if e.revoked_at else "active"
        typer.echo(f"{e.id}  {shown(e.name)}  created {e.created_at}  {state}")


def _revoke_api_key(keys: Any, keys_file: Path, key_id: str) -> None:
    """Revoke ``key_id``; an id that names no key is an error, one already revoked is said so."""
    from provenance.core.errors import ConfigError

    entry = next((e for e in keys.list() if e.id == key_id), None)
    if entry is None:
        raise ConfigError(f"no API key with the id {shown(key_id)!r} (see foleyseal serve --list-api-keys)",
                          path=keys_file)
    if keys.revoke(key_id):
        typer.echo(f"API key {entry.id} ({shown(entry.name)}) revoked in {keys_file}", err=True)
    else:
        typer.echo(f"API key {entry.id} ({shown(entry.name)}) was already revoked", err=True)


def bench_load_cmd(
    clients: int = typer.Option(32, "--clients", min=1, max=256, help="Concurrent clients."),
    duration: float = typer.Option(60.0, "--duration", min=1.0, max=3600.0, callback=finite, help="Seconds of load."),
    file_seconds: float = typer.Option(30.0, "--file-seconds", min=5.0, max=600.0, callback=finite,
                                       help="Length of each clip, s (at least 5: a watermark block and a margin)."),
    workers: int = typer.Option(2, "--workers", min=1, max=64,
                                help="Worker processes of the server started here (not with --url)."),
    url: str | None = typer.Option(None, "--url", help="A service already running on this machine "
                                   "(http://127.0.0.1:PORT) to load instead of starting one."),
    api_key_file: Path | None = typer.Option(
        None, "--api-key-file", readable=False,
        help="With --url: a file holding an API key of that service (its clients are not rate limited)."),
    out: Path | None = typer.Option(None, "--out", help="Write the JSON result to this file.", readable=False),
    json_out: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Load-test the verification service on 127.0.0.1: throughput, p50/p95 latency, errors.

    CLIENTS clients verify clips of FILE_SECONDS seconds again and again for DURATION seconds against one local server: one started here, of a temporary home, or the one at --url (which must be on this machine; a rate-limited one needs --api-key-file). Exit 0 when every request succeeded.
    """  # noqa: E501 - one line per paragraph: the help renderer re-wraps it
    from benchmarks.jsonout import dumps  # null, not NaN, for latencies when no request succeeded
    from benchmarks.load import LOCAL_URLS, LoadConfig, format_result, run_load
    from benchmarks.requirements import HTTPX, require_test_extra

    from provenance.core.atomic import atomic_write_bytes, check_writable
    from provenance.core.errors import InputError

    from foleyseal.cli.store import load_api_key

    require_test_extra(HTTPX)

    if url is not None and not url.startswith(LOCAL_URLS):
        raise InputError(f"--url must be a service on this machine (http://127.0.0.1:PORT), got {url!r}")
    if api_key_file is not None and url is None:
        raise InputError("--api-key-file is for a service given by --url")
    api_key = load_api_key(api_key_file) if api_key_file is not None else None
    if out is not None:
        check_writable(out)  # before minutes of load, not after
    r = run_load(LoadConfig(clients=clients, duration_s=duration, file_seconds=file_seconds, workers=workers,
                            url=url.rstrip("/") if url else None, api_key=api_key))
    text = dumps(r.to_dict(), indent=2)
    if out is not None:
        atomic_write_bytes(out, text.encode())
    typer.echo(text if json_out else format_result(r))
    sys.exit(exit_codes.OK if r.errors == 0 and r.ok > 0 else exit_codes.NOT_FOUND)


def _source_type_text(uri: str) -> str:
    """An IPTC digital source type as its name, with "(AI-generated)" where it says so."""
    from detectors.report import is_ai_source_type

    name = uri.rsplit("/", 1)[-1]
    return f"{name} (AI-generated)" if is_ai_source_type(uri) else name
