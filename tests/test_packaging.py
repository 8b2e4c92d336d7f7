"""The wheel: what it contains, and that a non-editable install works from anywhere with the datasets present."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(REPO)],
        capture_output=True, text=True,
    )
    if result.returncode != 0:
        pytest.fail(f"building the wheel failed:\n{result.stderr[-2000:]}")
    (path,) = out.glob("makemore-*.whl")
    return path


def test_wheel_contents(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/")[0] for n in names if not n.split("/")[0].endswith((".dist-info", ".data"))}
    assert top == {"makemore"}, top  # no top-level `datasets` (it would shadow Hugging Face's) nor `tui`
    for required in ("makemore/cli.py", "makemore/models/transformer.py", "makemore/datasets/names.txt", "makemore/datasets/shakespeare.txt",
                     "makemore/datasets/README.md", "makemore/tui/__init__.py"):
        assert required in names, required
    assert any(n.startswith("makemore/tui/") and n.endswith(".tcss") for n in names) or \
        not list((REPO / "tui").glob("*.tcss"))
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "makemore = makemore.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()


def test_non_editable_install_runs_from_anywhere(wheel, tmp_path):
    """Install the wheel (no editable link) into its own folder and run it from an unrelated directory."""
    import os

    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(wheel)],
                   check=True, capture_output=True)
    env = {**os.environ, "PYTHONPATH": str(target)}
    code = ("import makemore, makemore.data as d; from pathlib import Path; "
            "print(Path(makemore.__file__).parent); print(sorted(d.builtin_datasets()))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, env=env,
                            check=True)
    location, datasets = result.stdout.strip().splitlines()
    assert Path(location) == target / "makemore"  # the installed copy, not the checkout
    assert "'names'" in datasets and "'words'" in datasets and "'shakespeare'" in datasets
    listed = subprocess.run([sys.executable, "-m", "makemore", "datasets"], capture_output=True, text=True,
                            cwd=tmp_path, env=env)
    assert listed.returncode == 0, listed.stderr
    assert "names" in listed.stdout and "surnames" in listed.stdout
    assert any(line.split()[:2] == ["shakespeare", "text"] for line in listed.stdout.splitlines()), listed.stdout
    assert not (target / "datasets").exists() and not (target / "tui").exists()
