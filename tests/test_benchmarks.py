"""The GPU benchmark's plan runs: every step of ``benchmarks/gpu.py`` in its dry run (tiny, on the CPU), so the
one run a GPU machine gets does not fail on plumbing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"


@pytest.mark.slow
def test_the_gpu_benchmark_runs_every_step_in_its_dry_run(tmp_path: Path):
    if not (SHARED / "names.txt").exists() or not (SHARED / "tinyshakespeare.txt").exists():
        pytest.skip(f"the benchmark datasets are not in {SHARED}")
    out = tmp_path / "gpu"
    done = subprocess.run([sys.executable, str(REPO / "benchmarks" / "gpu.py"), "--dry-run", "--out", str(out)],
                          capture_output=True, text=True, timeout=300, cwd=REPO)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    passed = [line for line in done.stdout.splitlines() if line[:1].isdigit() and "  ok  " in line]  # the summary
    assert len(passed) == 7, done.stdout
    logs = sorted(p.name for p in out.iterdir())
    assert [name.split("-")[0] for name in logs] == ["1", "2", "3", "4", "5", "6", "7"]
    sampled = (out / logs[5]).read_text()
    assert "cpu:" in sampled and "names/s" in sampled  # the sampling step measured something
    assert "tokens/s" in (out / logs[0]).read_text() and "MFU" in (out / logs[3]).read_text()
    assert "averaging 8 masks" in (out / logs[6]).read_text()
