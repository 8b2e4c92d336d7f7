"""Shared fixtures. The benchmark word list (names.txt, 32,032 US baby names from Karpathy's makemore repository,
MIT) lives in the shared folder beside the repository and is never committed; tests that need it skip when it is
absent (the README's Set up section says how to fetch it)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
NAMES = REPO.parent / "shared" / "data" / "names.txt"

# tests must not fight over the machine's cores
os.environ.setdefault("OMP_NUM_THREADS", "2")


@pytest.fixture(scope="session")
def names_path() -> Path:
    if not NAMES.exists():
        pytest.skip(f"benchmark dataset not found at {NAMES} (Karpathy's makemore names.txt; the README's "
                    f"Set up section says how to fetch it)")
    return NAMES


@pytest.fixture
def small_words(tmp_path: Path) -> Path:
    """A tiny word list for fast end-to-end runs."""
    words = ["emma", "olivia", "ava", "isabella", "sophia", "mia", "amelia", "harper", "evelyn", "abigail",
             "emily", "ella", "elizabeth", "camila", "luna", "sofia", "avery", "mila", "aria", "scarlett",
             "penelope", "layla", "chloe", "victoria", "madison", "eleanor", "grace", "nora", "riley", "zoey"]
    path = tmp_path / "small.txt"
    path.write_text("\n".join(words) + "\n", encoding="utf-8")
    return path
