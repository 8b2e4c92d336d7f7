"""The makemore TUI application and its one factory, shared by `makemore tui` and the tests."""

from __future__ import annotations

from pathlib import Path

from textual.app import App

from makemore.events import Event


class MakemoreApp(App):
    CSS_PATH = "app.tcss"
    TITLE = "makemore"

    def __init__(self, *, request=None, trainer=None, follow: Path | None = None, events: list[Event] | None = None,
                 compare: list[Path] | None = None, runs_root: Path = Path("runs"), poll_interval: float | None = None,
                 chart_interval: float = 1.0):
        super().__init__()
        self.source = dict(request=request, trainer=trainer, follow=follow, events=events)
        self.compare = compare
        self.runs_root = runs_root
        self.intervals = dict(poll_interval=poll_interval, chart_interval=chart_interval)
        self.shown_run = None  # the last run screen opened (Textual empties its screens before run() returns)
        self.handles_signals = False  # set by the command line: SIGTERM and SIGHUP stop as q does (``on_term``, ``on_hangup``)
        self.stop_signal = None  # the first of those that came

    @property
    def left_run(self) -> tuple[Path, bool] | None:
        """(the last run shown, whether it was trained here and stopped before its end), for the line the command
        prints once the screen is gone."""
        screen = self.shown_run
        if screen is None or screen.run_dir is None:
            return None
        finished = screen.snap.finished
        return screen.run_dir, screen.trainer is not None and (finished is None or finished.reason == "stopped")

    def on_mount(self) -> None:
        from makemore.tui.run_screen import RunScreen
        from makemore.tui.start_screen import StartScreen

        if self.handles_signals:
            self._catch_signals()

        if self.compare is not None:
            from makemore.tui.compare_screen import CompareScreen

            self.push_screen(CompareScreen(self.compare, **self.intervals))
        elif any(v is not None for v in self.source.values()):
            self.push_screen(RunScreen(**self.source, **self.intervals))
        else:
            self.push_screen(StartScreen(self.runs_root))

    def _catch_signals(self) -> None:
        """SIGTERM (`kill`, `timeout`, a scheduler) ends the screen as q does: a run training here stops after its
        step, saves, and the screen quits, the terminal restored (a second SIGTERM quits at once). SIGHUP (the
        terminal closed) stops and saves the run alike, then ends the process: there is no terminal left to
        restore, and writing to it could wait for ever. A signal the process ignores (SIGHUP under `nohup`)
        stays ignored.

        The SIGHUP handler only silences the terminal and writes the signal into a pipe: a thread waiting on the
        pipe does the rest (a handler that took locks could wait on the very thread it interrupted)."""
        import asyncio
        import os
        import signal
        import threading

        from makemore.training import _terminals

        self._terminals = _terminals()
        if signal.getsignal(signal.SIGTERM) is not signal.SIG_IGN:
            try:
                asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, self.on_term, signal.SIGTERM)
            except NotImplementedError:  # an event loop without signal handlers (Windows'): as before, unhandled
                pass
        if hasattr(signal, "SIGHUP") and signal.getsignal(signal.SIGHUP) is not signal.SIG_IGN:
            self._hangups = os.pipe()
            os.set_blocking(self._hangups[1], False)  # (the handler never waits: a full pipe has said it already)
            threading.Thread(target=self._after_hangup, daemon=True, name="hang-up").start()
            # a handler of the process, not of the event loop: the loop may be stuck writing to the terminal
            signal.signal(signal.SIGHUP, self.on_hangup)

    def on_term(self, signum: int) -> None:
        screen = self.run_screen()
        if self.stop_signal is None and screen is not None and screen.training and screen.trainer is not None:
            self.stop_signal = signum
            if screen.stopping:  # already stopping (q, Esc): now quit once it has saved, as q would
                screen.after_stop = "quit"
            else:
                screen.action_quit_run()  # stop after this step, save, then quit
            return
        self.stop_signal = self.stop_signal or signum
        self.exit()

    def on_hangup(self, signum: int, frame=None) -> None:
        import os

        from makemore.training import _silence, _terminal

        _silence([fd for fd in self._terminals if not _terminal(fd)])  # what is still drawn goes nowhere
        try:
            os.write(self._hangups[1], bytes([signum]))
        except OSError:  # (told already: the pipe is full of hang-ups)
            pass

    def _after_hangup(self) -> None:
        """The closed terminal's end (``_catch_signals``): the run training here, if any, stops after its step and
        saves (its thread may outlive the screens, after q), then the process ends with 128 + SIGHUP."""
        import os

        from makemore.training import _terminal

        while True:
            told = os.read(self._hangups[0], 1)
            if not told:
                return
            signum = told[0]
            if not any(_terminal(fd) for fd in (0, *self._terminals)):
                break
            # `kill -HUP` with the terminal still there: as SIGTERM, the screen quits, the terminal restored
            try:
                self.call_from_thread(self.on_term, signum)
            except RuntimeError:  # the screen has closed meanwhile
                pass
        quiet_r, self._quiet_w = os.pipe()  # input that never comes: the screen's key reader waits on it instead
        os.dup2(quiet_r, 0)  # of spinning on the hung-up terminal's end of file while the run saves
        os.close(quiet_r)
        screen = self.run_screen() or self.shown_run
        if screen is not None and screen.trainer is not None and screen.training_alive:
            screen.trainer.request_stop()  # it evaluates and saves, then closes its files (``trained_out``)
            screen.trained_out.wait()
        os._exit(128 + signum)

    def on_unmount(self) -> None:
        from makemore.tui.run_screen import RunScreen

        # a paused trainer waits on an event that cancelling the worker does not set: release it, or the
        # process would wait for that thread forever
        for screen in self.screen_stack:
            if isinstance(screen, RunScreen):
                screen.stop_training()

    def run_screen(self):
        from makemore.tui.run_screen import RunScreen

        return next((s for s in reversed(self.screen_stack) if isinstance(s, RunScreen)), None)


def create_app(*, request=None, trainer=None, follow: Path | None = None, events: list[Event] | None = None,
               compare: list[Path] | None = None, runs_root: Path = Path("runs"), poll_interval: float | None = None,
               chart_interval: float = 1.0) -> MakemoreApp:
    """Train (``request`` or a ready ``trainer``), follow a run directory, replay ``events``, overlay the loss
    curves of the run directories in ``compare``, or (none given) open the start screen. ``poll_interval``:
    seconds between looks at the run (default: 0.25 when training here, 1 when following, so that a follower
    costs the trainer next to nothing)."""
    given = [x for x in (request, trainer, follow, events, compare) if x is not None]
    if len(given) > 1:
        raise ValueError("give at most one of request, trainer, follow, events, compare")
    if request is not None:
        from dataclasses import replace

        from makemore.tui.diagnostics_screen import with_tui_defaults

        request = replace(request, train=with_tui_defaults(request.train))
    return MakemoreApp(request=request, trainer=trainer, follow=Path(follow) if follow is not None else None,
                       events=events, compare=[Path(p) for p in compare] if compare is not None else None,
                       runs_root=runs_root, poll_interval=poll_interval, chart_interval=chart_interval)


def awaits_run(target: str) -> bool:
    """Whether ``target``, which is neither a run directory nor a word list, names a run about to start.

    `makemore train ... -o runs/x` creates runs/x only once its data is prepared, a few seconds after the
    command. A target is taken for such a run when it is an existing directory (without config.json yet), or
    when it does not exist, has no file suffix and either has a directory part (runs/x) or a staging
    directory of a starting run beside it. A name like `nmaes` or `words.txt` stays a missing word list.
    """
    path = Path(target)
    if path.is_dir():
        return True
    if path.exists() or path.suffix:
        return False
    parent = path.parent
    staging = parent.is_dir() and any(parent.glob(f".{path.name}.*.tmp"))
    return staging or parent != Path(".")


def _same(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except (OSError, RuntimeError):
        return False


def follows(target: str) -> bool:
    """`makemore tui TARGET` follows TARGET (rather than training on it) when it is a run directory, or will be."""
    from makemore.tui import backend

    return backend.is_run_dir(Path(target)) or (not backend.is_dataset_name(target) and awaits_run(target))


def check_overlay(targets: list[str], given: list[str]) -> list[Path]:
    """The run directories of `makemore tui RUN RUN...`, each checked before the screen opens: anything that is
    not a run directory, or a run given twice, is refused with one line naming it."""
    from makemore.errors import MakemoreError
    from makemore.rundir import RunDir

    if given:
        raise MakemoreError(f"{given[0]} applies only when training; `makemore tui RUN RUN...` overlays the runs "
                            f"as they are")
    paths, seen = [], {}
    for target in targets:
        run = RunDir.open(target)  # "<path>: no such run directory", "<path>: not a makemore run", ...
        run.config  # read now: a damaged config.json is refused here, not drawn as an unreadable curve
        path = run.path
        key = path.resolve()
        if key in seen:
            raise MakemoreError(f"{target}: the same run as {seen[key]}; give each run once")
        seen[key] = target
        paths.append(path)
    return paths


def _need_terminal() -> None:
    """The screen draws on a terminal and reads its keys: without one (a pipe, a file, a job in the background
    with its input closed) it would draw escape codes into the output forever."""
    import sys

    from makemore.errors import MakemoreError

    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise MakemoreError("makemore tui needs a terminal (its input or output is not one); train without the "
                            "screen with `makemore train`, or see a run with `makemore info`")


def run_from_cli(target: str | None, *, model_type: str, out: Path | None, seed: int, device: str, max_len: int,
                 hyper: dict, train: dict, given: list[str], mode: str | None = None,
                 block_size: int | None = None, more: list[str] | None = None, tokenizer: Path | None = None,
                 preset: str | None = None, type_given: bool = False) -> None:
    """What `makemore tui [TARGET]` does once the options are parsed: a run directory is followed (or waited
    for, see ``awaits_run``), anything else is a word list to train on (checked here, before the screen
    opens, so that a typo is a one-line error like `makemore train`'s); no target opens the start screen.
    With ``more`` targets, every target is a run directory, and their loss curves are overlaid."""
    from makemore.errors import MakemoreError
    from makemore.tui import backend

    if target is not None and more:
        app = create_app(compare=check_overlay([target, *more], given))
        _need_terminal()
        app.handles_signals = True
        app.run()
        if app.stop_signal is not None:
            raise SystemExit(128 + app.stop_signal)
        return
    from makemore.rundir import RUNS, holds_runs

    # `makemore tui runs`: the start screen on that folder (the default one even while it holds no run yet)
    if target is not None and (holds_runs(Path(target)) or Path(target).is_dir() and _same(Path(target), RUNS)):
        if given:
            raise MakemoreError(f"{target} is a folder of runs, which the TUI lists to open or train beside; "
                                f"{given[0]} applies only when training on data")
        app = create_app(runs_root=Path(target))
    elif target is not None and follows(target):
        if given:
            raise MakemoreError(f"{target} is a run directory, which the TUI follows as it is; "
                                f"{given[0]} applies only when training (continue a run with `makemore train --resume`)")
        from makemore.rundir import CONFIG, RunDir

        if (Path(target) / CONFIG).exists():  # (a run still being made has none yet: the screen waits for it)
            run = RunDir(target)
            # a damaged config.json or split.json is refused here, as `info`, `sample` and `eval` refuse it
            run.split(required=run.config.mode == "words")
        app = create_app(follow=Path(target))
    elif target is not None:
        request = backend.new_request(data=target, model_type=model_type, out=out, hyper=hyper, train=train,
                                      seed=seed, device=device, max_len=max_len, mode=mode, block_size=block_size,
                                      tokenizer=Path(tokenizer) if tokenizer is not None else None, preset=preset)
        # a preset fills in what was not given, as `makemore train --preset` does; options, and the tokenizer
        # file: refused before the screen opens
        request = backend.check_before_screen(request, type_given=type_given, max_len=max_len)
        if out is not None:
            from makemore.rundir import check_out

            check_out(Path(out))  # a run is never overwritten: said now, not inside the screen
        app = create_app(request=request)
    else:
        if given:
            raise MakemoreError(f"{given[0]} needs a word list to train on: makemore tui names {given[0]} ...")
        app = create_app()
    _need_terminal()
    app.handles_signals = True
    app.run()
    if app.left_run is not None:
        run_dir, unfinished = app.left_run
        print(f"run directory: {run_dir}" + (f" · continue it with `makemore train --resume {run_dir}`"
                                               if unfinished else ""))
    if app.return_code:  # the screen failed (its traceback is above): the command fails too
        raise SystemExit(app.return_code)
    if app.stop_signal is not None:  # ended by SIGTERM or SIGHUP, as `makemore train` ends: 128 + the signal
        raise SystemExit(128 + app.stop_signal)
