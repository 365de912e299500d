"""The documentation: README.md stays short, every relative link of README.md and docs/*.md resolves to a file of
the repository, docs/index.md lists every docs file, and the package cites no file outside the repository."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

# markdown-it-py, a CommonMark parser, comes with scvi-tools (through rich)
from markdown_it import MarkdownIt

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
README_MAX_LINES = 150

_PARSER = MarkdownIt("commonmark").enable("table")


def markdown_files() -> list[Path]:
    return [REPO / "README.md", *sorted(DOCS.glob("*.md"))]


def relative_links(text: str) -> list[str]:
    """Targets of the links and images of a Markdown text that point into the repository (no scheme, not a bare
    anchor), as written; links inside code are not links."""
    targets = []
    for token in _PARSER.parse(text):
        for child in token.children or []:
            target = child.attrGet("href") if child.type == "link_open" else child.attrGet("src")
            if child.type in ("link_open", "image") and target:
                parts = urlsplit(target)
                if not parts.scheme and not parts.netloc and parts.path:
                    targets.append(target)
    return targets


def test_relative_links_are_found_in_text_tables_and_images_but_not_in_code():
    text = (
        "See [a](a.md#part) and ![b](img/b.png).\n\n| x |\n|---|\n| [c](../c.md) |\n\n"
        "`[not](code.md)` [web](https://example.org/x.md) [anchor](#here)\n\n```\n[nor](block.md)\n```\n"
    )
    assert relative_links(text) == ["a.md#part", "img/b.png", "../c.md"]


def test_readme_is_short():
    lines = (REPO / "README.md").read_text().splitlines()
    assert len(lines) <= README_MAX_LINES, (
        f"README.md: {len(lines)} lines, at most {README_MAX_LINES} expected; move the details into docs/"
    )


@pytest.mark.parametrize("path", markdown_files(), ids=lambda p: str(p.relative_to(REPO)))
def test_relative_links_resolve(path):
    broken = []
    for target in relative_links(path.read_text()):
        resolved = (path.parent / unquote(urlsplit(target).path)).resolve()
        if not resolved.is_relative_to(REPO):
            broken.append(f"{target} (outside the repository)")
        elif not resolved.exists():
            broken.append(f"{target} (no such file)")
    assert not broken, f"{path.relative_to(REPO)}: broken relative links: {broken}"


def test_index_and_readme_link_every_docs_file():
    def linked(path: Path) -> set[Path]:
        links = relative_links(path.read_text())
        return {(path.parent / unquote(urlsplit(t).path)).resolve() for t in links}

    docs = {p.resolve() for p in DOCS.glob("*.md")} - {(DOCS / "index.md").resolve()}
    missing = sorted(p.name for p in docs - linked(DOCS / "index.md"))
    assert not missing, f"docs/index.md: no link to {missing}"
    assert (DOCS / "index.md").resolve() in linked(REPO / "README.md"), "README.md: no link to docs/index.md"


def test_package_cites_no_file_outside_the_repository():
    citing = [
        str(path.relative_to(REPO))
        for path in sorted((REPO / "scsynth_core").rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts and "../shared" in path.read_text(errors="replace")
    ]
    assert not citing, f"files citing ../shared (outside the repository; cite the paper instead): {citing}"


def test_named_test_files_exist():
    """A test file named in the docs, the package, the benchmarks or another test exists (moves leave no stale
    path behind); dated result records under benchmarks/results keep the paths of their day."""
    import re

    sources = [*markdown_files(), *(REPO / "scsynth_core").rglob("*.py"), *(REPO / "tests").rglob("*.py")]
    sources += list((REPO / "benchmarks").glob("*.py"))
    stale = sorted(
        f"{path.relative_to(REPO)}: {name}"
        for path in sources
        for name in set(re.findall(r"\btests/[\w/]*test_\w+\.py", path.read_text()))
        if not (REPO / name).exists()
    )
    assert not stale, f"no such test file: {stale}"
