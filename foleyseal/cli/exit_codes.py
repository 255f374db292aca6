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

OK = 0
NOT_FOUND = 1
USAGE = 2
INPUT_ERROR = 3
INTERNAL_ERROR = 4
