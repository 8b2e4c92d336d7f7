"""Make docs/tui-80x24.svg and docs/tui-200x60.svg from a real (small) training inside the TUI.

    python docs/screenshots.py [--data names] [--steps 1500] [--out /tmp/makemore-shots]

Trains a small Transformer on the word list inside the app at 200x60, takes the 200x60 screenshot once the run
has passed two evaluations, shrinks the terminal to 80x24 for the second, and lets the run finish.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import time
from pathlib import Path

DOCS = Path(__file__).resolve().parent


async def shoot(args) -> None:
    from makemore.training import Request
    from makemore.tui.app import create_app

    if args.out.exists():
        shutil.rmtree(args.out)
    request = Request(data=args.data, model_type="transformer", out=args.out,
                      hyper=dict(n_layer=2, n_head=4, n_embd=32),
                      train=dict(max_steps=args.steps, eval_interval=args.steps // 4, batch_size=32), device="cpu")
    app = create_app(request=request)
    async with app.run_test(size=(200, 60)) as pilot:
        screen = app.run_screen()
        deadline = time.monotonic() + 900
        while len(screen.snap.evals) < 3 and time.monotonic() < deadline:
            await pilot.pause(0.5)
        await pilot.press("down", "right", "right")  # the cursor on 'a' -> 'b'
        await pilot.pause(1.5)
        app.save_screenshot(filename="tui-200x60.svg", path=str(DOCS))
        await pilot.resize_terminal(80, 24)
        await pilot.press("1")
        await pilot.pause(1.5)
        app.save_screenshot(filename="tui-80x24.svg", path=str(DOCS))
        screen.trainer.request_stop()
        while screen.training:
            await pilot.pause(0.2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="names")
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--out", type=Path, default=Path("/tmp/makemore-shots"))
    asyncio.run(shoot(parser.parse_args()))
    print(f"wrote {DOCS / 'tui-200x60.svg'} and {DOCS / 'tui-80x24.svg'}")


if __name__ == "__main__":
    main()
