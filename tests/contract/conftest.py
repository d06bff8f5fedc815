"""Fixtures for ingest tests: a copy of the good contract folder that a test may spoil."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

GOOD = Path(__file__).resolve().parents[1] / "data" / "contract" / "good"


@pytest.fixture
def good_dir(tmp_path: Path) -> Path:
    dest = tmp_path / "input"
    shutil.copytree(GOOD, dest)
    return dest


def warehouse_fingerprint(root: Path) -> dict[str, str]:
    """Every file of a warehouse with its checksum: equal fingerprints mean an unchanged store."""
    out = {}
    if root.exists():
        for p in sorted(root.rglob("*")):
            if p.is_file():
                out[str(p.relative_to(root))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out
