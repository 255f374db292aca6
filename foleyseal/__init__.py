"""FoleySeal: soundtracks for video, and provenance for every output.

The thin public layer: re-exports of each stage's one entry point, and the CLI.
"""

from provenance import __version__

__all__ = ["__version__"]
