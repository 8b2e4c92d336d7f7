"""The screen of `makemore tui` with no argument: open a recent run, or start a new one."""

from __future__ import annotations

import time
from pathlib import Path

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Button, Footer, Input, Label, OptionList, Select, Static
from textual.widgets.option_list import Option

from makemore.errors import MakemoreError
from makemore.models import FAMILIES, recipe_for


def recent_runs(root: Path, limit: int = 30) -> list[tuple[Path, str]]:
    """(run dir, one-line description), most recently changed first; reads JSON only."""
    from makemore.rundir import list_runs

    out = []
    for run in list_runs(root)[:limit]:
        try:
            s = run.summary()
            status = run.status()
        except (MakemoreError, KeyError, TypeError, ValueError):
            continue
        best = f"best val {s['best_val_loss']:.4f}" if s["best_val_loss"] is not None else "no eval yet"
        state = status if status in ("finished", "stopped", "failed") else "unfinished"
        ago = _ago(time.time() - run.last_change())
        out.append((run.path, f"{run.path.name:<28} {s['type']:<12} step {s['steps']:>7,}  {best:<16} {state:<10} {ago}"))
    return out


def _ago(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f} {unit} ago"
    return "just now"


def _number(text: str, kind: type, name: str):
    text = text.strip()
    if not text:
        return None
    try:
        return kind(text)
    except ValueError:
        raise MakemoreError(f"{name}: {text!r} is not a number") from None


def parse_hyper(text: str) -> dict:
    """'n_layer=2 n_embd=32' -> {'n_layer': 2, 'n_embd': 32}"""
    hyper = {}
    for item in text.replace(",", " ").split():
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


class StartScreen(Screen):
    BINDINGS = [Binding("q", "app.quit", "quit"), Binding("escape", "app.quit", "quit", show=False)]

    def __init__(self, runs_root: Path = Path("runs")):
        super().__init__()
        self.runs_root = runs_root
        self.runs: list[Path] = []

    def compose(self) -> ComposeResult:
        yield Static("makemore · open a run, or train a new one", id="start-title")
        with Horizontal(id="start-body"):
            with Vertical(id="runs-panel"):
                yield OptionList(id="runs")
            with Vertical(id="new-run"):
                yield Label("word list (file, or built-in: names, surnames, words)")
                yield Input(value="names", id="data")
                yield Label("model type")
                yield Select([(name, name) for name in FAMILIES], value=next(iter(FAMILIES)), allow_blank=False,
                             id="type")
                yield Label("model options (name=value …)")
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
                yield Button("Train", variant="primary", id="train")
                yield Static("", id="form-error")
        yield Footer()

    def on_mount(self) -> None:
        runs = self.query_one("#runs", OptionList)
        runs.border_title = f"Recent runs in {self.runs_root}/"
        self.query_one("#new-run").border_title = "New run"
        found = recent_runs(self.runs_root)
        self.runs = [p for p, _ in found]
        if found:
            runs.add_options([Option(text, id=str(i)) for i, (_, text) in enumerate(found)])
            runs.focus()
        else:
            runs.add_option(Option(f"no runs in {self.runs_root}/ yet", disabled=True))
            self.query_one("#data", Input).focus()
        self._defaults(self.query_one("#type", Select).value)

    @on(Select.Changed, "#type")
    def _type_changed(self, event: Select.Changed) -> None:
        self._defaults(event.value)

    def _defaults(self, model_type) -> None:
        family = FAMILIES.get(str(model_type))
        if family is None:
            return
        recipe = recipe_for(family.name)
        self.query_one("#hyper", Input).placeholder = " ".join(f"{k}={v}" for k, v in family.hyper.items())
        for key in ("max_steps", "batch_size", "learning_rate"):
            self.query_one(f"#{key}", Input).placeholder = f"{recipe[key]:g}"

    @on(OptionList.OptionSelected, "#runs")
    def _open(self, event: OptionList.OptionSelected) -> None:
        from makemore.tui.run_screen import RunScreen

        path = self.runs[int(event.option.id)]
        self.app.push_screen(RunScreen(follow=path))

    @on(Button.Pressed, "#train")
    @on(Input.Submitted)
    def _train(self) -> None:
        from makemore.data import read_words, resolve_dataset
        from makemore.training import Request
        from makemore.models import model_hyper
        from makemore.tui.run_screen import RunScreen

        error = self.query_one("#form-error", Static)
        try:
            data = self.query_one("#data", Input).value.strip()
            if not data:
                raise MakemoreError("name a word list")
            read_words(resolve_dataset(data)[1])
            model_type = str(self.query_one("#type", Select).value)
            hyper = parse_hyper(self.query_one("#hyper", Input).value)
            model_hyper(model_type, hyper)
            train = {
                "max_steps": _number(self.query_one("#max_steps", Input).value, int, "max steps"),
                "batch_size": _number(self.query_one("#batch_size", Input).value, int, "batch size"),
                "learning_rate": _number(self.query_one("#learning_rate", Input).value, float, "learning rate"),
            }
        except MakemoreError as e:
            error.update(f"[red]{e}[/]")
            return
        error.update("")
        self.app.push_screen(RunScreen(request=Request(data=data, model_type=model_type, hyper=hyper, train=train)))
