"""Atomic file output: a reader never sees a half-written file.

Everything is first written to a temporary file in the destination folder, then moved into place with
``os.replace`` (atomic on POSIX within one file system). On error the temporary file is removed. The temporary
file is created like ``open()`` creates a file (mode 0666 less the umask), so the result has ordinary
permissions. A process killed mid-write leaves its temporary file behind; the next write of the same target
removes such leftovers once they are stale (see :func:`remove_stale_temps`).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import socket
import time
import zlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterator

    import anndata as ad
    import pandas as pd


#: A leftover temporary file whose writer cannot be shown dead is removed once untouched this long (seconds).
STALE_AFTER = 24 * 3600

# Temporary files are named ``.<target>.<host tag>-<pid>.<random>.part``: the pid tells whether the writer still
# runs, but only on the host that wrote the file (a shared folder may be written from several cluster nodes).
_HOST_TAG = f"{zlib.crc32(socket.gethostname().encode()):08x}"


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; move it onto ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(path)
    tmp_path = _create_temp(path)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)


def _create_temp(path: Path) -> Path:
    """Create an empty, unique temporary file beside ``path`` with the permissions ``open()`` would give."""
    owner = f"{_HOST_TAG}-{os.getpid()}"
    while True:
        tmp = path.with_name(f".{path.name}.{owner}.{secrets.token_hex(4)}.part")
        try:
            # Mode 0666 lets the kernel apply the umask (and any default ACL) exactly as for open(); mkstemp's
            # 0600 would survive the rename and leave outputs unreadable to the group.
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            return tmp
        except FileExistsError:
            continue


def remove_stale_temps(path: str | os.PathLike) -> list[Path]:
    """Remove leftover temporary files of ``path`` (from writers that were killed); return those removed.

    Only temporary files of this very target are considered. One is stale when it was written on this host by a
    process that no longer runs, or when nobody has written to it for :data:`STALE_AFTER` seconds (files from
    other hosts, whose writers cannot be checked, and files named before the pid was recorded). A file whose
    writer still runs on this host is kept however old it is.
    """
    path = Path(path)
    pattern = re.compile(rf"\.{re.escape(path.name)}\.(?:([0-9a-f]{{8}})-(\d+)\.)?[a-z0-9_]+\.part")
    removed = []
    now = time.time()
    try:
        entries = list(os.scandir(path.parent))
    except OSError:
        return removed
    for entry in entries:
        match = pattern.fullmatch(entry.name)
        if match is None:
            continue
        host, pid = match.groups()
        try:
            if host == _HOST_TAG and _pid_running(int(pid)):
                continue
            if host != _HOST_TAG and now - entry.stat(follow_symlinks=False).st_mtime < STALE_AFTER:
                continue
            if not entry.is_file(follow_symlinks=False):
                continue
            os.unlink(entry.path)
        except OSError:  # removed meanwhile by another process, or not ours to remove: leave it
            continue
        removed.append(Path(entry.path))
    return removed


def _pid_running(pid: int) -> bool:
    if not 0 < pid < 2**31:  # no writer has such a pid (0 would even signal our own process group)
        return False
    try:
        os.kill(pid, 0)  # signal 0: existence check only
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        return True
    return True


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented, key-sorted JSON (stable bytes for equal content)."""
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")


def write_tsv(path: str | os.PathLike, df: pd.DataFrame, *, index: bool = False) -> None:
    """Write a DataFrame as TSV atomically."""
    with atomic_path(path) as tmp:
        df.to_csv(tmp, sep="\t", index=index)


def write_h5ad(path: str | os.PathLike, adata: ad.AnnData, *, compression: str | None = "gzip") -> None:
    """Write an AnnData as h5ad atomically."""
    with atomic_path(path) as tmp:
        adata.write_h5ad(tmp, compression=compression)


def _json_default(obj: Any) -> Any:
    # numpy scalars and arrays appear in metric dicts; JSON needs plain Python.
    import numpy as np

    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
