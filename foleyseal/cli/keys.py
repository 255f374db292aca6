"""``foleyseal keys ...``: watermark keys and the signing certificate chain."""

from __future__ import annotations

import json
from pathlib import Path

import typer

app = typer.Typer(help="Create, import and show keys.", no_args_is_help=True)


@app.command("new-watermark-key")
def new_watermark_key(
    file: Path = typer.Argument(..., help="Where to write the new key (created with mode 0600).", readable=False),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing key file."),
    json_out: bool = typer.Option(False, "--json", help="Print a JSON summary."),
) -> None:
    """Create a random 256-bit watermark key in FILE (never printed)."""
    from provenance.watermark.keys import new_key, save_key

    key = new_key()
    save_key(key, file, overwrite=force)
    if json_out:
        typer.echo(json.dumps({"path": str(file), "key_id": key.key_id}))
    else:
        typer.echo(f"wrote watermark key {key.key_id} to {file} (mode 0600)")


# --- signing chain and FoleySeal home (issue 4) ------------------------------------------

_HOME_HELP = "FoleySeal home directory (default: $FOLEYSEAL_HOME or the per-user config dir)."

_CONFIG_TEMPLATE = """\
# FoleySeal configuration. Relative paths are relative to this directory.
# Environment variables FOLEYSEAL_<KEY> (upper case) override these entries.
#
# watermark_key   = "keys/watermark.key"
# cert_chain      = "keys/signing-chain.pem"    # signing certificate first, then intermediates
# signing_key     = "keys/signing-key.pem"
# root_cert       = "keys/root-ca.pem"          # your root CA: the anchor verifiers must trust
# store_url       = "sqlite:///manifests.sqlite3"  # or postgresql+psycopg://user:pass@host/db
# trust_anchors   = ["other-root.pem"]          # extra roots a verifier accepts
# trust_list      = "c2pa-trust-list.pem"
# tsa_url         = "http://timestamp.example.com"  # RFC 3161 timestamp authority (optional)
# signer_callback = "mycompany.kms:sign"        # sign in an HSM / cloud KMS instead of signing_key
"""


def _settings(home: Path | None):
    from provenance.core.config import load_settings

    return load_settings(home)


_VALIDITY_NOTES = {
    "valid": "",
    "expired": "  EXPIRED: signing fails, and files signed without a timestamp read untrusted",
    "not_yet_valid": "  NOT YET VALID",
}


def _cert_lines(infos) -> list[str]:
    lines = []
    for c in infos:
        lines.append(f"  {c.role:<12} {c.subject}")
        lines.append(f"  {'':<12} issuer   {c.issuer}")
        lines.append(f"  {'':<12} sha256   {c.sha256_fingerprint}")
        lines.append(f"  {'':<12} valid    {c.not_before:%Y-%m-%d} .. {c.not_after:%Y-%m-%d}  ({c.key_type})"
                     + _VALIDITY_NOTES[c.validity()])
        lines.append(f"  {'':<12} file     {c.path}")
    return lines


def _missing_chain_files(settings) -> list[Path]:
    """The files a usable signing chain in the home lacks.

    A chain and its key are needed; the key file is not when ``signer_callback`` holds the key,
    and the root is not either: ``keys import`` installs a chain without it when the operator's CA
    gave none (verifiers then need the root from elsewhere).
    """
    needed = [settings.cert_chain_path] + ([] if settings.signer_callback else [settings.signing_key_path])
    return [p for p in needed if not p.exists()]


def _signing_key_place(settings) -> str:
    return "(held by the callback)" if settings.signer_callback else str(settings.signing_key_path)


@app.command("init")
def init_cmd(
    home: Path = typer.Option(None, "--home", help=_HOME_HELP, readable=False),
    force: bool = typer.Option(False, "--force", help="Replace an existing chain and watermark key."),
    json_out: bool = typer.Option(False, "--json", help="Print a JSON summary."),
) -> None:
    """Create a development signing chain and a watermark key in the FoleySeal home.

    The chain is root CA -> intermediate -> ES256 signer; the watermark key is a 256-bit secret. Private keys are written 0600, never printed, and never replaced without --force: files that exist are kept (exit 0).
    """
    from provenance.core.atomic import atomic_write_bytes
    from provenance.core.errors import KeyFileError
    from provenance.keys.pki import describe_installed, install_dev_chain, make_home
    from provenance.watermark.keys import load_key, new_key, save_key

    settings = _settings(home)
    chain_kept = not _missing_chain_files(settings)
    complete = chain_kept and settings.watermark_key_path.exists() and settings.config_path.exists()
    if force or not complete:  # a complete home on a read-only disk is kept, and needs no write
        make_home(settings.home)
    created: list[str] = []
    kept: list[str] = []

    chain_files = [settings.cert_chain_path, settings.signing_key_path, settings.root_cert_path]
    present = [p for p in chain_files if p.exists()]
    # the files this run makes, removed again if it fails (with --force the old ones are gone)
    new_here = [] if force else [p for p in (*chain_files, settings.watermark_key_path) if not p.exists()]
    if force or not present:
        install_dev_chain(settings, force=True)
        created.append("certificate chain")
    elif chain_kept:
        kept.append("certificate chain")
    else:
        missing = [str(p) for p in _missing_chain_files(settings)]
        raise KeyFileError(
            f"incomplete certificate chain in the home (missing {', '.join(missing)}); "
            "use --force to replace it with a new development chain, or `keys import`",
            path=settings.home,
        )

    wk = settings.watermark_key_path
    try:
        if force or not wk.exists():
            wk.parent.mkdir(parents=True, exist_ok=True)
            key = new_key()
            save_key(key, wk, overwrite=force)
            created.append("watermark key")
        else:
            key = load_key(wk)
            kept.append("watermark key")

        if not settings.config_path.exists():
            atomic_write_bytes(settings.config_path, _CONFIG_TEMPLATE.encode(), mode=0o644)
            created.append("config.toml")
    except BaseException:
        # a home left half made (a chain without its watermark key) would be refused by the
        # next `keys init` as incomplete: what this run made goes, so that a retry works
        for p in new_here:
            p.unlink(missing_ok=True)
        raise

    infos = describe_installed(settings)
    if json_out:
        typer.echo(
            json.dumps(
                {
                    "home": str(settings.home),
                    "created": created,
                    "kept": kept,
                    "watermark_key": {"path": str(wk), "key_id": key.key_id},
                    "certificates": [c.to_dict() for c in infos],
                },
                indent=2,
            )
        )
        return
    typer.echo(f"FoleySeal home {settings.home}")
    if created:
        typer.echo(f"created: {', '.join(created)}")
    if kept:
        typer.echo(f"kept existing: {', '.join(kept)} (use --force to replace)")
    typer.echo(f"  watermark key id {key.key_id}  file {wk} (0600)")
    typer.echo(f"  signing key      {_signing_key_place(settings)}")
    for line in _cert_lines(infos):
        typer.echo(line)
    if infos[0].development:
        typer.echo(
            "This is a DEVELOPMENT chain: verifiers trust it only if they add the root above as a "
            "trust anchor. Use `foleyseal keys import` for a production certificate."
        )


@app.command("show")
def show_cmd(
    home: Path = typer.Option(None, "--home", help=_HOME_HELP, readable=False),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Print the signing chain, the watermark key id and the configuration.

    For each certificate: subject, issuer, SHA-256 fingerprint, validity and file. Never prints private keys.
    """
    from provenance.core.errors import FoleySealError, KeyFileError
    from provenance.core.permissions import check_owner_only
    from provenance.keys.pki import describe_installed
    from provenance.keys.signers import load_identity
    from provenance.store.repository import display_url, normalise_url
    from provenance.watermark.keys import load_key

    settings = _settings(home)
    infos = describe_installed(settings)
    key_id, key_problem = None, None
    if settings.watermark_key_path.exists():
        try:
            key_id = load_key(settings.watermark_key_path).key_id
        except KeyFileError as exc:  # say it, and show the rest: the chain is still worth seeing
            key_problem = exc.message
    signing_problem = None
    if not settings.signer_callback and settings.signing_key_path.exists():
        try:
            check_owner_only(settings.signing_key_path, "signing key file")
        except KeyFileError as exc:
            signing_problem = exc.message
    try:  # what `sign` would meet: an expired chain, a key of another certificate, a broken hook
        load_identity(settings)
        cannot_sign = None
    except FoleySealError as exc:
        cannot_sign = str(exc)
    store = display_url(normalise_url(settings.store_url))
    summary = {
        "home": str(settings.home),
        "signer": "callback " + settings.signer_callback if settings.signer_callback else "key file",
        "signing_key": str(settings.signing_key_path),
        "signing_key_problem": signing_problem,
        "can_sign": cannot_sign is None,
        "signing_problem": cannot_sign,
        "watermark_key": {"path": str(settings.watermark_key_path), "key_id": key_id, "problem": key_problem},
        "store_url": store,
        "tsa_url": settings.tsa_url,
        "trust_anchors": [str(p) for p in settings.trust_anchors],
        "trust_list": str(settings.trust_list) if settings.trust_list else None,
        "certificates": [c.to_dict() for c in infos],
    }
    if json_out:
        typer.echo(json.dumps(summary, indent=2))
        return
    typer.echo(f"FoleySeal home {settings.home}")
    typer.echo(f"  signer           {summary['signer']}")
    signing_key = _signing_key_place(settings)
    typer.echo(f"  signing key      {signing_key}" + (f" (unusable: {signing_problem})" if signing_problem else ""))
    if cannot_sign and not signing_problem:
        typer.echo(f"  CANNOT SIGN      {cannot_sign}")
    state = f"id {key_id}" if key_id else (f"unusable: {key_problem}" if key_problem else "missing")
    typer.echo(f"  watermark key    {settings.watermark_key_path} ({state})")
    typer.echo(f"  manifest store   {store}")
    typer.echo(f"  timestamp (TSA)  {settings.tsa_url or 'none'}")
    for line in _cert_lines(infos):
        typer.echo(line)


@app.command("import")
def import_cmd(
    cert_chain: Path = typer.Option(..., "--cert-chain", help="PEM: signing certificate first, then intermediates (a trailing root is split off).", readable=False),
    key: Path = typer.Option(None, "--key", help="PEM private key of the signing certificate (omit when signer_callback is configured).", readable=False),
    root: Path = typer.Option(None, "--root", help="PEM root CA of the chain (installed as FoleySeal's trust anchor).", readable=False),
    home: Path = typer.Option(None, "--home", help=_HOME_HELP, readable=False),
    force: bool = typer.Option(False, "--force", help="Replace the installed chain and key."),
    json_out: bool = typer.Option(False, "--json", help="Print a JSON summary."),
) -> None:
    """Validate and install an operator's own certificate chain and key.

    Refused with the fault named (exit 3) for: wrong order, a CA as signing certificate, wrong extended key usage (C2PA needs emailProtection), an expired certificate, a key that does not match. The chain is test-signed before anything is installed.
    """
    from provenance.core.errors import KeyFileError
    from provenance.core.pem import describe_name
    from provenance.keys.pki import cert_info, import_chain
    from provenance.keys.signers import resolve_callback

    settings = _settings(home)
    callback = None
    if key is None:
        if not settings.signer_callback:
            raise KeyFileError("--key is required unless signer_callback is configured")
        callback = resolve_callback(settings.signer_callback)
    elif settings.signer_callback:
        # the key would be test-signed with and installed, yet every signature would come from
        # the callback: a mismatch showed only at the first `sign`
        raise KeyFileError(
            f"signer_callback {settings.signer_callback} is configured, so signing goes through it and "
            "--key would never be used; leave out --key (the chain is then test-signed through the "
            "callback), or remove signer_callback from the configuration to sign with a key file"
        )
    _, validated = import_chain(settings, cert_chain, key, root=root, force=force, callback=callback,
                                callback_name=settings.signer_callback)
    roles = ["signing"] + ["intermediate"] * (len(validated.certificates) - 1)
    if validated.root_pem is not None:
        roles[-1] = "root"
    infos = [
        cert_info(c, r, settings.root_cert_path if r == "root" else settings.cert_chain_path)
        for c, r in zip(validated.certificates, roles)
    ]
    if json_out:
        typer.echo(json.dumps({"home": str(settings.home), "alg": validated.alg,
                               "certificates": [c.to_dict() for c in infos]}, indent=2))
        return
    typer.echo(f"imported a {validated.alg.upper()} signing chain into {settings.home}")
    for line in _cert_lines(infos):
        typer.echo(line)
    if not settings.watermark_key_path.exists():
        # mark and generate need one too; said here because `keys init` reads as "start over"
        typer.echo(f"note: this home has no watermark key yet ({settings.watermark_key_path}); "
                   "`foleyseal keys init` creates one and keeps this chain.")
    if validated.root_pem is None:
        # which CA the chain stops at cannot be checked without the root: a missing intermediate
        # made every signature read as untrusted, with only "must already trust the root" said
        last = validated.certificates[-1]
        issuer = describe_name(last.issuer)
        typer.echo(f"note: no root certificate given; the chain ends at {describe_name(last.subject)}, "
                   f"issued by {issuer}. Verifiers must trust {issuer} as a root; if it is an "
                   "intermediate CA, add its certificate (and any above it, up to the root) to "
                   "--cert-chain, or every signature will read as untrusted.")
