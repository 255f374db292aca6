"""Text: values that must be valid Unicode wherever they go (JSON, the store, C2PA), and lists in sentences."""

from __future__ import annotations

from typing import Any


def valid_unicode(value: Any) -> Any:
    """``value`` with every string in it (also inside dicts, lists and tuples) made valid
    Unicode. A file name or argument that is not UTF-8 (Latin-1 from an old archive) reaches
    Python with lone surrogates, which JSON encoders and databases refuse; each becomes U+FFFD,
    as a file manager shows it. Lists and tuples come back as lists."""
    if isinstance(value, str):
        return value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    if isinstance(value, dict):
        return {valid_unicode(k): valid_unicode(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [valid_unicode(v) for v in value]
    return value


def first_few(items: list[str], shown: int) -> str:
    """``items`` for a sentence: ``a, b, c`` with at most ``shown`` of them, then ``and N more``."""
    more = f" and {len(items) - shown} more" if len(items) > shown else ""
    return ", ".join(items[:shown]) + more
