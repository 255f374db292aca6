"""FoleySeal provenance: shared types, the audio watermark, keys, C2PA signing and the manifest store."""

__version__ = "0.1.0"
