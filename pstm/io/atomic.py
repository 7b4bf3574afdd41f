"""Write to a temporary name, then rename into place: a reader never sees half a file.

The temporary is a hidden sibling ``.<name>.tmp-<host>-<pid>``, so two writers never share
one, and a file with the final name is always complete: a job killed at any moment leaves
at most a temporary, which no rule takes as an output and the next writer of the same path
on this host removes once its process is gone. Data are flushed (``fsync``) before the
rename and the directory entry after it, so a completed output survives a node crash.

A full disk (or a file-size limit) while writing raises :class:`pstm.errors.DiskFullError`
naming the output, and the temporary is removed, so a rerun after freeing space starts clean.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

from pstm.errors import DiskFullError

#: errno values that mean "the storage cannot take more data" (not a bug in pstm).
DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
_TMP_MARK = ".tmp-"


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def _fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_tree(path: Path) -> None:
    """Flush a file, or every file and directory below a directory, to stable storage."""
    if path.is_file():
        _fsync_path(path)
        return
    for p in sorted(path.rglob("*")):
        if p.is_file() or p.is_dir():
            _fsync_path(p)
    _fsync_path(path)


def fsync_dir(path: Path) -> None:
    """Flush a directory's entries (a rename is durable only after this)."""
    with contextlib.suppress(OSError):  # some filesystems refuse fsync on directories
        _fsync_path(path)


def tmp_name(path: Path) -> Path:
    """The temporary sibling this process writes ``path`` to."""
    return path.with_name(f".{path.name}{_TMP_MARK}{socket.gethostname()}-{os.getpid()}")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # alive, owned by someone else
    return True


def remove_stale_tmps(path: Path) -> list[Path]:
    """Delete temporaries of ``path`` left on this host by processes that are gone (a
    killed job). A live process's temporary is kept (its pid may also have been reused:
    keeping is the safe side); other hosts' temporaries are left to those hosts."""
    prefix = f".{path.name}{_TMP_MARK}{socket.gethostname()}-"
    removed = []
    for sibling in path.parent.glob(f".{path.name}{_TMP_MARK}*"):
        pid_text = sibling.name[len(prefix) :] if sibling.name.startswith(prefix) else ""
        if pid_text.isdigit() and int(pid_text) != os.getpid() and not _pid_alive(int(pid_text)):
            with contextlib.suppress(OSError):
                _remove(sibling)
                removed.append(sibling)
    return removed


@contextlib.contextmanager
def atomic_output(path: str | Path, fsync: bool = True) -> Iterator[Path]:
    """Yield a temporary sibling path; on success flush it, rename it to ``path``
    (replacing a previous version) and flush the directory; on any error delete it.
    Works for files and directories."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_tmps(path)
    tmp = tmp_name(path)
    _remove(tmp)
    try:
        yield tmp
        if fsync and tmp.exists():
            fsync_tree(tmp)
        _remove(path)
        os.replace(tmp, path)
        if fsync:
            fsync_dir(path.parent)
    except OSError as exc:
        with contextlib.suppress(OSError):
            _remove(tmp)
        if exc.errno in DISK_FULL_ERRNOS:
            raise DiskFullError(
                f"could not write {path}: {os.strerror(exc.errno)} (the disk or quota is full, "
                "or a file-size limit was hit); nothing partial was kept. Free space on "
                f"{path.parent.resolve()} and run the same command again"
            ) from None
        raise
    except BaseException:
        with contextlib.suppress(OSError):
            _remove(tmp)
        raise
