"""FoleySeal configuration: where keys, certificates and the manifest store live.

Everything is found from one *home* directory: ``$FOLEYSEAL_HOME`` if set, else the per-user
configuration directory (``$XDG_CONFIG_HOME/foleyseal`` or ``~/.config/foleyseal`` on Linux,
``~/Library/Application Support/foleyseal`` on macOS, ``%APPDATA%\\foleyseal`` on Windows).

``<home>/config.toml`` may override any default; relative paths in it are relative to the home.
Environment variables override the file. Recognised keys (TOML name, environment variable)::

    watermark_key    FOLEYSEAL_WATERMARK_KEY    256-bit watermark key file  (keys/watermark.key)
    cert_chain       FOLEYSEAL_CERT_CHAIN       signing certificate + intermediates, PEM
                                                (keys/signing-chain.pem)
    signing_key      FOLEYSEAL_SIGNING_KEY      private key of the signing certificate, PEM
                                                (keys/signing-key.pem)
    root_cert        FOLEYSEAL_ROOT_CERT        root CA of the chain, PEM: a trust anchor
                                                (keys/root-ca.pem)
    store_url        FOLEYSEAL_STORE_URL        SQLAlchemy URL of the manifest store
                                                (sqlite:///<home>/manifests.sqlite3)
    trust_anchors    FOLEYSEAL_TRUST_ANCHORS    extra PEM trust anchors (list; the variable
                                                separates paths with os.pathsep)
    trust_list       FOLEYSEAL_TRUST_LIST       a PEM bundle of anchors, e.g. a published
                                                C2PA trust list
    tsa_url          FOLEYSEAL_TSA_URL          RFC 3161 timestamp authority (optional)
    signer_callback  FOLEYSEAL_SIGNER_CALLBACK  "module:function" signing hook for an HSM or
                                                cloud KMS (see provenance.keys.signers)

An empty environment variable clears an optional value (``FOLEYSEAL_TSA_URL=``).
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from provenance.core.errors import ConfigError
from provenance.core.pem import describe_name

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised only on Python 3.10
    import tomli as tomllib

CONFIG_FILE_NAME = "config.toml"
HOME_ENV = "FOLEYSEAL_HOME"

_PATH_KEYS = {
    "watermark_key": ("watermark_key_path", "FOLEYSEAL_WATERMARK_KEY", "keys/watermark.key"),
    "cert_chain": ("cert_chain_path", "FOLEYSEAL_CERT_CHAIN", "keys/signing-chain.pem"),
    "signing_key": ("signing_key_path", "FOLEYSEAL_SIGNING_KEY", "keys/signing-key.pem"),
    "root_cert": ("root_cert_path", "FOLEYSEAL_ROOT_CERT", "keys/root-ca.pem"),
}
_OPTIONAL_STR_KEYS = {
    "tsa_url": "FOLEYSEAL_TSA_URL",
    "signer_callback": "FOLEYSEAL_SIGNER_CALLBACK",
}
_KNOWN_KEYS = set(_PATH_KEYS) | set(_OPTIONAL_STR_KEYS) | {"store_url", "trust_anchors", "trust_list"}


@dataclass
class Settings:
    """Resolved configuration. All paths are absolute."""

    home: Path
    watermark_key_path: Path
    cert_chain_path: Path
    """Signing (leaf) certificate first, then intermediates; PEM. Never the root."""
    signing_key_path: Path
    root_cert_path: Path
    """The root CA of the signing chain: FoleySeal's own trust anchor."""
    store_url: str
    """SQLAlchemy URL of the manifest store."""
    trust_anchors: list[Path] = field(default_factory=list)
    """Extra PEM files whose certificates verifiers accept as roots."""
    trust_list: Path | None = None
    """A PEM bundle of trust anchors (e.g. a published C2PA trust list)."""
    tsa_url: str | None = None
    """RFC 3161 timestamp authority URL; None signs without a timestamp."""
    signer_callback: str | None = None
    """``"module:function"``: sign through this callable instead of the key file (HSM/KMS)."""

    @property
    def config_path(self) -> Path:
        return self.home / CONFIG_FILE_NAME


def default_home() -> Path:
    """``$FOLEYSEAL_HOME`` or the per-user configuration directory for FoleySeal."""
    env = os.environ.get(HOME_ENV)
    if env:
        return Path(env).expanduser().resolve()
    if sys.platform == "win32":  # pragma: no cover - platform specific
        base = Path(os.environ.get("APPDATA") or Path.home() / "AppData" / "Roaming")
    elif sys.platform == "darwin":  # pragma: no cover - platform specific
        base = Path.home() / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return (base / "foleyseal").resolve()


def _read_config_file(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"invalid TOML: {exc}", path=path) from exc
    except OSError as exc:
        raise ConfigError(f"cannot read configuration: {exc.strerror}", path=path) from exc
    # Accept both a flat file and one with a [foleyseal] table.
    if isinstance(data.get("foleyseal"), dict):
        data = {**{k: v for k, v in data.items() if k != "foleyseal"}, **data["foleyseal"]}
    unknown = sorted(set(data) - _KNOWN_KEYS)
    if unknown:
        raise ConfigError(
            f"unknown configuration key(s) {', '.join(unknown)}; known: {', '.join(sorted(_KNOWN_KEYS))}",
            path=path,
        )
    return data


def _as_path(value: Any, home: Path, key: str, cfg: Path) -> Path:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"'{key}' must be a non-empty path string", path=cfg)
    p = Path(value).expanduser()
    return (p if p.is_absolute() else home / p).resolve()


def _home_relative_sqlite(url: str, home: Path) -> str:
    """``url`` with a relative SQLite file (``sqlite:///manifests.sqlite3``) made absolute under
    the home, as every other relative path of the configuration is: SQLAlchemy would take it
    from the working directory, and each `mark` run from another folder would keep its own store.
    Other URLs, absolute files (``sqlite:////srv/store.db``) and in-memory stores are kept."""
    prefix, sep, rest = url.partition(":///")
    if not sep or not prefix.startswith("sqlite"):
        return url
    file, q, query = rest.partition("?")
    if not file or file.startswith("/") or file == ":memory:" or file.startswith("file:") or Path(file).is_absolute():
        return url
    return f"{prefix}:///{(home / file).resolve()}{q}{query}"


def load_settings(home: Path | None = None) -> Settings:
    """Read ``<home>/config.toml`` (if present) and environment overrides into :class:`Settings`.

    ``home`` defaults to :func:`default_home`. Missing files are not an error here: commands
    that need a key or certificate report the missing path when they use it.
    """
    home = Path(home).expanduser().resolve() if home is not None else default_home()
    cfg_path = home / CONFIG_FILE_NAME
    data = _read_config_file(cfg_path)
    env = os.environ

    paths: dict[str, Path] = {}
    for key, (attr, env_name, default) in _PATH_KEYS.items():
        value = env.get(env_name) or data.get(key, default)
        paths[attr] = _as_path(value, home, key, cfg_path)

    store_url = env.get("FOLEYSEAL_STORE_URL") or data.get("store_url")
    if store_url is None:
        store_url = f"sqlite:///{home / 'manifests.sqlite3'}"
    if not isinstance(store_url, str) or "://" not in store_url:
        raise ConfigError(f"'store_url' must be an SQLAlchemy URL, got {store_url!r}", path=cfg_path)
    store_url = _home_relative_sqlite(store_url, home)

    if "FOLEYSEAL_TRUST_ANCHORS" in env:
        raw_anchors: Any = [p for p in env["FOLEYSEAL_TRUST_ANCHORS"].split(os.pathsep) if p]
    else:
        raw_anchors = data.get("trust_anchors", [])
    if isinstance(raw_anchors, str):
        raw_anchors = [raw_anchors]
    if not isinstance(raw_anchors, list):
        raise ConfigError("'trust_anchors' must be a list of PEM file paths", path=cfg_path)
    trust_anchors = [_as_path(p, home, "trust_anchors", cfg_path) for p in raw_anchors]

    trust_list_raw = env["FOLEYSEAL_TRUST_LIST"] if "FOLEYSEAL_TRUST_LIST" in env else data.get("trust_list")
    trust_list = _as_path(trust_list_raw, home, "trust_list", cfg_path) if trust_list_raw else None

    optional: dict[str, str | None] = {}
    for key, env_name in _OPTIONAL_STR_KEYS.items():
        value = env[env_name] if env_name in env else data.get(key)
        if value is not None and not isinstance(value, str):
            raise ConfigError(f"'{key}' must be a string", path=cfg_path)
        optional[key] = value or None

    if optional["tsa_url"] and not optional["tsa_url"].startswith(("http://", "https://")):
        origin = "FOLEYSEAL_TSA_URL" if "FOLEYSEAL_TSA_URL" in env else None  # not the file's fault then
        raise ConfigError(f"{origin or repr('tsa_url')} must be an http(s) URL, got {optional['tsa_url']!r}",
                          path=None if origin else cfg_path)
    cb = optional["signer_callback"]
    if cb and (cb.count(":") != 1 or not all(cb.split(":"))):
        raise ConfigError(f"'signer_callback' must look like 'package.module:function', got {cb!r}", path=cfg_path)

    return Settings(
        home=home,
        store_url=store_url,
        trust_anchors=trust_anchors,
        trust_list=trust_list,
        tsa_url=optional["tsa_url"],
        signer_callback=cb,
        **paths,
    )


_PEM_CERT = re.compile(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", re.S)


@dataclass(frozen=True)
class TrustAnchors:
    """The certificates a verifier accepts as roots, from the configured PEM files."""

    pem: str = ""
    """The anchors in force, each re-encoded as PEM ("" if none)."""
    count: int = 0
    """How many anchors are in force."""
    notes: tuple[str, ...] = ()
    """Anchors left out, and why (expired, not yet valid)."""

    def __add__(self, other: TrustAnchors) -> TrustAnchors:
        return TrustAnchors(self.pem + other.pem, self.count + other.count, self.notes + other.notes)


def _subject(cert: Any) -> str:
    return describe_name(cert.subject) or "(no subject)"


def read_trust_pem(path: Path, what: str = "trust anchors", *, now: datetime | None = None) -> TrustAnchors:
    """The certificates of the PEM file ``path`` (``what`` names it in messages) as trust anchors.

    Every certificate is parsed here, so that one damaged entry is named as a fault of this file
    (:class:`ConfigError`: which certificate, and why) rather than failing each verification,
    and only the certificates go to the C2PA reader (text around them is dropped). An anchor
    outside its validity period at ``now`` (default: the current time, UTC) is left out, with a
    note: ``keys import`` refuses such a root, and a verifier must not trust what it would refuse.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    try:
        text = path.read_text(encoding="ascii")
    except OSError as exc:
        raise ConfigError(f"cannot read {what}: {exc.strerror or exc}", path=path) from exc
    except UnicodeDecodeError as exc:
        from provenance.core.pem import binary_format_hint

        hint = binary_format_hint(path.read_bytes())
        raise ConfigError(f"{what} {hint}" if hint else f"{what} is not a PEM text file", path=path) from exc
    blocks = _PEM_CERT.findall(text)
    begun = text.count("-----BEGIN CERTIFICATE-----")
    if not begun:
        raise ConfigError(f"{what} holds no PEM certificate", path=path)
    if len(blocks) != begun:
        raise ConfigError(f"{what}: a certificate has no -----END CERTIFICATE----- line (the file is cut short?)",
                          path=path)
    now = now or datetime.now(timezone.utc)
    pem, notes = [], []
    for i, block in enumerate(blocks, 1):
        try:
            cert = x509.load_pem_x509_certificate(block.encode("ascii"))
        except ValueError as exc:
            reason = str(exc).split(". See https:")[0]  # cryptography appends a FAQ link
            raise ConfigError(f"{what}: certificate {i} of {len(blocks)} cannot be parsed ({reason}); "
                              "fix or remove it", path=path) from exc
        if cert.not_valid_after_utc < now:
            notes.append(f"The trust anchor {_subject(cert)} in {path} expired on "
                         f"{cert.not_valid_after_utc:%Y-%m-%d} and is not trusted.")
        elif cert.not_valid_before_utc > now:
            notes.append(f"The trust anchor {_subject(cert)} in {path} is not valid until "
                         f"{cert.not_valid_before_utc:%Y-%m-%d} and is not trusted yet.")
        else:
            pem.append(cert.public_bytes(Encoding.PEM).decode("ascii"))
    return TrustAnchors("".join(pem), len(pem), tuple(notes))


def trust_anchors(settings: Settings, extra: Sequence[str | Path] = ()) -> TrustAnchors:
    """All trust anchors a FoleySeal verifier accepts (:func:`read_trust_pem` for each file).

    FoleySeal's own root (if the file exists), then every ``trust_anchors`` file, then the
    ``trust_list`` bundle, then the ``extra`` files (a command's ``--trust-anchors``). A
    configured extra anchor or trust list that cannot be read is an error (:class:`ConfigError`);
    a missing own root is not (e.g. a verify-only machine).
    """
    found = TrustAnchors()
    if settings.root_cert_path.exists():
        found += read_trust_pem(settings.root_cert_path, "root certificate")
    for p in settings.trust_anchors:
        found += read_trust_pem(p, "trust anchor")
    if settings.trust_list is not None:
        found += read_trust_pem(settings.trust_list, "trust list")
    for p in extra:
        found += read_trust_pem(Path(p), "trust anchors file")
    return found


def trust_anchors_pem(settings: Settings) -> str:
    """The PEM text of :func:`trust_anchors` ("" if none)."""
    return trust_anchors(settings).pem
