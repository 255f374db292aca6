"""Write outputs to a temporary file beside the target and rename on success."""

from __future__ import annotations

import contextlib
import errno
import functools
import hashlib
import logging
import os
import re
import shutil
import socket
import stat
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from provenance.core.errors import FoleySealError, InputError, OutputError

_LOW_SPACE_BYTES = 1 << 20
"""Free space under which a failed write is put down to a full device (bytes)."""

_WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG, errno.EISDIR}
"""Errors that can only be about writing, wherever they are raised."""

log = logging.getLogger(__name__)

_OWNER = re.compile(r"\.p(\d+)h([0-9a-f]{8})\.")
"""The owner tag in a working file's name: ``.p<pid>h<host hash>.``"""


@functools.cache
def _host_hash() -> str:
    """8 hex digits naming this machine (a process id means nothing on another one)."""
    return hashlib.sha256(socket.gethostname().encode("utf-8", "replace")).hexdigest()[:8]


def owner_tag() -> str:
    """``.p<pid>h<host hash>.``: put in the name of every working file or folder made beside an
    output, so that a later run can tell one left by a killed process (:func:`sweep_stale`)."""
    return f".p{os.getpid()}h{_host_hash()}."


def _owner_gone(pid: int) -> bool:
    """Whether process ``pid`` of this machine has ended (unknown counts as alive)."""
    if os.name != "posix" or pid <= 0:
        return False  # os.kill(pid, 0) would end the process on Windows
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False  # it exists (another user's) or cannot be asked
    return False


STALE_AFTER_S = 60.0
"""A working file of an ended process is removed only once it has not changed for this long,
seconds: containers with one host name share process ids, not processes."""


def _last_change(entry: os.DirEntry[str]) -> float:
    """When ``entry`` (or, for a folder, anything directly in it) last changed (Unix time)."""
    try:
        latest = entry.stat(follow_symlinks=False).st_mtime
        if entry.is_dir(follow_symlinks=False):
            for inner in os.scandir(entry.path):
                latest = max(latest, inner.stat(follow_symlinks=False).st_mtime)
    except OSError:
        return time.time()  # unknown: treated as changing now
    return latest


def sweep_stale(directory: str | Path, prefix: str) -> list[Path]:
    """Remove the working files and folders named ``prefix...`` in ``directory`` that a process
    of this machine which has since ended left there (killed by SIGKILL or a power cut, nothing
    could clean up), and return them. Best effort: what cannot be removed is left, and working
    files of live processes, or of other machines sharing the folder, are never touched."""
    removed: list[Path] = []
    try:
        entries = [e for e in os.scandir(directory) if e.name.startswith(prefix)]
    except OSError:
        return removed
    now = time.time()
    for entry in entries:
        tag = _OWNER.match(entry.name, len(prefix) - 1)
        if tag is None or tag.group(2) != _host_hash() or not _owner_gone(int(tag.group(1))):
            continue
        if now - _last_change(entry) < STALE_AFTER_S:
            continue  # still changing: another pid namespace on this host name may own it
        try:
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path)
            else:
                os.unlink(entry.path)
        except OSError as exc:
            log.debug("could not remove the stale working file %s: %s", entry.path, exc)
            continue
        removed.append(Path(entry.path))
    if removed:
        log.info("removed %d working file(s) left by ended processes in %s", len(removed), directory)
    return removed


def _umask() -> int:
    """The process umask, read without changing it where Linux allows."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _final_mode(target: Path, mode: int | None) -> int:
    """``mode``, else the replaced file's own mode, else what ``open()`` gives a new file
    (0o666 less the umask): ``mkstemp`` makes 0o600 files, and a published output or manifest
    must stay as readable as any other file the user writes."""
    if mode is not None:
        return mode
    try:
        return stat.S_IMODE(target.stat().st_mode)
    except OSError:
        return 0o666 & ~_umask()


def _device_full(directory: Path) -> bool:
    try:
        return shutil.disk_usage(directory).free < _LOW_SPACE_BYTES
    except OSError:
        return False


def output_error(exc: OSError, target: Path) -> OutputError:
    """The :class:`OutputError` for an OS error met while writing ``target``, naming its folder."""
    directory = target.parent
    code = exc.errno
    if code in (errno.ENOENT, errno.ENOTDIR):
        what = _missing_folder(directory, exc)
    elif code in (errno.EACCES, errno.EPERM):
        what = f"no permission to write in {directory}"
    elif code == errno.EROFS:
        what = f"{directory} is on a read-only file system"
    elif code == errno.EISDIR:
        what = f"{target} is a directory"
    elif code in (errno.ENOSPC, errno.EDQUOT):
        what = f"no space left on the device holding {directory}"
    else:
        what = f"cannot write in {directory}: {exc.strerror or exc}"
    return OutputError(what, path=target)


def _missing_folder(directory: Path, exc: OSError) -> str:
    """What ENOENT/ENOTDIR on a file in ``directory`` means: a missing folder, a file where a
    folder should be, or a folder that exists but makes no new files (``/proc``, ``/sys``)."""
    if directory.is_dir():
        return f"cannot create files in {directory}"  # its ENOENT would say "no such file"
    if directory.exists():
        return f"{directory} is not a folder"
    return f"output folder {directory} does not exist"


def check_writable(target: str | Path) -> None:
    """Raise the :class:`OutputError` that writing ``target`` with :func:`atomic_path` would raise,
    now: before minutes of work, not after. ``target`` must not be a directory, and its folder
    must take a new file (tried: a temporary file is made and removed)."""
    target = Path(target)
    if target.is_dir():
        raise OutputError("is a directory", path=target)
    _check_replaceable(target)
    _try_file_beside(target)


def same_file(a: str | Path, b: str | Path) -> bool:
    """Whether ``a`` and ``b`` are one existing file: the same path, a symlink to it or a hard link
    of it. An output that is its input would replace the original, so writers refuse it."""
    try:
        return os.path.samefile(a, b)
    except OSError:  # either one missing (or out of reach): not one file
        return False


def _check_replaceable(target: Path) -> None:
    """:class:`OutputError` when ``target`` exists and is no regular file: a device (``/dev/null``
    as the output of a run as root), a pipe or a socket would be replaced by the renamed file."""
    try:
        st = os.stat(target)
    except OSError:
        return  # nothing there (or nothing this process may look at: the write will say)
    if not stat.S_ISREG(st.st_mode) and not stat.S_ISDIR(st.st_mode):
        kind = ("a device" if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode)
                else "a pipe" if stat.S_ISFIFO(st.st_mode) else "a socket" if stat.S_ISSOCK(st.st_mode)
                else "not a regular file")
        raise OutputError(f"is {kind}, not a file: an output is written beside it and renamed over "
                          "its path, which would replace it; choose a file name", path=target)


def check_output_folder(folder: str | Path, files: tuple[str, ...] = ()) -> None:
    """Raise now the :class:`OutputError` that making ``folder`` (with its parents) and writing
    ``files`` in it would raise later: a file in the way, or a folder that takes no new files.
    Nothing is left behind."""
    folder = Path(folder)
    existing, missing = folder, None
    while not existing.exists() and existing != existing.parent:
        existing, missing = existing.parent, existing
    if not existing.is_dir():
        raise OutputError("is not a folder", path=existing)
    if missing is not None:
        _try_file_beside(missing)  # where the first missing folder would be made
        return
    for name in files:
        check_writable(folder / name)
    if not files:
        _try_file_beside(folder / "output")


_NAME_MAX_BYTES = 255
"""Longest file name of the usual file systems (ext4, XFS, btrfs, tmpfs, APFS), bytes."""
_MKSTEMP_CHARS = 8
"""Random characters ``tempfile.mkstemp`` puts in a name."""
_OWNER_TAG_MAX_CHARS = len(".p4194304h00000000.")
"""The longest :func:`owner_tag` (Linux's largest pid): a stem must not depend on this process's
pid, or a later run, whose pid has more or fewer digits, would look for another stem's leftovers."""


_WORKING_NAME = re.compile(r"^\.(?P<stem>.+)\.p\d+h[0-9a-f]{8}\.[a-z0-9_]{%d}\.tmp(?:\.[^.]*)?$" % _MKSTEMP_CHARS)
"""A working file's name: ``.STEM.p<pid>h<host>.XXXXXXXX.tmp.EXT``."""


def working_stem(target: Path) -> str:
    """What the working files beside ``target`` are named after: its name, or, for a name too long
    to leave room for a working name (``.NAME.p<pid>h<host>.XXXXXXXX.tmp.EXT``, one dot more when
    nested), its start and a hash of the whole name. A legal 240-byte output name was refused as
    "File name too long". A working file's own working files (a writer inside another's) are named
    ``..STEM``, so that the sweep of ``target``'s leftovers finds them too."""
    name = target.name
    nested = _WORKING_NAME.match(name)
    if nested:
        return "." + nested.group("stem")
    extra = 1 + _OWNER_TAG_MAX_CHARS + _MKSTEMP_CHARS + len(".tmp") + len(os.fsencode(target.suffix))
    budget = _NAME_MAX_BYTES - extra - 1  # the nested one's extra dot
    if len(os.fsencode(name)) <= budget:
        return name
    digest = hashlib.sha256(os.fsencode(name)).hexdigest()[:8]
    kept, size = [], 0
    for char in name:  # whole characters: a cut UTF-8 sequence would not decode
        size += len(os.fsencode(char))
        if size > budget - len(digest) - 1:
            break
        kept.append(char)
    return "".join(kept) + "~" + digest


def _try_file_beside(target: Path) -> None:
    """Make and remove a temporary file in ``target``'s folder; a failure is the
    :class:`OutputError` writing ``target`` would meet."""
    try:
        fd, name = tempfile.mkstemp(prefix=f".{working_stem(target)}{owner_tag()}", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        raise output_error(exc, target) from exc
    os.close(fd)
    os.unlink(name)


@contextlib.contextmanager
def writing_beside(target: str | Path) -> Iterator[None]:
    """Report the block's failures to write next to ``target`` as :class:`OutputError` naming
    ``target``: OS errors that only writing raises (no space, read-only, file too big), and any
    error at all once the device is full (encoders and c2pa turn a short write into their own
    vaguer errors, which would otherwise blame the input)."""
    target = Path(target)
    directory = target.parent
    try:
        yield
    except OutputError:
        raise
    except OSError as exc:
        if exc.errno in _WRITE_ERRNOS or _device_full(directory):
            raise output_error(exc, target) from exc
        raise
    except (FoleySealError, RuntimeError, ValueError) as exc:
        if _device_full(directory):
            raise OutputError(f"no space left on the device holding {directory}", path=target) from exc
        raise


@contextlib.contextmanager
def atomic_path(target: str | Path, *, mode: int | None = None) -> Iterator[Path]:
    """Yield a temporary path in ``target``'s directory; rename it onto ``target`` on success.

    On any exception the temporary file is removed and ``target`` is left as it was,
    so a failed run never leaves a half-written output. The result gets ``mode`` if given,
    else the mode of the file it replaces, else the usual mode of a new file. A folder that is
    missing, read-only or full raises :class:`OutputError` naming ``target``.
    """
    target = Path(target)
    directory = target.parent
    suffix = "".join(target.suffixes[-1:])
    _check_replaceable(target)
    if len(os.fsencode(target.name)) > _NAME_MAX_BYTES:
        raise OutputError(f"the name is {len(os.fsencode(target.name))} bytes long; file systems take at most "
                          f"{_NAME_MAX_BYTES}", path=target)
    stem = working_stem(target)
    sweep_stale(directory, f".{stem}.")
    # a writer that publishes through a temporary path of its own, inside another atomic_path
    # (embed_file's output, then the audio writer's), leaves "..NAME..." after a SIGKILL, whose
    # own target (the outer temporary name) is never written again
    sweep_stale(directory, f"..{stem}.")
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{stem}{owner_tag()}", suffix=f".tmp{suffix}", dir=directory)
    except OSError as exc:
        raise output_error(exc, target) from exc
    tmp = Path(tmp_name)
    # from here on a stop (Ctrl-C, SIGTERM) at any point removes the file just made: one that
    # arrived before the try, while the mode was worked out, left it behind
    try:
        os.close(fd)
        final_mode = _final_mode(target, mode)
        with writing_beside(target):
            if mode is not None:
                os.chmod(tmp, mode)
            yield tmp
            os.chmod(tmp, final_mode)
            os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def replace_keeping_mode(working: Path, target: Path) -> None:
    """Rename the finished ``working`` file onto ``target`` (same file system) with the mode
    :func:`atomic_path` gives: the replaced file's, else a new file's usual mode. A private
    (0600) output written again came back readable by everyone."""
    os.chmod(working, _final_mode(target, None))
    os.replace(working, target)


def atomic_write_bytes(target: str | Path, data: bytes, *, mode: int | None = None) -> None:
    """Write ``data`` to ``target`` atomically (optionally with a file mode, e.g. 0o600)."""
    with atomic_path(target, mode=mode) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())


@contextlib.contextmanager
def reported_as(working: str | Path, target: str | Path) -> Iterator[None]:
    """Errors about ``working`` (a temporary file standing in for ``target``, in its folder or a
    private folder inside it) name ``target`` instead: "OUTPUT.mp3: MP3 carries at most 2
    channels", not a path the user never gave."""
    working, target = Path(working), Path(target)
    try:
        yield
    except (InputError, OutputError) as exc:  # FormatError included: what a writer raises about its file
        if exc.path != str(working):
            raise
        # The working file's folder is, or is inside, the target's: a fault of one is a fault of the other.
        message = exc.message.replace(str(working.parent), str(target.parent))
        raise type(exc)(message, path=target) from exc
