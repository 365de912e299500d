"""Verified, resumable downloads and safe archive extraction.

:func:`download` streams a URL into ``<dest>.part`` beside the destination, retries transient failures with
exponential backoff (resuming with an HTTP ``Range`` request when the server supports it), checks that the bytes
have the format the file name promises (not an HTML login or error page served with status 200), the size and the
SHA-256 digest, and only then moves the file onto ``dest`` with :func:`os.replace`. A reader therefore never sees
a half-downloaded file, and no ``.part`` file is left behind when the download finally fails.

:func:`extract_archive` unpacks ``.tar``, ``.tar.gz``/``.tgz``, ``.zip`` and single-file ``.gz`` archives into a
temporary folder first and renames it into place, refusing members that would land outside the destination and
links that could redirect later members there (our own check; it does not rely on Python's tar filters).
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import logging
import os
import posixpath
import secrets
import shutil
import stat
import tarfile
import time
import urllib.error
import urllib.request
import zipfile
import zlib
from pathlib import Path, PurePosixPath

from scsynth_core.atomic import atomic_path
from scsynth_core.errors import DataError, DownloadError

logger = logging.getLogger(__name__)

#: Bytes read per network or disk chunk.
CHUNK_SIZE = 1 << 20

#: 4xx statuses that are worth retrying (request timeout, too many requests); every other 4xx fails at once.
RETRYABLE_4XX = frozenset({408, 429})

_USER_AGENT = "scsynth-downloader/0.1 (+urllib)"

_GZIP = ("gzip", [(0, b"\x1f\x8b")])
_BZIP2 = ("bzip2", [(0, b"BZh")])
_XZ = ("xz", [(0, b"\xfd7zXZ\x00")])
# A zip starts with a local file header, or (empty) with the end-of-central-directory record.
_ZIP = ("zip", [(0, b"PK\x03\x04"), (0, b"PK\x05\x06")])
# HDF5 allows a user block before the superblock: 512 bytes or a larger power of two.
_HDF5 = ("HDF5", [(offset, b"\x89HDF\r\n\x1a\n") for offset in (0, 512, 1024, 2048)])

#: What a downloaded file must start with, by the file name's last suffix: (format name, [(offset, bytes), ...]).
#: Other names (text tables, ...) are only checked not to be an HTML page.
SIGNATURES: dict[str, tuple[str, list[tuple[int, bytes]]]] = {
    ".gz": _GZIP,
    ".tgz": _GZIP,
    ".bz2": _BZIP2,
    ".tbz2": _BZIP2,
    ".xz": _XZ,
    ".txz": _XZ,
    ".zip": _ZIP,
    ".npz": _ZIP,
    ".tar": ("tar", [(257, b"ustar")]),
    ".h5": _HDF5,
    ".h5ad": _HDF5,
    ".hdf5": _HDF5,
    ".loom": _HDF5,
}


class _Transient(Exception):
    """A failure worth another attempt (connection error, 5xx, truncated body)."""


def sha256sum(path: str | os.PathLike) -> str:
    """SHA-256 hex digest of a file, read in chunks.

    Parameters
    ----------
    path
        File to hash.

    Returns
    -------
    The lower-case hex digest.
    """
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK_SIZE):
            digest.update(chunk)
    return digest.hexdigest()


def download(
    url: str,
    dest: str | os.PathLike,
    *,
    sha256: str | None = None,
    size: int | None = None,
    retries: int = 3,
    backoff: float = 1.0,
    timeout: float = 60,
    progress: bool = True,
) -> str:
    """Download ``url`` to ``dest`` atomically and return the file's SHA-256.

    Parameters
    ----------
    url
        ``http://`` or ``https://`` address (redirects are followed).
    dest
        Destination file. If it already exists and matches ``sha256`` (or no ``sha256`` is given and its size
        matches ``size`` when given), nothing is downloaded.
    sha256
        Expected hex digest; on a mismatch the downloaded bytes are deleted and :class:`DownloadError` is raised.
        Whether pinned or not, the bytes must match the format of ``dest``'s suffix (see :data:`SIGNATURES`) and
        must not be an HTML page, else they are deleted and :class:`DownloadError` names what came back.
    size
        Expected size in bytes, checked before the digest.
    retries
        Further attempts after the first one for connection errors, 5xx/408/429 answers and truncated bodies.
        Other 4xx answers fail at once.
    backoff
        Seconds to wait before the first retry; doubled for every further retry.
    timeout
        Socket timeout in seconds for connecting and for each read.
    progress
        Show a tqdm progress bar on stderr.

    Returns
    -------
    The lower-case SHA-256 hex digest of ``dest``.

    Raises
    ------
    DownloadError
        Failure after all retries (naming the URL and the last cause), a non-retryable HTTP status, bytes of
        the wrong format (e.g. an HTML page), or a size or checksum mismatch.
    """
    dest = Path(dest)
    expected = sha256.lower() if sha256 else None
    if dest.is_file():
        digest = _existing_digest(dest, expected, size)
        if digest is not None:
            logger.info("%s: already present, not downloading again", dest)
            return digest
        logger.warning("%s: present but does not match the registry; downloading again", dest)

    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    # One fixed name per destination, so killed runs cannot pile up copies; a leftover's origin is unknown (another
    # URL, a server that changed the file), so it is discarded rather than resumed.
    part.unlink(missing_ok=True)
    try:
        content_type = _fetch_with_retries(
            url, part, retries=retries, backoff=backoff, timeout=timeout, progress=progress
        )
        if (problem := _format_problem(part, dest.name, content_type)) is not None:
            raise DownloadError(f"{url}: {problem}; file removed")
        actual_size = part.stat().st_size
        if size is not None and actual_size != size:
            raise DownloadError(f"{url}: size mismatch (expected {size} bytes, got {actual_size}); file removed")
        digest = sha256sum(part)
        if expected is not None and digest != expected:
            raise DownloadError(f"{url}: sha256 mismatch (expected {expected}, got {digest}); file removed")
        os.replace(part, dest)
    finally:
        part.unlink(missing_ok=True)
    return digest


def _existing_digest(dest: Path, expected: str | None, size: int | None) -> str | None:
    """The digest of an existing ``dest`` if it matches the expected format, size and digest, else None."""
    if size is not None and dest.stat().st_size != size:
        return None
    if _format_problem(dest, dest.name, None) is not None:  # e.g. an HTML page kept by an older version
        return None
    digest = sha256sum(dest)
    return digest if expected is None or digest == expected else None


def _format_problem(path: Path, name: str, content_type: str | None) -> str | None:
    """Why ``path`` is not the file ``name`` promises (one line naming what came back), or None if it looks right."""
    with open(path, "rb") as handle:
        head = handle.read(4096)
        size = os.fstat(handle.fileno()).st_size
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    html = text.startswith((b"<!doctype html", b"<html")) or (media_type == "text/html" and text.startswith(b"<"))
    kind, signatures = SIGNATURES.get(Path(name).suffix.lower(), ("data", []))
    if not html and (not signatures or any(head[o : o + len(magic)] == magic for o, magic in signatures)):
        return None
    got = "an HTML page" if html else "something else"
    served = f"Content-Type {content_type}, " if content_type else ""
    return f"expected a {kind} file for '{name}' but got {got} ({served}{size} bytes starting {head[:40]!r})"


def _fetch_with_retries(
    url: str, part: Path, *, retries: int, backoff: float, timeout: float, progress: bool
) -> str | None:
    """Fetch ``url`` into ``part``; return the answer's Content-Type header."""
    attempts = max(0, int(retries)) + 1
    last_cause = "no attempt made"
    for attempt in range(attempts):
        if attempt:
            delay = backoff * 2 ** (attempt - 1)
            logger.warning(
                "%s: attempt %d/%d failed (%s); retrying in %.1f s", url, attempt, attempts, last_cause, delay
            )
            time.sleep(delay)
        try:
            return _fetch_once(url, part, timeout=timeout, progress=progress)
        except _Transient as exc:
            last_cause = str(exc)
    raise DownloadError(f"{url}: download failed after {attempts} attempt(s) (last error: {last_cause})")


def _fetch_once(url: str, part: Path, *, timeout: float, progress: bool) -> str | None:
    """One HTTP request; appends to ``part`` when the server honours a Range request, else rewrites it.

    Returns the answer's Content-Type header.
    """
    offset = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": _USER_AGENT}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            resumed = offset > 0 and response.status == 206 and _range_start(response) == offset
            if response.status == 206 and not resumed:  # a range we did not ask for: start over
                part.unlink(missing_ok=True)
                raise _Transient(f"unexpected partial answer (Content-Range {response.headers.get('Content-Range')!r})")
            if not resumed:
                offset = 0
            length = response.headers.get("Content-Length")
            length = int(length) if length and length.isdigit() else None
            written = _stream(response, part, append=resumed, offset=offset, length=length, progress=progress)
            content_type = response.headers.get("Content-Type")
    except urllib.error.HTTPError as exc:
        exc.close()  # the error carries the open response; release its socket
        if exc.code == 416 and offset:  # our Range lies beyond the file: start over
            part.unlink(missing_ok=True)
            raise _Transient("HTTP 416 on resume; restarting from zero") from None
        if 400 <= exc.code < 500 and exc.code not in RETRYABLE_4XX:
            raise DownloadError(f"{url}: HTTP {exc.code} {exc.reason} (not retried)") from None
        raise _Transient(f"HTTP {exc.code} {exc.reason}") from None
    except urllib.error.URLError as exc:
        raise _Transient(f"connection error: {exc.reason}") from None
    except (http.client.HTTPException, OSError) as exc:  # resets, timeouts, TLS errors mid-stream
        raise _Transient(f"{type(exc).__name__}: {exc}") from None
    if length is not None and written != length:
        raise _Transient(f"truncated body ({written} of {length} bytes received)")
    return content_type


def _range_start(response) -> int | None:
    """First byte position of a ``Content-Range: bytes a-b/n`` header, or None."""
    value = response.headers.get("Content-Range", "")
    try:
        unit, spec = value.split(" ", 1)
        return int(spec.split("-", 1)[0]) if unit == "bytes" else None
    except ValueError:
        return None


def _stream(response, part: Path, *, append: bool, offset: int, length: int | None, progress: bool) -> int:
    from tqdm.auto import tqdm

    total = None if length is None else offset + length
    written = 0
    with (
        open(part, "ab" if append else "wb") as out,
        tqdm(total=total, initial=offset, unit="B", unit_scale=True, desc=part.name[:-5], disable=not progress) as bar,
    ):
        while chunk := response.read(CHUNK_SIZE):
            out.write(chunk)
            written += len(chunk)
            bar.update(len(chunk))
    return written


# --------------------------------------------------------------------------------------------- archives

_TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")


def extract_archive(path: str | os.PathLike, dest_dir: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Unpack an archive safely and atomically.

    Parameters
    ----------
    path
        A ``.tar``, ``.tar.gz``/``.tgz`` (also ``.bz2``/``.xz`` variants), ``.zip`` or single-file ``.gz``.
    dest_dir
        Folder to create. Tar and zip contents are placed inside it; a single-file ``.gz`` is decompressed to
        ``dest_dir/<name without .gz>``.
    overwrite
        If the target already exists it is kept as is (extraction is atomic, so an existing target is
        complete) unless ``overwrite`` is true, in which case it is replaced.

    Returns
    -------
    ``dest_dir`` for tar and zip archives, the decompressed file for ``.gz``.

    Raises
    ------
    DataError
        Missing or corrupt archive, unknown archive type, or a member that could be written outside ``dest_dir``
        (absolute path, ``..``, a symbolic link, a hard link to anything but an earlier file of the archive, a
        device file). Data archives have no use for symbolic links, and refusing them is what makes the
        path check sound: a link member (``a -> .``, ``a/b -> ..``) could otherwise carry a later member
        ``a/b/file`` outside although every name looks harmless.
    """
    path = Path(path)
    dest_dir = Path(dest_dir)
    if not path.is_file():
        raise DataError(f"{path}: archive not found")
    name = path.name.lower()
    if name.endswith(_TAR_SUFFIXES):
        return _extract_folder(path, dest_dir, _extract_tar, overwrite=overwrite)
    if name.endswith(".zip"):
        return _extract_folder(path, dest_dir, _extract_zip, overwrite=overwrite)
    if name.endswith(".gz"):
        return _gunzip(path, dest_dir / path.name[: -len(".gz")], overwrite=overwrite)
    raise DataError(f"{path}: unknown archive type (expected .tar, .tar.gz, .tgz, .zip or .gz)")


def _extract_folder(path: Path, dest_dir: Path, extract, *, overwrite: bool) -> Path:
    if dest_dir.exists() and not overwrite:
        return dest_dir
    dest_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest_dir.with_name(f".{dest_dir.name}.{secrets.token_hex(8)}.part")
    tmp.mkdir(mode=0o777)  # the umask applies as for any mkdir (mkdtemp's 0700 would survive the rename)
    try:
        extract(path, tmp)
        if dest_dir.exists():
            old = dest_dir.with_name(f".{dest_dir.name}.old-{os.getpid()}")
            os.replace(dest_dir, old)
            os.replace(tmp, dest_dir)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, dest_dir)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return dest_dir


def _check_member(archive: Path, member: str) -> str:
    """Refuse an absolute or ``..`` path; return the member's normalised relative path.

    With symbolic links refused, no directory inside the destination is a link, so a name free of ``..`` and
    not absolute cannot resolve outside it.
    """
    pure = PurePosixPath(member)
    if pure.is_absolute() or member.startswith(("/", "\\")) or ".." in pure.parts:
        raise DataError(f"{archive}: member '{member}' would be written outside the destination; refusing to extract")
    return posixpath.normpath(member)


def _extract_tar(path: Path, root: Path) -> None:
    try:
        with tarfile.open(path, "r:*") as tar:
            members = tar.getmembers()
            files: set[str] = set()  # regular files seen so far: the only allowed hard-link targets
            for m in members:
                if m.issym():
                    raise DataError(
                        f"{path}: member '{m.name}' is a symbolic link (-> '{m.linkname}'); archives "
                        "with symbolic links are not extracted (a link can carry later members outside "
                        "the destination)"
                    )
                if not (m.isfile() or m.isdir() or m.islnk()):
                    raise DataError(f"{path}: member '{m.name}' is a device or special file; refusing to extract")
                name = _check_member(path, m.name)
                if m.islnk() and _check_member(path, m.linkname) not in files:
                    raise DataError(
                        f"{path}: hard link '{m.name}' -> '{m.linkname}' does not point to an earlier "
                        "file of the archive; refusing to extract"
                    )
                if m.isfile() or m.islnk():
                    files.add(name)
            # Our checks above are complete on their own; the stdlib filter (Python >= 3.10.12) adds defence in depth.
            kwargs = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
            tar.extractall(root, members=members, **kwargs)
    except DataError:
        raise
    except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
        raise DataError(f"{path}: not a readable tar archive ({type(exc).__name__}: {exc})") from None


def _extract_zip(path: Path, root: Path) -> None:
    try:
        with zipfile.ZipFile(path) as zf:
            for info in zf.infolist():
                _check_member(path, info.filename)
                mode = info.external_attr >> 16
                if stat.S_ISLNK(mode):
                    raise DataError(f"{path}: member '{info.filename}' is a symbolic link; refusing to extract")
            zf.extractall(root)
    except DataError:
        raise
    except (zipfile.BadZipFile, EOFError, OSError, zlib.error) as exc:
        raise DataError(f"{path}: not a readable zip archive ({type(exc).__name__}: {exc})") from None


def _gunzip(path: Path, out: Path, *, overwrite: bool) -> Path:
    if out.exists() and not overwrite:
        return out
    try:
        with atomic_path(out) as tmp, gzip.open(path, "rb") as src, open(tmp, "wb") as dst:
            shutil.copyfileobj(src, dst, CHUNK_SIZE)
    except (gzip.BadGzipFile, EOFError, OSError, zlib.error) as exc:
        raise DataError(f"{path}: not a readable gzip file ({type(exc).__name__}: {exc})") from None
    return out
