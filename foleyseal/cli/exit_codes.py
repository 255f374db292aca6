"""Exit codes shared by every ``foleyseal`` command.

=====  ==========================================================================
code   meaning
=====  ==========================================================================
0      success (for ``watermark detect``: a watermark was found)
1      the command ran, and found nothing (``watermark detect``: no watermark)
2      usage error: unknown option, missing argument (reported by the CLI parser)
3      bad input or environment: unreadable/corrupt file, bad key, bad payload...
4      internal error (a bug: please report it)
130    interrupted (Ctrl-C; 128 + the signal's number for others, e.g. 143 for SIGTERM)
141    the reader of the output went away (``| head``), as for a process SIGPIPE kills
=====  ==========================================================================
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from provenance.core.errors import FoleySealError

OK = 0
NOT_FOUND = 1
USAGE = 2
INPUT_ERROR = 3
INTERNAL_ERROR = 4


def error_fields(exc: FoleySealError) -> dict[str, object]:
    """What ``--json`` prints of a FoleySeal error, beside its ``exit_code``: the message, the
    file it names and the error's class (``kind``)."""
    return {"error": exc.message, "file": exc.path, "kind": type(exc).__name__}
