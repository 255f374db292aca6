"""Shared types of every FoleySeal stage: audio buffers, errors, I/O, atomic writes, configuration."""

from provenance.core.atomic import atomic_path, atomic_write_bytes
from provenance.core.audio import Audio, AudioInfo, check_audio_params
from provenance.core.errors import (
    ConfigError,
    FoleySealError,
    FormatError,
    GenerationError,
    InputError,
    KeyFileError,
    PayloadError,
    SigningError,
    StoreError,
)

__all__ = [
    "Audio",
    "AudioInfo",
    "ConfigError",
    "FoleySealError",
    "FormatError",
    "GenerationError",
    "InputError",
    "KeyFileError",
    "PayloadError",
    "SigningError",
    "StoreError",
    "atomic_path",
    "atomic_write_bytes",
    "check_audio_params",
]
