"""``foleyseal store``: the manifest store of the FoleySeal home, seen from the command line."""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from foleyseal.cli import exit_codes
from foleyseal.cli.numbers import finite

if TYPE_CHECKING:
    from provenance.store.push import PushResult

app = typer.Typer(help="The manifest store: push records to a verification service.", no_args_is_help=True)

_HOME_HELP = "FoleySeal home directory (default: $FOLEYSEAL_HOME or the per-user config dir)."
API_KEY_ENV = "FOLEYSEAL_API_KEY"


def load_api_key(path: Path | None) -> str:
    """The service's API key: from ``path`` (owner-only, as every secret file here) or the environment."""
    from provenance.core.errors import ConfigError, KeyFileError
    from provenance.core.permissions import read_owner_only_text

    if path is None:
        key = os.environ.get(API_KEY_ENV, "").strip()
        if not key:
            raise ConfigError(f"no API key: give --api-key-file FILE or set {API_KEY_ENV} "
                              "(`foleyseal serve --create-api-key NAME` on the service makes one)")
        return key
    key = read_owner_only_text(path, "API key file").strip()
    if not key or len(key.split()) != 1:
        raise KeyFileError("the API key file must hold the key alone, on one line", path=path)
    return key


@app.command("push")
def push_cmd(
    service_url: str = typer.Argument(..., metavar="URL", help="Base URL of the verification service, e.g. https://verify.example.org."),
    ids: list[str] = typer.Option(None, "--id", help="Push only this manifest id (repeatable; default: every record)."),
    api_key_file: Path = typer.Option(None, "--api-key-file", help=f"File holding the service's API key (mode 0600; default: ${API_KEY_ENV}).", readable=False),
    timeout: float = typer.Option(60.0, "--timeout", min=1.0, max=3600.0, callback=finite,
                                  help="Seconds to wait for each answer."),
    home: Path = typer.Option(None, "--home", help=_HOME_HELP, readable=False),
    json_out: bool = typer.Option(False, "--json", help="Print a JSON summary."),
) -> None:
    """Register the records of this home's store (with a shared PostgreSQL store: all of its records) with a verification service (POST /v1/manifests).

    Its verifiers can then recover the credentials of files marked here from their watermark (given this home's watermark key in their keyring and its root among their trust anchors). Records the service already holds are left as they are, so pushing again is safe. Exit 0 when every record is there, 3 when one was refused (a payload the service holds for another manifest) or the service cannot be reached or refuses the key.
    """  # noqa: E501 - one line per paragraph: the help renderer re-wraps it
    from provenance.core.config import load_settings
    from provenance.core.errors import FoleySealError, InputError
    from provenance.store.push import push_record
    from provenance.store.repository import open_store

    if not service_url.startswith(("http://", "https://")):
        raise InputError(f"the service URL must start with http:// or https://, got {service_url!r}")
    key = load_api_key(api_key_file)
    settings = load_settings(home)
    results = []
    with open_store(settings, read_only=True) as store:
        if ids:
            wanted = {i: store.get(i) for i in ids}
            missing = [i for i, record in wanted.items() if record is None]
            if missing:
                raise InputError(f"not in the manifest store: {', '.join(missing)}")
            records = iter(wanted.values())
        else:
            records = store.iter_records()
        try:
            for record in records:
                result = push_record(record, service_url, key, timeout_s=timeout)
                results.append(result)
                if not json_out:
                    typer.echo(f"{result.outcome:<19}{result.id}  payload {result.payload}"
                               + (f"  ({result.detail})" if result.outcome == "conflict" else ""))
        except FoleySealError as exc:
            # the service went away or refused the key part-way: what was pushed before is said too
            if not json_out:
                if results:
                    typer.echo(f"before the error: {_summary(results)}")
                raise
            typer.echo(f"error: {exc}", err=True)
            typer.echo(json.dumps({**exit_codes.error_fields(exc), "exit_code": exit_codes.INPUT_ERROR,
                                   **_push_json(service_url, results)}, indent=2))
            raise typer.Exit(exit_codes.INPUT_ERROR) from None
    if json_out:
        typer.echo(json.dumps(_push_json(service_url, results), indent=2))
    else:
        typer.echo(_summary(results))
    if any(r.outcome == "conflict" for r in results):
        raise typer.Exit(exit_codes.INPUT_ERROR)


def _counts(results: list[PushResult]) -> dict[str, int]:
    return {o: sum(r.outcome == o for r in results) for o in ("registered", "already_registered", "conflict")}


def _push_json(service_url: str, results: list[PushResult]) -> dict[str, object]:
    """``push --json``'s summary: the service, a count per outcome, and each record's result."""
    return {"service": service_url, **_counts(results), "results": [asdict(r) for r in results]}


def _summary(results: list[PushResult]) -> str:
    counts = _counts(results)
    return (f"{len(results)} record(s): {counts['registered']} registered, "
            f"{counts['already_registered']} already there, {counts['conflict']} refused")
