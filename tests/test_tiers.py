"""The tier table of tests/conftest.py names tests and modules that exist (a renamed test would leave its tier)."""

from __future__ import annotations

import re

import conftest
from conftest import REPO


def test_every_tier_entry_names_an_existing_test_or_module():
    sources = {path.stem: path.read_text() for path in (REPO / "tests").rglob("test_*.py")}
    for module in conftest.SYSTEM_MODULES | conftest.WORKFLOW_MODULES:
        assert module in sources, module
    defined = {name for text in sources.values() for name in re.findall(r"^def (test_\w+)", text, flags=re.MULTILINE)}
    assert conftest.SCIENCE_TESTS <= defined, conftest.SCIENCE_TESTS - defined
    fixtures = {
        name
        for text in list(sources.values()) + [(REPO / "tests/conftest.py").read_text()]
        for name in re.findall(r"@pytest\.fixture[^\n]*\ndef (\w+)", text)
    }
    assert conftest.SCIENCE_FIXTURES <= fixtures, conftest.SCIENCE_FIXTURES - fixtures
