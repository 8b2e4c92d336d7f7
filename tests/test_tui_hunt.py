"""Defects from a bug hunt, each through Textual's Pilot on a small run directory written by hand (no training):
a failed run's step and ETA, the stall of an abandoned run, a metrics.jsonl that is no file, the damaged lines
counted as `makemore info` counts them, the overlay's table, chart and markers, a diverged run's y axis, a text
run's P(next) labels, and the titles and keys that name what is there."""

from __future__ import annotations

import math
import os
import re
import time
from pathlib import Path

import pytest

from makemore import rundir
from makemore.events import Bigrams, Eval, Failed, Started, Step

pytest.importorskip("textual")

from makemore.tui.app import create_app  # noqa: E402
from makemore.tui.overlay import looks  # noqa: E402
from makemore.tui.widgets.bigram_table import BigramTable  # noqa: E402
from makemore.tui.widgets.run_legend import RunsTable  # noqa: E402
from test_tui_compare import VOCAB, append, scripted, write_run  # noqa: E402
from tui_helpers import screen_lines, screen_text, text_of, wait_for  # noqa: E402

COMPACT = (80, 24)


def diverged(run: Path) -> list:
    """A run that diverged at step 14 of 100, its last progress record at step 10 (as `--learning-rate 1e4`)."""
    return [Started(run_dir=str(run), model_type="mlp", num_params=11_897, device="cpu", dataset="names",
                    num_words=1_800, vocab=VOCAB, max_steps=100, batch_size=32),
            Step(step=10, loss=7.7e24, lr=1e4, steps_per_s=88.3, tokens_per_s=244_214.0, elapsed=0.11),
            Failed(step=14, message="training diverged: the loss became NaN or infinite at step 14")]


# --- 1. a failed run: the step it failed at, and no time left to count down ---------------------------------

async def test_a_failed_run_shows_the_step_it_failed_at_and_no_eta(tmp_path):
    """A run that diverged at step 14 showed `step 10 / 100   eta 0:07` forever beside `✖ failed`."""
    run = tmp_path / "div"
    write_run(run, "mlp", 11_897, diverged(run))
    app = create_app(follow=run, poll_interval=0.05)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = app.run_screen()
        await wait_for(pilot, lambda: screen.snap.failed is not None, what="the failure")
        await pilot.pause(0.1)
        stats = text_of(app, "#stats")
        assert "failed" in text_of(app, "#status")
        assert "step 14 / 100" in stats, stats
        assert re.search(r"eta +- ", stats), stats
