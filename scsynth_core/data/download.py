"""Verified, resumable downloads and safe archive extraction.

:func:`download` streams a URL into ``<dest>.part`` beside the destination, retries transient failures with
exponential backoff (resuming with an HTTP ``Range`` request when the server supports it), checks the size and
SHA-256 digest, and only then moves the file onto ``dest`` with :func:`os.replace`. A reader therefore never sees
a half-downloaded file, and no ``.part`` file is left behind when the download finally fails.

:func:`extract_archive` unpacks ``.tar``, ``.tar.gz``/``.tgz``, ``.zip`` and single-file ``.gz`` archives into a
temporary folder first and renames it into place, refusing members that would land outside the destination.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import logging
import os
import shutil
import stat
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
import zlib
from pathlib import Path, PurePosixPath

from scsynth_core._io import atomic_path
from scsynth_core.errors import DataError, DownloadError

logger = logging.getLogger(__name__)

#: Bytes read per network or disk chunk.
CHUNK_SIZE = 1 << 20

#: 4xx statuses that are worth retrying (request timeout, too many requests); every other 4xx fails at once.
RETRYABLE_4XX = frozenset({408, 429})

_USER_AGENT = "scsynth-downloader/0.1 (+urllib)"


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
        Failure after all retries (naming the URL and the last cause), a non-retryable HTTP status, or a size or
        checksum mismatch.
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
    part.unlink(missing_ok=True)  # a leftover from a killed process: its origin is unknown, start clean
    try:
        _fetch_with_retries(url, part, retries=retries, backoff=backoff, timeout=timeout, progress=progress)
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
    """The digest of an existing ``dest`` if it matches the expected size and digest, else None."""
    if size is not None and dest.stat().st_size != size:
        return None
    digest = sha256sum(dest)
    return digest if expected is None or digest == expected else None


def _fetch_with_retries(url: str, part: Path, *, retries: int, backoff: float, timeout: float, progress: bool) -> None:
    attempts = max(0, int(retries)) + 1
    last_cause = "no attempt made"
    for attempt in range(attempts):
        if attempt:
            delay = backoff * 2 ** (attempt - 1)
            logger.warning("%s: attempt %d/%d failed (%s); retrying in %.1f s", url, attempt, attempts, last_cause, delay)
            time.sleep(delay)
        try:
            _fetch_once(url, part, timeout=timeout, progress=progress)
            return
        except _Transient as exc:
            last_cause = str(exc)
    raise DownloadError(f"{url}: download failed after {attempts} attempt(s) (last error: {last_cause})")


def _fetch_once(url: str, part: Path, *, timeout: float, progress: bool) -> None:
    """One HTTP request; appends to ``part`` when the server honours a Range request, else rewrites it."""
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
        Missing or corrupt archive, unknown archive type, or a member that would be written outside
        ``dest_dir`` (absolute path, ``..``, a link pointing outside, a device file).
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
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest_dir.name}.", suffix=".part", dir=dest_dir.parent))
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


def _check_member(archive: Path, root: Path, member: str, *, link: str | None = None, hard: bool = False) -> None:
    """Refuse a member whose path (or link target) resolves outside ``root``."""
    pure = PurePosixPath(member)
    if pure.is_absolute() or member.startswith(("/", "\\")) or ".." in pure.parts:
        raise DataError(f"{archive}: member '{member}' would be written outside the destination; refusing to extract")
    target = root / pure
    if link is not None:
        link_path = PurePosixPath(link)
        if link_path.is_absolute():
            raise DataError(f"{archive}: link '{member}' -> '{link}' points outside the destination; refusing")
        target = root / link_path if hard else target.parent / link_path
    resolved = Path(os.path.normpath(target))
    if resolved != root and root not in resolved.parents:
        raise DataError(f"{archive}: member '{member}' would be written outside the destination; refusing to extract")


def _extract_tar(path: Path, root: Path) -> None:
    try:
        with tarfile.open(path, "r:*") as tar:
            members = tar.getmembers()
            for m in members:
                if not (m.isfile() or m.isdir() or m.issym() or m.islnk()):
                    raise DataError(f"{path}: member '{m.name}' is a device or special file; refusing to extract")
                _check_member(path, root, m.name, link=m.linkname if (m.issym() or m.islnk()) else None, hard=m.islnk())
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
                _check_member(path, root, info.filename)
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
