"""Everything the TUI takes from makemore's core besides events and the trainer, imported here and only here,
so that a module moving in the core is a change of one line in this file.

Each function imports lazily: the start screen must appear before torch has been imported.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from makemore import rundir

METRICS = rundir.METRICS
CONFIG = rundir.CONFIG
BEST = rundir.BEST


def is_run_dir(path: Path) -> bool:
    return rundir.RunDir.is_run(Path(path))


def run_lock(run_dir: Path):
    return rundir.RunDir(run_dir).lock()


def jsonl_sink(run_dir: Path):
    from makemore.sinks import JsonlSink

    return JsonlSink(run_dir)


def drive(trainer, sinks) -> None:
    """The one training loop (the CLI's and the API's too): every event to every sink, then the sinks closed."""
    from makemore.training import drive as run

    run(trainer, sinks)


def load_run(run_dir: Path, which: str = "best"):
    """The run's model on the CPU in eval mode, with its vocabulary, step and split (``rundir.LoadedRun``)."""
    return rundir.RunDir.open(Path(run_dir)).load_model(which, device="cpu")


def recent_runs(root: Path) -> list:
    """The run directories under ``root``, most recently changed first (``rundir.RunDir``)."""
    return rundir.list_runs(Path(root))


def model_of(run_dir: Path) -> tuple[str, dict[str, Any]]:
    """(model type, hyperparameters) from the run's validated config.json."""
    model = rundir.RunDir(Path(run_dir)).config.model
    return model.type, model.hyper


def training_words(run_dir: Path) -> list[str]:
    """The training words stored in split.json (empty when absent or unreadable: the table then says so)."""
    from makemore.errors import MakemoreError

    try:
        split = rundir.RunDir(Path(run_dir)).split()
    except MakemoreError:
        return []
    return list((split or {}).get("train", []))


def new_request(**fields):
    from makemore.training import Request

    return Request(**fields)


def check_request(request, type_given: bool = False):
    """The request with its preset applied (where it names one; the given values win), a bad option (and, on
    tokens, an unreadable tokenizer file) refused before a screen opens, as `makemore train` refuses it."""
    from makemore.training import check_with_preset

    return check_with_preset(request, type_given)[0]


def new_trainer(request):
    """(trainer, notes): the notes are what the command line prints after "note: " before training."""
    from makemore.training import check_request, data_notes, late_notes
    from makemore.training import new_trainer as build

    checked = check_request(request)
    trainer, prepared = build(request, checked=checked)
    return trainer, data_notes(prepared, request.model_type, checked[1].batch_size) + late_notes(request.model_type,
                                                                                                  trainer)


def check_before_screen(request, type_given: bool = False, max_len: int | None = None):
    """What `makemore tui DATA ...` and the start screen's form check before a run's screen opens: the request
    with its preset applied (``check_request``), and a word list read through (a text is read, and checked, when
    training starts)."""
    from makemore.training import resolve_mode

    request = check_request(request, type_given)
    if resolve_mode(request) == "words":
        check_training_options(request.data, request.model_type, request.hyper, max_len)
    return request


def check_training_options(data: str, model_type: str, hyper: dict[str, Any], max_len: int | None = None) -> None:
    """Refuse a bad word list or model option before a screen opens (the same checks as `makemore train`)."""
    from makemore.data import read_words, resolve_dataset
    from makemore.models import model_hyper

    model_hyper(model_type, hyper)
    _, path = resolve_dataset(data)
    if max_len is None:
        read_words(path)
    else:
        read_words(path, max_len)


def is_dataset_name(name: str) -> bool:
    """True when ``name`` is a built-in word list or an existing file (something to train on)."""
    from makemore.data import resolve_dataset
    from makemore.errors import MakemoreError

    try:
        _, path = resolve_dataset(name)
    except MakemoreError:
        return False
    return path.exists()  # a name with a "/" or a suffix resolves to a path whether or not it is there


def encode_words(words: list[str], vocab):
    from makemore.data import EncodedWords

    return EncodedWords(words, vocab)


def word_nll(model, encoded) -> list[float]:
    from makemore.evaluation import word_nll as nll

    return nll(model, encoded)


def generate(model, vocab, n: int, **options):
    from makemore.sample import generate as gen

    return gen(model, vocab, n, **options)


def continue_text(model, vocab, prompt: str, **options) -> str:
    """A text run's continuation of ``prompt``, as long as the trainer's samples (decoded text on a token run)."""
    from makemore.text import SAMPLE_CHARS, continuation

    return "".join(continuation(model, vocab, prompt, SAMPLE_CHARS, **options))


def tag(word: str, train: set[str], held_out: set[str]) -> str:
    from makemore.sample import tag as tag_word

    return tag_word(word, train, held_out)


def diverged_type() -> type[BaseException]:
    from makemore.trainer import Diverged

    return Diverged
