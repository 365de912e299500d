"""Downloads against a loopback HTTP server, and archive extraction."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import socket
import tarfile
import zipfile

import h5py
import pytest

from http_fixtures import serve
from scsynth_core.data.download import download, extract_archive, sha256sum
from scsynth_core.errors import DataError, DownloadError

pytestmark = pytest.mark.network

BODY = bytes(range(256)) * 1200 + b"tail"  # 307,204 bytes, not a multiple of the chunk size
BODY_SHA = hashlib.sha256(BODY).hexdigest()


@pytest.fixture
def http_server():
    """A loopback file server (see tests/http_fixtures.py), stopped after the test."""
    with serve() as server:
        yield server


def leftovers(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_sha256sum_known_answer(tmp_path):
    path = tmp_path / "abc.txt"
    path.write_bytes(b"abc")
    assert sha256sum(path) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_download_success_verifies_sha256(http_server, tmp_path):
    url = http_server.add("/data/file.bin", BODY)
    dest = tmp_path / "out" / "file.bin"
    digest = download(url, dest, sha256=BODY_SHA.upper(), size=len(BODY), progress=False)
    assert digest == BODY_SHA
    assert dest.read_bytes() == BODY
    assert leftovers(dest.parent) == ["file.bin"]


def test_wrong_checksum_leaves_nothing(http_server, tmp_path):
    url = http_server.add("/file.bin", BODY)
    dest = tmp_path / "file.bin"
    with pytest.raises(DownloadError) as err:
        download(url, dest, sha256="0" * 64, progress=False)
    message = str(err.value)
    assert url in message and "0" * 64 in message and BODY_SHA in message
    assert "\n" not in message
    assert leftovers(tmp_path) == []


def test_size_mismatch_leaves_nothing(http_server, tmp_path):
    url = http_server.add("/file.bin", BODY)
    with pytest.raises(DownloadError, match="size mismatch"):
        download(url, tmp_path / "file.bin", size=len(BODY) + 1, progress=False)
    assert leftovers(tmp_path) == []


def test_truncated_body_is_resumed_with_range(http_server, tmp_path):
    url = http_server.add("/file.bin", BODY, faults=["truncate"])
    dest = tmp_path / "file.bin"
    assert download(url, dest, sha256=BODY_SHA, backoff=0, progress=False) == BODY_SHA
    assert dest.read_bytes() == BODY
    first, second = http_server.requests_for("/file.bin")
    assert first.range is None
    assert second.range == f"bytes={len(BODY) // 2}-"
    assert leftovers(tmp_path) == ["file.bin"]


def test_truncated_body_restarts_when_range_is_ignored(http_server, tmp_path):
    url = http_server.add("/file.bin", BODY, faults=["truncate"], honour_range=False)
    dest = tmp_path / "file.bin"
    assert download(url, dest, sha256=BODY_SHA, backoff=0, progress=False) == BODY_SHA
    assert dest.read_bytes() == BODY  # not the first half twice
    assert [r.range for r in http_server.requests_for("/file.bin")] == [None, f"bytes={len(BODY) // 2}-"]


def test_server_error_is_retried(http_server, tmp_path):
    url = http_server.add("/file.bin", BODY, faults=["500"])
    assert download(url, tmp_path / "file.bin", sha256=BODY_SHA, backoff=0, progress=False) == BODY_SHA
    assert len(http_server.requests_for("/file.bin")) == 2


def test_not_found_fails_at_once(http_server, tmp_path):
    url = http_server.add("/file.bin", BODY, faults=["404"] * 5)
    with pytest.raises(DownloadError, match="HTTP 404") as err:
        download(url, tmp_path / "file.bin", retries=3, backoff=0, progress=False)
    assert url in str(err.value)
    assert len(http_server.requests_for("/file.bin")) == 1
    assert leftovers(tmp_path) == []


def test_gives_up_after_retries_naming_the_last_cause(http_server, tmp_path):
    url = http_server.add("/file.bin", BODY, faults=["500"] * 10)
    with pytest.raises(DownloadError, match=r"after 3 attempt\(s\).*HTTP 500") as err:
        download(url, tmp_path / "file.bin", retries=2, backoff=0, progress=False)
    assert url in str(err.value)
    assert len(http_server.requests_for("/file.bin")) == 3
    assert leftovers(tmp_path) == []


def test_connection_refused_is_a_download_error(tmp_path):
    with socket.socket() as sock:  # a port nobody listens on once closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/file.bin"
    with pytest.raises(DownloadError, match="connection error") as err:
        download(url, tmp_path / "file.bin", retries=1, backoff=0, timeout=5, progress=False)
    assert url in str(err.value)
    assert leftovers(tmp_path) == []


def test_present_file_is_not_downloaded_again(http_server, tmp_path):
    url = http_server.add("/file.bin", BODY)
    dest = tmp_path / "file.bin"
    download(url, dest, sha256=BODY_SHA, progress=False)
    http_server.add("/file.bin", b"changed", faults=["404"])  # any new request would fail
    assert download(url, dest, sha256=BODY_SHA, progress=False) == BODY_SHA
    assert download(url, dest, progress=False) == BODY_SHA  # nothing pinned: present is enough
    assert len(http_server.requests_for("/file.bin")) == 1


def test_present_file_with_wrong_digest_is_replaced(http_server, tmp_path):
    url = http_server.add("/file.bin", BODY)
    dest = tmp_path / "file.bin"
    dest.write_bytes(b"stale")
    assert download(url, dest, sha256=BODY_SHA, progress=False) == BODY_SHA
    assert dest.read_bytes() == BODY


def test_leftover_part_file_of_a_killed_download_is_discarded(http_server, tmp_path):
    url = http_server.add("/file.bin", BODY)
    dest = tmp_path / "file.bin"
    (tmp_path / "file.bin.part").write_bytes(b"bytes from a killed run")
    assert download(url, dest, sha256=BODY_SHA, progress=False) == BODY_SHA
    assert leftovers(tmp_path) == ["file.bin"]  # one fixed part name per file: nothing accumulates
    assert [r.range for r in http_server.requests_for("/file.bin")] == [None]  # not resumed from unknown bytes


LOGIN_PAGE = b"<!DOCTYPE html>\n<html><head><title>Sign in</title></head><body>Please log in</body></html>\n"


@pytest.mark.parametrize("filename", ["matrix.tar.gz", "FACS.zip", "neurons.h5", "annotations_facs.csv"])
def test_html_page_is_refused_and_not_kept(http_server, tmp_path, filename):
    url = http_server.add(f"/{filename}", LOGIN_PAGE, content_type="text/html; charset=utf-8")
    dest = tmp_path / filename
    with pytest.raises(DownloadError, match="got an HTML page") as err:
        download(url, dest, retries=2, backoff=0, progress=False)
    message = str(err.value)
    assert url in message and "text/html" in message and "<!DOCTYPE html>" in message and "\n" not in message
    assert leftovers(tmp_path) == []
    assert len(http_server.requests_for(f"/{filename}")) == 1  # a wrong answer, not a transient failure


def test_html_page_without_content_type_is_refused(http_server, tmp_path):
    url = http_server.add("/table.tsv", b"\n  <html><body>Service unavailable</body></html>")
    with pytest.raises(DownloadError, match="expected a data file for 'table.tsv' but got an HTML page"):
        download(url, tmp_path / "table.tsv", progress=False)
    assert leftovers(tmp_path) == []


def test_bytes_of_another_format_are_refused(http_server, tmp_path):
    url = http_server.add("/counts.txt.gz", b'{"error": "quota exceeded"}', content_type="application/json")
    with pytest.raises(DownloadError, match=r"expected a gzip file for 'counts.txt.gz' but got something else") as err:
        download(url, tmp_path / "counts.txt.gz", progress=False)
    assert "application/json" in str(err.value) and "quota exceeded" in str(err.value)
    assert leftovers(tmp_path) == []


def test_files_of_the_expected_format_are_accepted(http_server, tmp_path):
    served = tmp_path / "served"
    served.mkdir()
    with h5py.File(served / "x.h5ad", "w") as f:
        f["X"] = [1, 2, 3]
    with zipfile.ZipFile(served / "x.zip", "w") as zf:
        zf.writestr("a.txt", "a")
    make_tar(served / "x.tar", {"a.txt": b"a"}, mode="w")
    bodies = {
        "x.h5ad": (served / "x.h5ad").read_bytes(),
        "x.zip": (served / "x.zip").read_bytes(),
        "x.tar": (served / "x.tar").read_bytes(),
        "x.tsv.gz": gzip.compress(b"a\tb\n"),
        "x.csv": b"a,b\n1,2\n",
    }
    out = tmp_path / "out"
    for name, body in bodies.items():
        url = http_server.add(f"/{name}", body, content_type="application/octet-stream")
        download(url, out / name, progress=False)
        assert (out / name).read_bytes() == body
    assert leftovers(out) == sorted(bodies)


def test_html_page_kept_by_an_older_version_is_downloaded_again(http_server, tmp_path):
    dest = tmp_path / "FACS.zip"
    dest.write_bytes(LOGIN_PAGE)  # recorded as done before format checks existed
    body = io.BytesIO()
    with zipfile.ZipFile(body, "w") as zf:
        zf.writestr("FACS/Heart-counts.csv", "gene,cell1\nA,1\n")
    url = http_server.add("/files/10700143", body.getvalue())
    download(url, dest, progress=False)
    assert dest.read_bytes() == body.getvalue()
    assert len(http_server.requests_for("/files/10700143")) == 1


# --------------------------------------------------------------------------------------------- archives


def make_tar(path, members: dict[str, bytes], *, mode="w:gz", symlinks: dict[str, str] | None = None):
    with tarfile.open(path, mode) as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name, target in (symlinks or {}).items():
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            tar.addfile(info)
    return path


def test_extract_tar_gz(tmp_path):
    archive = make_tar(tmp_path / "a.tar.gz", {"top/sub/x.txt": b"x", "top/y.txt": b"yy"})
    out = extract_archive(archive, tmp_path / "out")
    assert out == tmp_path / "out"
    assert (out / "top" / "sub" / "x.txt").read_bytes() == b"x"
    assert (out / "top" / "y.txt").read_bytes() == b"yy"
    assert leftovers(tmp_path) == ["a.tar.gz", "out"]


def test_extracted_folder_gets_the_permissions_mkdir_would_give(tmp_path):
    archive = make_tar(tmp_path / "a.tar", {"x.txt": b"x"}, mode="w")
    old = os.umask(0o022)
    try:
        out = extract_archive(archive, tmp_path / "out")
    finally:
        os.umask(old)
    assert out.stat().st_mode & 0o777 == 0o755


def test_extract_plain_tar_and_keep_existing(tmp_path):
    archive = make_tar(tmp_path / "a.tar", {"x.txt": b"1"}, mode="w")
    out = extract_archive(archive, tmp_path / "out")
    make_tar(archive, {"x.txt": b"2"}, mode="w")
    assert (extract_archive(archive, out) / "x.txt").read_bytes() == b"1"  # complete already: kept
    assert (extract_archive(archive, out, overwrite=True) / "x.txt").read_bytes() == b"2"
    assert leftovers(tmp_path) == ["a.tar", "out"]


@pytest.mark.parametrize("evil", ["../evil.txt", "top/../../evil.txt", "/tmp/scsynth-evil.txt"])
def test_tar_member_escaping_is_rejected(tmp_path, evil):
    archive = make_tar(tmp_path / "a.tgz", {"ok.txt": b"ok", evil: b"evil"})
    with pytest.raises(DataError, match="outside the destination") as err:
        extract_archive(archive, tmp_path / "sub" / "out")
    assert evil in str(err.value) and str(archive) in str(err.value)
    assert not (tmp_path / "sub" / "out").exists()
    assert not (tmp_path / "evil.txt").exists() and not (tmp_path / "sub" / "evil.txt").exists()
    assert leftovers(tmp_path / "sub") == []


@pytest.mark.parametrize("target", ["../../etc/passwd", "ok.txt"])
def test_tar_symlinks_are_rejected(tmp_path, target):
    archive = make_tar(tmp_path / "a.tar.gz", {"ok.txt": b"ok"}, symlinks={"link": target})
    with pytest.raises(DataError, match=f"member 'link' is a symbolic link \\(-> '{target}'\\)"):
        extract_archive(archive, tmp_path / "out")
    assert leftovers(tmp_path) == ["a.tar.gz"]


def test_tar_link_chain_is_rejected_by_our_own_check(tmp_path, monkeypatch):
    # Every name and link target stays inside lexically, but on disk a/b is the destination's parent, so
    # a/b/escaped.txt lands outside. Without the stdlib's tar filter (Python 3.10.0-3.10.11) only our check stops it.
    monkeypatch.delattr(tarfile, "data_filter", raising=False)
    archive = tmp_path / "sub" / "chain.tar"
    archive.parent.mkdir()
    with tarfile.open(archive, "w") as tar:
        for name, target in [("a", "."), ("a/b", "..")]:
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)
        info = tarfile.TarInfo("a/b/escaped.txt")
        info.size = 7
        tar.addfile(info, io.BytesIO(b"escaped"))
    with pytest.raises(DataError, match="member 'a' is a symbolic link") as err:
        extract_archive(archive, tmp_path / "sub" / "out")
    assert str(archive) in str(err.value) and "\n" not in str(err.value)
    assert list(tmp_path.rglob("escaped.txt")) == []
    assert leftovers(tmp_path / "sub") == ["chain.tar"]


def add_hard_link(archive, name: str, target: str) -> None:
    with tarfile.open(archive, "a") as tar:
        info = tarfile.TarInfo(name)
        info.type, info.linkname = tarfile.LNKTYPE, target
        tar.addfile(info)


def test_tar_hard_link_to_an_earlier_file_is_extracted(tmp_path):
    archive = make_tar(tmp_path / "a.tar", {"dir/x.txt": b"x"}, mode="w")
    add_hard_link(archive, "dir/same.txt", "dir/x.txt")
    out = extract_archive(archive, tmp_path / "out")
    assert (out / "dir" / "same.txt").read_bytes() == b"x"


@pytest.mark.parametrize(
    ("target", "message"),
    [("../../outside.txt", "outside the destination"), ("later.txt", "does not point to an earlier file")],
)
def test_tar_hard_link_elsewhere_is_rejected(tmp_path, target, message):
    (tmp_path / "outside.txt").write_bytes(b"precious")
    archive = make_tar(tmp_path / "a.tar", {"x.txt": b"x"}, mode="w")
    add_hard_link(archive, "link", target)
    with tarfile.open(archive, "a") as tar:
        info = tarfile.TarInfo("later.txt")
        tar.addfile(info, io.BytesIO(b""))
    with pytest.raises(DataError, match=message):
        extract_archive(archive, tmp_path / "sub" / "out")
    assert (tmp_path / "outside.txt").read_bytes() == b"precious"
    assert not (tmp_path / "sub" / "out").exists()


def test_corrupt_tar_is_a_data_error(tmp_path):
    archive = tmp_path / "bad.tar.gz"
    archive.write_bytes(b"\x1f\x8b\x08\x00 definitely not a tar")
    with pytest.raises(DataError, match="bad.tar.gz"):
        extract_archive(archive, tmp_path / "out")
    assert leftovers(tmp_path) == ["bad.tar.gz"]


def test_extract_single_gz(tmp_path):
    archive = tmp_path / "table.tsv.gz"
    archive.write_bytes(gzip.compress(b"a\tb\n1\t2\n"))
    out = extract_archive(archive, tmp_path / "out")
    assert out == tmp_path / "out" / "table.tsv"
    assert out.read_bytes() == b"a\tb\n1\t2\n"
    assert leftovers(tmp_path / "out") == ["table.tsv"]


def test_extract_zip_and_reject_traversal(tmp_path):
    good = tmp_path / "good.zip"
    with zipfile.ZipFile(good, "w") as zf:
        zf.writestr("dir/x.txt", "x")
    assert (extract_archive(good, tmp_path / "g") / "dir" / "x.txt").read_text() == "x"
    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(bad, "w") as zf:
        zf.writestr("../evil.txt", "evil")
    with pytest.raises(DataError, match="outside the destination"):
        extract_archive(bad, tmp_path / "b")
    assert not (tmp_path / "b").exists() and not (tmp_path / "evil.txt").exists()


def test_unknown_archive_type(tmp_path):
    path = tmp_path / "x.rar"
    path.write_bytes(b"x")
    with pytest.raises(DataError, match="unknown archive type"):
        extract_archive(path, tmp_path / "out")
    with pytest.raises(DataError, match="not found"):
        extract_archive(tmp_path / "missing.tar", tmp_path / "out")
    assert not os.path.exists(tmp_path / "out")
