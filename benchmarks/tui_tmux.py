"""Run the real `makemore tui` in tmux, save what the screen shows, and measure what it costs training:

- headless: `makemore train` alone;
- followed: `makemore train` while `makemore tui RUN` follows it from another terminal (tmux), started at
  the same moment, before the run directory exists (the follower waits for it);
- tui: training inside `makemore tui` (the in-UI figure).

    python benchmarks/tui_tmux.py [--data names] [--steps 1500] [--rounds 3] [--size 120x40] [--out bench-tui]

Each round runs the three one after the other (never two trainings together); the figure of each is the
median steps/s of its Step events, and the table gives the median over rounds and the ratios to headless
(targets: followed at least 95%, tui at least 90%). Writes OUT/screen*.txt (tmux capture-pane). On a machine
shared with other jobs the ratios are noisy: run it on a quiet one.
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


def capture(session: str) -> str:
    return subprocess.run(["tmux", "capture-pane", "-p", "-t", session], capture_output=True, text=True).stdout


def in_tmux(session: str, size: tuple[int, int], command: list[str]) -> None:
    line = " ".join(shlex.quote(a) for a in command)
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", str(size[0]), "-y", str(size[1]),
                    f"{line}; sleep 600"], check=True)


def close(session: str) -> None:
    subprocess.run(["tmux", "send-keys", "-t", session, "q"], check=False)
    time.sleep(1.0)
    subprocess.run(["tmux", "kill-session", "-t", session], check=False)


def headless(makemore: str, common: list[str], out: Path) -> float:
    t0 = time.monotonic()
    subprocess.run([makemore, "train", *common, "-o", str(out), "--quiet"], check=True)
    return time.monotonic() - t0


def followed(makemore: str, common: list[str], out: Path, size, timeout: float) -> tuple[float, str, str]:
    """Train headless while the TUI follows the run from a tmux session started first."""
    session = f"makemore-follow-{int(time.time() * 1000)}"
    in_tmux(session, size, [makemore, "tui", str(out)])
    try:
        time.sleep(3.0)
        waiting = capture(session)  # the follower before the run directory exists
        t0 = time.monotonic()
        subprocess.run([makemore, "train", *common, "-o", str(out), "--quiet"], check=True, timeout=timeout)
        wall = time.monotonic() - t0
        time.sleep(2.0)  # the follower's next poll
        final = capture(session)
    finally:
        close(session)
    return wall, waiting, final


def in_ui(makemore: str, common: list[str], out: Path, size, timeout: float) -> tuple[float, str, str]:
    session = f"makemore-bench-{int(time.time() * 1000)}"
    in_tmux(session, size, [makemore, "tui", *common, "-o", str(out)])
    screen = ""
    t0 = time.monotonic()
    try:
        while not finished(out) and time.monotonic() - t0 < timeout:
            time.sleep(1.0)
            grab = capture(session)  # keep the latest screen that shows training under way
            if "steps/s" in grab:
                screen = grab
        wall = time.monotonic() - t0
        time.sleep(1.5)  # let the last redraw land
        final = capture(session)
    finally:
        close(session)
    return wall, screen, final


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="names")
    parser.add_argument("--type", default="transformer")
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--eval-interval", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--size", default="120x40", help="the tmux window, COLSxROWS")
    parser.add_argument("--out", type=Path, default=Path("bench-tui"))
    parser.add_argument("--timeout", type=float, default=900.0)
    args = parser.parse_args()
    if shutil.which("tmux") is None:
        sys.exit("tmux is not installed (apt-get install -y tmux)")
    makemore = shutil.which("makemore") or sys.exit("the makemore command is not on PATH")
    size = tuple(int(x) for x in args.size.lower().split("x"))
    if args.out.exists():
        shutil.rmtree(args.out)
    args.out.mkdir(parents=True)
    common = [args.data, "--type", args.type, "--max-steps", str(args.steps),
              "--eval-interval", str(args.eval_interval), "--device", "cpu"]
    rates: dict[str, list[float]] = {"headless": [], "followed": [], "tui": []}
    walls: dict[str, list[float]] = {k: [] for k in rates}
    for r in range(args.rounds):
        run = args.out / f"headless-{r}"
        walls["headless"].append(headless(makemore, common, run))
        rates["headless"].append(steps_per_s(run)[0])

        run = args.out / f"followed-{r}"
        wall, waiting, final = followed(makemore, common, run, size, args.timeout)
        walls["followed"].append(wall)
        rates["followed"].append(steps_per_s(run)[0])
        (args.out / "screen-follow-waiting.txt").write_text(waiting, encoding="utf-8")
        (args.out / "screen-follow.txt").write_text(final, encoding="utf-8")

        run = args.out / f"tui-{r}"
        wall, during, final = in_ui(makemore, common, run, size, args.timeout)
        walls["tui"].append(wall)
        rates["tui"].append(steps_per_s(run)[0])
        (args.out / "screen-during.txt").write_text(during, encoding="utf-8")
        (args.out / "screen.txt").write_text(final, encoding="utf-8")

    base = statistics.median(rates["headless"])
    print(f"{'run':<10} {'steps/s (median of rounds)':>27} {'per round':>30} {'wall s':>8} {'vs headless':>12}")
    for name, target in (("headless", None), ("followed", 0.95), ("tui", 0.90)):
        rate = statistics.median(rates[name])
        rounds = " ".join(f"{x:.1f}" for x in rates[name])
        ratio = f"{rate / base:.1%}" if name != "headless" else ""
        goal = f" (target >= {target:.0%})" if target else ""
        print(f"{name:<10} {rate:>27.1f} {rounds:>30} {statistics.median(walls[name]):>8.1f} {ratio:>12}{goal}")
    print(f"screens: {args.out}/screen-follow-waiting.txt (follower before the run existed), "
          f"screen-follow.txt, screen-during.txt, screen.txt")


if __name__ == "__main__":
    main()
