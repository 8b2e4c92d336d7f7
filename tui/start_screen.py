"""The screen of `makemore tui` with no argument: open a recent run, or start a new one."""

from __future__ import annotations

import math
import time
from pathlib import Path

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Button, Footer, Input, Label, OptionList, Select, Static
from textual.widgets.option_list import Option

from makemore.config import MAX_STEPS
from makemore.console import plural
from makemore.errors import MakemoreError
from makemore.files import printable
from makemore.models import FAMILIES, recipe_for


def recent_runs(root: Path, limit: int = 30, beside: Path | None = None) -> list[tuple[Path, Text, bool]]:
    """(run dir, a description on two lines: name and type, then state, steps, best val and when; whether it can
    be opened), most recently
    changed first; reads JSON only. Two short lines fit the narrow list beside the form at 120 columns, where
    one long line wrapped at an arbitrary place. ``beside``: a second folder whose runs are listed too (the
    folder of a run opened from elsewhere), each under its path rather than its name. A run whose files cannot be
    read is listed with the reason, as `makemore runs` lists it (the screen shows it, greyed, not to be opened)."""
    from makemore.rundir import RunDir
    from makemore.tui import backend

    runs = backend.recent_runs(root)
    if beside is not None:
        runs = sorted(runs + backend.recent_runs(beside), key=RunDir.last_change, reverse=True)
    out = []
    for run in runs[:limit]:
        name = printable(run.path.name if run.path.parent == Path(root) else run.path)
        try:
            s = run.summary()
            status = run.status()
        except (MakemoreError, KeyError, TypeError, ValueError) as e:  # listed, for what it is, not opened
            reason = str(e).removeprefix(f"{run.path}/").removeprefix(f"{run.path}: ")
            out.append((run.path, Text.assemble((name, "bold"), "\n  ", (f"unreadable: {reason}", "red")), False))
            continue
        tokens = s.get("loss_unit") == "nats/token"  # a token run's loss is per token: said, as `runs` marks it
        best = f"val {s['best_val_loss']:.4f}" + ("/token" if tokens else "") \
            if s["best_val_loss"] is not None else "no eval yet"
        quiet_for = time.time() - run.last_change()
        state = run_state(status, quiet_for)
        kind = s["type"] + (" · tokens" if tokens else " · text" if s.get("mode") == "text" else "")
        out.append((run.path, Text.assemble((name, "bold"), "  ", (kind, "dim"), "\n  ",
                                            (state, STATE_STYLE.get(state, "")),
                                            f" · {plural(s['steps'], 'step')} · {best} · {_ago(quiet_for)}"), True))
    return out


def _same_folder(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return False


STATE_STYLE = {"finished": "green", "stopped": "yellow", "failed": "red", "running": "bold cyan",
               "unfinished": "yellow"}


def run_state(status: str, quiet_for: float) -> str:
    """finished / stopped (q or Ctrl-C) / failed / running (written to lately) / unfinished (killed, or quiet)."""
    if status in ("finished", "stopped", "failed"):
        return status
    return "running" if quiet_for < RUNNING_WITHIN else "unfinished"


NARROW_BELOW = 120  # columns under which the form goes under the list of runs
RUNNING_WITHIN = 60.0  # seconds since the last write within which an unfinished run counts as running


def parse_duration(text: str) -> float | None:
    """'90', '90s', '5m', '1.5h' -> seconds; empty -> None."""
    text = text.strip().lower()
    if not text:
        return None
    scale = {"s": 1, "m": 60, "h": 3600}.get(text[-1])
    number = text[:-1] if scale else text
    try:
        seconds = float(number) * (scale or 1)
    except ValueError:
        raise MakemoreError(f"time budget: {text!r} is not a duration (e.g. 90, 90s, 5m, 1h)") from None
    if not seconds > 0 or seconds == float("inf"):
        raise MakemoreError(f"time budget: {text!r} must be a positive duration")
    return seconds


def _ago(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f} {unit} ago"
    return "just now"


def _number(text: str, kind: type, name: str, low: float = 0, high: float | None = None, positive: bool = False):
    """The field's number, or None when empty; refused naming the field when not a number or out of the range
    `makemore train` checks (so that the run screen never opens on a value the trainer refuses)."""
    text = text.strip()
    if not text:
        return None
    try:
        value = kind(text)
    except ValueError:
        raise MakemoreError(f"{name}: {text!r} is not a number") from None
    if positive and not (0 < value < math.inf):  # (a float: nan and inf too)
        raise MakemoreError(f"{name}: must be a positive number, not {text}")
    if value < low:
        raise MakemoreError(f"{name}: must be at least {low:,}, not {text}")
    if high is not None and value > high:
        raise MakemoreError(f"{name}: must be at most {high:,}, not {text}")
    return value


SWITCH_WORDS = {"true": True, "false": False, "yes": True, "no": False, "on": True, "off": False}


def with_switches(hyper: dict, model_type: str) -> dict:
    """``hyper`` with the words for a switch (batchnorm=yes, tie_weights=off) as true or false, where the family
    takes that option as a switch; any other option keeps its word (tokenizer=on is a file's name)."""
    family = FAMILIES.get(model_type)
    takes = family.hyper if family is not None else {}
    return {k: SWITCH_WORDS[v.lower()] if isinstance(takes.get(k), bool) and isinstance(v, str)
            and v.lower() in SWITCH_WORDS else v for k, v in hyper.items()}


def parse_hyper(text: str) -> dict:
    """'n_layer=2 n_embd=32' -> {'n_layer': 2, 'n_embd': 32}; items apart by spaces or commas, a value with either
    in quotes, as a shell takes it (tokenizer="my files/tok.json")."""
    import shlex

    lexer = shlex.shlex(text, posix=True)
    lexer.whitespace += ","
    lexer.whitespace_split = True
    lexer.commenters = ""  # a # is a character of a value, not a comment
    try:
        items = list(lexer)
    except ValueError:
        raise MakemoreError(f"model options: {text.strip()!r} has a quote that is not closed") from None
    hyper = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise MakemoreError(f"model options: {item!r} is not name=value")
        key = key.strip().lstrip("-").replace("-", "_")
        v: object = value
        for kind in (int, float):
            try:
                v = kind(value)
                break
            except ValueError:
                continue
        if value.lower() in ("true", "false"):
            v = value.lower() == "true"
        hyper[key] = v
    return hyper


def request_options(options: dict) -> dict:
    """The options of the form's option field that are the request's, not the model's (``mode``, ``tokenizer``,
    ``block_size``: what `makemore tui FILE --mode text --tokenizer T --block-size N` takes), taken out of
    ``options``."""
    own: dict = {}
    if "mode" in options:
        own["mode"] = str(options.pop("mode"))
    if "tokenizer" in options:
        own["tokenizer"] = Path(str(options.pop("tokenizer")))
    if "block_size" in options:
        value = options.pop("block_size")
        if type(value) is not int or value < 1:
            raise MakemoreError(f"options: block_size must be a whole number of at least 1, not {value}")
        own["block_size"] = value
    return own


class FormScroll(VerticalScroll, can_focus=False):
    """The form's scrolling column: Tab goes from field to field, not to the column itself (an invisible stop);
    a focused field scrolls into view on its own."""


class StartScreen(Screen):
    BINDINGS = [Binding("q", "app.quit", "quit"), Binding("escape", "leave", "quit", show=False),
                Binding("r", "reload", "reload runs")]

    def action_leave(self) -> None:
        """Esc in a field of the form leaves the field (as on the run screen), keeping what was typed; elsewhere
        it quits."""
        from textual.widgets import Input

        if isinstance(self.focused, Input):
            self.set_focus(None)
        else:
            self.app.exit()

    def __init__(self, runs_root: Path = Path("runs"), beside: Path | None = None):
        """``beside``: the folder of a run opened outside ``runs_root`` (Esc from it), whose runs are listed too;
        new runs still go to ``runs_root``."""
        super().__init__()
        self.runs_root = runs_root
        self.beside = beside if beside is not None and not _same_folder(beside, runs_root) else None
        self.runs: list[Path] = []

    def _folders(self, joint: str) -> str:
        return f"{self.runs_root}/" + (f" {joint} {self.beside}/" if self.beside is not None else "")

    def compose(self) -> ComposeResult:
        yield Static("makemore · open a run, or train a new one", id="start-title")
        with Horizontal(id="start-body"):
            with Vertical(id="runs-panel"):
                yield OptionList(id="runs")
            with FormScroll(id="new-run"):
                from makemore.data import builtin_datasets

                yield Label(f"data: a file, or {', '.join(sorted(builtin_datasets()))}")
                yield Input(value="names", id="data")
                yield Label("model type")
                yield Select([(name, name) for name in FAMILIES], value=next(iter(FAMILIES)), allow_blank=False,
                             id="type")
                yield Label("model options (name=value …)\n[dim]a text also: mode=text tokenizer=FILE block_size=N[/]")
                yield Input(placeholder="", id="hyper")
                with Horizontal(classes="row"):
                    with Vertical():
                        yield Label("max steps")
                        yield Input(id="max_steps", type="integer")
                    with Vertical():
                        yield Label("batch size")
                        yield Input(id="batch_size", type="integer")
                    with Vertical():
                        yield Label("learning rate")
                        yield Input(id="learning_rate", type="number")
                yield Label("time budget (90, 90s, 5m, 1h; empty: the step budget)")
                yield Input(id="max_time", placeholder="none")
                yield Button("Train", variant="primary", id="train")
                yield Static("", id="form-error")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#runs", OptionList).border_title = f"Recent runs in {self._folders('and')}"
        self.query_one("#new-run").border_title = "New run · Enter in any field trains"
        self.action_reload()
        self._defaults(self.query_one("#type", Select).value)

    def on_resize(self) -> None:
        self.set_class(self.app.size.width < NARROW_BELOW, "-narrow")  # the list over the form

    def on_screen_resume(self) -> None:
        self.action_reload()  # back from a run: its state may have changed

    def action_reload(self) -> None:
        runs = self.query_one("#runs", OptionList)
        runs.clear_options()
        found = recent_runs(self.runs_root, beside=self.beside)
        self.runs = [p for p, _, _ in found]
        if found:
            runs.add_options([Option(text, id=str(i), disabled=not readable)
                              for i, (_, text, readable) in enumerate(found)])
            runs.highlighted = next((i for i, (_, _, readable) in enumerate(found) if readable), None)
            runs.focus()
        else:
            runs.add_option(Option(f"no runs in {self._folders('or')} yet", disabled=True))
            self.query_one("#data", Input).focus()

    @on(Select.Changed, "#type")
    def _type_changed(self, event: Select.Changed) -> None:
        self._defaults(event.value)

    @on(Input.Changed, "#data")
    @on(Input.Changed, "#hyper")
    @on(Input.Changed, "#max_steps")
    @on(Input.Changed, "#max_time")
    def _data_changed(self) -> None:
        # a text trains with the text recipe; a time budget alone with that budget's settings
        self._defaults(self.query_one("#type", Select).value)

    def _mode(self, model_type: str) -> str:
        """words or text: what the form's data and options train on now (words while they cannot say)."""
        from makemore.tui import backend
        from makemore.training import resolve_mode

        try:
            options = parse_hyper(self.query_one("#hyper", Input).value)
            own = request_options(options)
            data = self.query_one("#data", Input).value.strip() or None
            return resolve_mode(backend.new_request(data=data, model_type=model_type, **own))
        except (MakemoreError, OSError):  # (a name the system refuses: said when Train is pressed)
            return "words"

    def _defaults(self, model_type) -> None:
        """The placeholders: the family's defaults, for a text its text recipe's (as training takes them)."""
        from makemore.models import text_defaults

        family = FAMILIES.get(str(model_type))
        if family is None:
            return
        mode = self._mode(family.name)
        recipe = recipe_for(family.name, mode)
        if mode == "text":
            block, hyper = text_defaults(family.name)
            shown = {**hyper, "block_size": block}
        else:
            shown = dict(family.hyper)
        try:  # --max-time without --max-steps: the budget's tier, as training takes it (training.check_request)
            budget = parse_duration(self.query_one("#max_time", Input).value)
        except MakemoreError:  # (said when Train is pressed)
            budget = None
        timed = budget is not None and not self.query_one("#max_steps", Input).value.strip()
        tier = family.for_budget(budget, mode) if timed else {}
        shown.update((k, v) for k, v in tier.items() if k in shown)
        recipe = {**recipe, **{k: v for k, v in tier.items() if k not in shown}}
        self.query_one("#hyper", Input).placeholder = " ".join(f"{k}={v}" for k, v in shown.items())
        for key in ("max_steps", "batch_size", "learning_rate"):
            self.query_one(f"#{key}", Input).placeholder = f"{recipe[key]:g}"
        if timed:
            self.query_one("#max_steps", Input).placeholder = "none"  # the budget ends the run

    @on(OptionList.OptionSelected, "#runs")
    def _open(self, event: OptionList.OptionSelected) -> None:
        from makemore.tui.run_screen import RunScreen

        path = self.runs[int(event.option.id)]
        self.app.push_screen(RunScreen(follow=path))

    @on(Button.Pressed, "#train")
    @on(Input.Submitted)
    def _train(self) -> None:
        from makemore.tui import backend
        from makemore.tui.run_screen import RunScreen

        error = self.query_one("#form-error", Static)
        try:
            request = backend.check_before_screen(self.request())  # as `makemore tui DATA ...` checks it
        except OSError as e:  # a name the system refuses (too long, no permission): one line, as the CLI says it
            from makemore.errors import refusal

            error.update(Text(refusal(e) or f"{e.filename or ''}: {e.strerror or e}", style="bold red"))
            error.add_class("-shown")
            return
        except MakemoreError as e:
            error.update(Text(str(e), style="bold red"))
            error.add_class("-shown")  # docked at the foot of the form: in view at any size and scroll
            return
        error.update("")
        error.remove_class("-shown")
        self.app.push_screen(RunScreen(request=request))

    def request(self):
        """The form as a training request (refused in one line naming the field)."""
        from makemore.tui import backend

        data = self.query_one("#data", Input).value.strip()
        if not data:
            raise MakemoreError("name a word list or a text (a file, or a built-in dataset)")
        model_type = str(self.query_one("#type", Select).value)
        hyper = parse_hyper(self.query_one("#hyper", Input).value)
        own = request_options(hyper)  # mode, tokenizer, block_size: the request's
        hyper = with_switches(hyper, model_type)
        train = {
            "max_steps": _number(self.query_one("#max_steps", Input).value, int, "max steps", 1, MAX_STEPS),
            "batch_size": _number(self.query_one("#batch_size", Input).value, int, "batch size", 1),
            "learning_rate": _number(self.query_one("#learning_rate", Input).value, float, "learning rate",
                                     positive=True),
            "max_time": parse_duration(self.query_one("#max_time", Input).value),
        }
        from makemore.tui.diagnostics_screen import with_tui_defaults

        return backend.new_request(data=data, model_type=model_type, hyper=hyper, train=with_tui_defaults(train),
                                   **own)
