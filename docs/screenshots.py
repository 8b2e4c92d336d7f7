"""Make docs/tui-80x24.svg and docs/tui-200x60.svg from a real (small) training inside the TUI, and
docs/tui-overlay.svg from three small runs overlaid (`makemore tui RUN RUN RUN`), and docs/diagnostics.svg from
an MLP trained with --diagnostics, replayed, with the diagnostics screen open.

    python docs/screenshots.py [--data names] [--steps 1500] [--out /tmp/makemore-shots] [--only main|overlay|diagnostics]

Trains a small Transformer on the word list inside the app at 200x60, takes the 200x60 screenshot once the run
has passed two evaluations, shrinks the terminal to 80x24 for the second, and lets the run finish. For the
overlay, trains a bigram, an MLP and a small Transformer for ``--steps`` each as `makemore train` does, then
opens the three at 120x40 (docs/tui-overlay.svg was made with `--only overlay --steps 600`).
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


OVERLAY = (("bigram", {}), ("mlp", {}), ("transformer", dict(n_layer=2, n_head=4, n_embd=32)))


async def shoot_overlay(args) -> None:
    from makemore.rundir import RunDir
    from makemore.sinks import JsonlSink
    from makemore.training import Request, drive, new_trainer
    from makemore.tui.app import create_app
    from makemore.tui.widgets.run_legend import RunsTable

    root = args.out / "overlay"
    if root.exists():
        shutil.rmtree(root)
    runs = []
    for model_type, hyper in OVERLAY:
        request = Request(data=args.data, model_type=model_type, out=root / f"{args.data}-{model_type}", hyper=hyper,
                          train=dict(max_steps=args.steps, eval_interval=args.steps // 6, batch_size=32),
                          device="cpu")
        trainer, _ = new_trainer(request)
        with RunDir(trainer.run_dir).lock():
            drive(trainer, [JsonlSink(trainer.run_dir)])
        runs.append(Path(trainer.run_dir))
    app = create_app(compare=runs)
    async with app.run_test(size=(120, 40)) as pilot:
        table = app.screen.query_one(RunsTable)
        deadline = time.monotonic() + 60
        while not (table.rows and all(r.type and r.status == "finished" for r in table.rows)):
            if time.monotonic() > deadline:
                raise SystemExit("the overlay did not fill its table within a minute")
            await pilot.pause(0.2)
        await pilot.pause(1.5)  # the chart replots at most once a second
        app.save_screenshot(filename="tui-overlay.svg", path=str(DOCS))


async def shoot_diagnostics(args) -> None:
    from makemore.rundir import RunDir
    from makemore.sinks import JsonlSink
    from makemore.training import Request, drive, new_trainer
    from makemore.tui.app import create_app
    from makemore.tui.diagnostics_screen import DiagnosticsScreen

    out = args.out / "diagnostics"
    if out.exists():
        shutil.rmtree(out)
    request = Request(data=args.data, model_type="mlp", out=out,
                      train=dict(max_steps=args.steps, eval_interval=args.steps // 4, diagnostics=True,
                                 diag_interval=max(1, args.steps // 30)), device="cpu")
    trainer, _ = new_trainer(request)
    with RunDir(trainer.run_dir).lock():
        drive(trainer, [JsonlSink(trainer.run_dir)])
    app = create_app(follow=Path(trainer.run_dir))
    async with app.run_test(size=(160, 50)) as pilot:
        await pilot.pause(2.0)
        await pilot.press("d")
        deadline = time.monotonic() + 60
        while not isinstance(app.screen, DiagnosticsScreen) and time.monotonic() < deadline:
            await pilot.pause(0.2)
        await pilot.pause(1.5)
        app.save_screenshot(filename="diagnostics.svg", path=str(DOCS))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="names")
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--out", type=Path, default=Path("/tmp/makemore-shots"))
    parser.add_argument("--only", choices=("main", "overlay", "diagnostics"), help="make only these screenshots")
    args = parser.parse_args()
    if args.only in (None, "main"):
        asyncio.run(shoot(args))
        print(f"wrote {DOCS / 'tui-200x60.svg'} and {DOCS / 'tui-80x24.svg'}")
    if args.only in (None, "overlay"):
        asyncio.run(shoot_overlay(args))
        print(f"wrote {DOCS / 'tui-overlay.svg'}")
    if args.only in (None, "diagnostics"):
        asyncio.run(shoot_diagnostics(args))
        print(f"wrote {DOCS / 'diagnostics.svg'}")


if __name__ == "__main__":
    main()
