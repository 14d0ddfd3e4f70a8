"""Files written safely: to a temporary name beside the target, then renamed into place.

A reader never sees half a file (an interrupted write leaves only a hidden ``.*.part``),
and the file gets the permissions any new file of this user would get (the umask's),
so a cache one user prepared on a lab machine is readable by the next. ``tempfile.mkstemp``
alone creates files with mode 0600.
"""
from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Callable


def umask_mode(base: int = 0o666) -> int:
    """The mode a newly created file gets under the current umask (e.g. 0o644)."""
    mask = os.umask(0)
    os.umask(mask)
    return base & ~mask


def atomic_write(path: Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp)`` to fill a temporary file beside ``path``, then rename it to ``path``.

    The temporary file is removed if ``write`` fails or is interrupted; a full disk
    becomes an ``OSError`` that names the folder and the free space.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, umask_mode())
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if _disk_full(exc):
            free = shutil.disk_usage(path.parent).free
            raise OSError(f"the disk holding {path.parent} is full ({free / 2**20:,.0f} MiB "
                          f"free) while writing {path.name}: free some space, or point "
                          "CNNBOOK_DATA_DIR at a folder on a larger disk") from exc
        raise
    return path


def atomic_copy(src: Path, dst: Path) -> Path:
    """Copy ``src`` to ``dst`` through a temporary name: readers never see half a file."""
    return atomic_write(dst, lambda tmp: shutil.copyfile(src, tmp))


def _disk_full(exc: BaseException) -> bool:
    import errno

    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    # torch.save reports a full disk as a RuntimeError from its zip writer
    return isinstance(exc, RuntimeError) and ("unexpected pos" in str(exc)
                                              or "No space left" in str(exc))


def remove_stale_parts(folder: Path, older_than_s: float = 3600.0) -> list[Path]:
    """Delete hidden ``.*.part`` files left in ``folder`` by killed runs more than an hour ago.

    A younger one may belong to a run still writing it, so it is left alone.
    """
    removed = []
    if not folder.is_dir():
        return removed
    now = time.time()
    for part in folder.glob(".*.part"):
        try:
            if part.is_file() and now - part.stat().st_mtime > older_than_s:
                part.unlink()
                removed.append(part)
        except OSError:
            continue  # another run removed it, or we may not: not our business here
    return removed
