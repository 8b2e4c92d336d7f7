"""Shared fixtures. The benchmark word list (names.txt, 32,033 US baby names from Karpathy's makemore repository,
MIT) lives in the shared folder beside the repository and is never committed; tests that need it skip when it is
absent (the README's Set up section says how to fetch it)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
NAMES = REPO.parent / "shared" / "data" / "names.txt"

# tests must not fight over the machine's cores: two threads in one process, one in each of pytest-xdist's workers
# (which inherit the controller's setting, hence the override). Set before torch is imported, so that it holds in
# the test process and in every process a test starts.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ["OMP_NUM_THREADS"] = "1"
else:
    os.environ.setdefault("OMP_NUM_THREADS", "2")


@pytest.fixture(autouse=True, scope="session")
def steady_arithmetic():
    """Runs trained inside the test process compute in float32, with MKL's matmuls and oneDNN's GELU, instead of
    as their first step's timings find (``--dtype auto``, ``--matmul-precision auto``, the GELU kernel): on a
    loaded machine a timing can go either way, and tests that compare two runs' numbers would then compare two
    kinds of arithmetic. For the whole session, so that the shared runs built by session fixtures compute as the
    tests do. Yields the real timings: test_accel.py, which tests them, puts them back for its tests. Runs in
    subprocesses (some command-line tests) time as a user's do."""
    from makemore import device

    names = ("bfloat16_pays", "matmuls_in_onednn_pay", "native_gelu_pays")
    real = {name: getattr(device, name) for name in names}
    patch = pytest.MonkeyPatch()
    patch.setattr(device, "bfloat16_pays", lambda key, passes, use, run_seconds=None: False)
    patch.setattr(device, "matmuls_in_onednn_pay", lambda key, passes: False)
    patch.setattr(device, "native_gelu_pays", lambda rows, width, passes: False)
    yield real
    patch.undo()


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


RUN_WORDS = ["emma", "olivia", "ava", "isabella", "sophia", "mia", "amelia", "harper", "evelyn", "abigail",
             "emily", "ella", "elizabeth", "camila", "luna", "sofia", "avery", "mila", "aria", "scarlett"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """One small finished Transformer run (20 steps, evaluated at 10 and 20), copied by the tests that damage it.
    Its words include rich markup."""
    from typer.testing import CliRunner

    from makemore.cli import app

    root = tmp_path_factory.mktemp("trained")
    data = root / "words.txt"
    data.write_text("\n".join(RUN_WORDS + ["[/b]", "[red]x"]) + "\n", encoding="utf-8")
    run = root / "run"
    r = CliRunner().invoke(app, ["train", str(data), "-o", str(run), "--n-layer", "1", "--n-embd", "16", "--n-head",
                                 "2", "--batch-size", "8", "-q", "--max-steps", "20", "--eval-interval", "10"],
                           prog_name="makemore")
    assert r.exit_code == 0, r.stdout + r.stderr
    return run


@pytest.fixture
def run_copy(trained, tmp_path) -> Path:
    """A copy of ``trained`` to damage."""
    dest = tmp_path / "run"
    shutil.copytree(trained, dest)
    return dest
