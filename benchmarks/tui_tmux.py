"""Run the real `makemore tui` in tmux at 120x40, save what the screen shows, and compare its training speed
with headless `makemore train` on the same options.

    python benchmarks/tui_tmux.py [--data names] [--steps 1500] [--out bench-tui]

Writes OUT/screen.txt (tmux capture-pane after the wait) and prints a table of steps/s from each run's
metrics.jsonl. The two runs go one after the other, never together, so they do not compete for cores; on a
machine shared with other jobs the ratio is noisy, so run it on a quiet one.
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path


def steps_per_s(run_dir: Path, skip: int = 2) -> tuple[float, int]:
    """Median steps/s over the Step events (skipping the first few, which include warm-up), and their count."""
    rates = []
    for line in (run_dir / "metrics.jsonl").read_text(encoding="utf-8").splitlines():
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            continue
        if event.get("event") == "step":
            rates.append(event["steps_per_s"])
    rates = rates[skip:] or rates
    return (statistics.median(rates) if rates else float("nan")), len(rates)


def finished(run_dir: Path) -> bool:
    path = run_dir / "metrics.jsonl"
    return path.exists() and '"event": "finished"' in path.read_text(encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="names")
    parser.add_argument("--type", default="transformer")
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--eval-interval", type=int, default=500)
    parser.add_argument("--out", type=Path, default=Path("bench-tui"))
    parser.add_argument("--timeout", type=float, default=900.0)
    args = parser.parse_args()
    if shutil.which("tmux") is None:
        sys.exit("tmux is not installed (apt-get install -y tmux)")
    makemore = shutil.which("makemore") or sys.exit("the makemore command is not on PATH")
    if args.out.exists():
        shutil.rmtree(args.out)
    args.out.mkdir(parents=True)
    common = [args.data, "--type", args.type, "--max-steps", str(args.steps),
              "--eval-interval", str(args.eval_interval), "--device", "cpu"]

    # 1. headless
    headless = args.out / "headless"
    t0 = time.monotonic()
    subprocess.run([makemore, "train", *common, "-o", str(headless), "--quiet"], check=True)
    headless_wall = time.monotonic() - t0

    # 2. the TUI in a detached tmux session of 120x40
    tui = args.out / "tui"
    session = f"makemore-bench-{int(time.time())}"
    command = " ".join(shlex.quote(a) for a in [makemore, "tui", *common, "-o", str(tui)])
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "120", "-y", "40",
                    f"{command}; sleep 600"], check=True)
    screen = ""
    t0 = time.monotonic()
    try:
        while not finished(tui) and time.monotonic() - t0 < args.timeout:
            time.sleep(1.0)
            # keep the latest screen that shows training under way
            grab = subprocess.run(["tmux", "capture-pane", "-p", "-t", session], capture_output=True, text=True)
            if "steps/s" in grab.stdout:
                screen = grab.stdout
        tui_wall = time.monotonic() - t0
        time.sleep(1.5)  # let the last redraw land
        final = subprocess.run(["tmux", "capture-pane", "-p", "-t", session], capture_output=True, text=True).stdout
    finally:
        subprocess.run(["tmux", "send-keys", "-t", session, "q"], check=False)
        time.sleep(1.0)
        subprocess.run(["tmux", "kill-session", "-t", session], check=False)
    (args.out / "screen-during.txt").write_text(screen, encoding="utf-8")
    (args.out / "screen.txt").write_text(final, encoding="utf-8")

    h, hn = steps_per_s(headless)
    t, tn = steps_per_s(tui)
    print(f"{'run':<10} {'steps/s (median)':>17} {'Step events':>12} {'wall s':>8}")
    print(f"{'headless':<10} {h:>17.1f} {hn:>12} {headless_wall:>8.1f}")
    print(f"{'tui':<10} {t:>17.1f} {tn:>12} {tui_wall:>8.1f}")
    print(f"ratio tui/headless: {t / h:.1%}  (target: at least 90%)")
    print(f"screen: {args.out / 'screen.txt'} (end), {args.out / 'screen-during.txt'} (during training)")


if __name__ == "__main__":
    main()
