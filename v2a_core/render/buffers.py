"""Full-length signal buffers: in memory for a short soundtrack, in unnamed files for a long one.

A soundtrack is 384 kB per second (48 kHz stereo float32), so a two-hour one is 2.8 GB, and
rendering and mastering hold a few such signals at a time (the mix, a reverb send, a bed, the
limiter's envelope and gain). Buffers larger than :attr:`Buffers.in_memory_bytes` are mapped
from temporary files instead: the kernel writes their pages out and reads them back as needed,
so memory stays bounded however long the video. The files are unnamed (``O_TMPFILE`` where the
file system has it): no other process sees them and they go with the process, however it ends.
Their space is reserved up front, so a full disk is an error naming the folder, not a crash
when a page is first written. Where the folder's file system cannot map files, buffers stay in
memory.
"""

from __future__ import annotations

import errno
import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from provenance.core.errors import InputError
from v2a_core.render.dsp import SR


@dataclass(frozen=True)
class Buffers:
    """Where full-length buffers live (see the module docstring)."""

    folder: Path | None = None
    """Folder of the temporary files: the output's folder (a disk the output goes to anyway), or
    None for the system's temporary folder."""
    in_memory_bytes: int = 256 << 20
    """Buffers up to this size (bytes; 11 minutes of 48 kHz stereo float32) stay in memory."""

    def zeros(self, shape: tuple[int, ...], dtype: type | np.dtype = np.float32) -> np.ndarray:
        """A zero-filled array of ``shape`` and ``dtype``, in memory or mapped from a file."""
        dtype = np.dtype(dtype)
        nbytes = math.prod(shape) * dtype.itemsize
        if nbytes <= self.in_memory_bytes:
            return np.zeros(shape, dtype)
        folder = self.folder if self.folder is not None else Path(tempfile.gettempdir())
        try:
            with tempfile.TemporaryFile(dir=folder) as f:
                _reserve(f.fileno(), nbytes)
                # the mapping keeps the file alive after it is closed; the kernel frees both with it
                return np.memmap(f, dtype=dtype, mode="r+", shape=shape)
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise InputError(
                    f"no room for the soundtrack's working files: {nbytes / 1e9:.1f} GB more free space is needed",
                    path=folder,
                ) from None
            # a folder whose file system cannot map files (some network and FUSE mounts): in
            # memory, as before there were working files
            return np.zeros(shape, dtype)


def _reserve(fd: int, nbytes: int) -> None:
    """Give the file ``nbytes`` of disk now, so a full disk fails here and not as SIGBUS when a
    page is first written (Linux); elsewhere the file is only sized (macOS has no fallocate)."""
    if hasattr(os, "posix_fallocate"):
        os.posix_fallocate(fd, 0, nbytes)
    else:
        os.ftruncate(fd, nbytes)


MIX_BYTES_PER_S = SR * 2 * 4
"""Bytes of a 48 kHz stereo float32 soundtrack per second."""


def disk_needed_bytes(duration_s: float, buffers: Buffers) -> int:
    """The least free disk (bytes) that rendering a soundtrack of ``duration_s`` seconds takes in
    ``buffers``' folder: the mix and one more full-length signal at a time (a reverb send, a bed,
    the music; or the limiter's envelope and gain), each where it is too big to stay in memory.
    Stems add the mix's size each."""
    mix = int(duration_s * MIX_BYTES_PER_S)
    return 2 * mix if mix > buffers.in_memory_bytes else 0


IN_MEMORY = Buffers(in_memory_bytes=2**62)
"""Every buffer in memory (the behaviour before long soundtracks were mapped from files)."""
