"""Text mode: one character stream, nanoGPT's 90/10 split, windows, every family, sliding sampling, resume."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from typer.testing import CliRunner

from makemore import checkpoint as ckpt
from makemore import rundir
from makemore import text as textmode
from makemore.cli import app
from makemore.errors import MakemoreError
from makemore.events import Samples, event_from_json
from makemore.models import FAMILIES, text_defaults
from makemore.models import build_model

TINY = Path(__file__).resolve().parents[2] / "shared" / "data" / "tinyshakespeare.txt"
needs_tiny = pytest.mark.skipif(not TINY.exists(), reason="Tiny Shakespeare not found beside the repository")

SMALL_HYPER = {
    "transformer": {"n_layer": 1, "n_head": 2, "n_embd": 16},
    "mlp": {"context": 4, "n_embd": 4, "n_embd2": 16},
    "wavenet": {"context": 4, "n_embd": 4, "n_embd2": 16},
    "rnn": {"n_embd": 8, "n_embd2": 16},
    "gru": {"n_embd": 8, "n_embd2": 16},
    "lstm": {"n_embd": 8, "n_embd2": 16},
    "bow": {"n_embd": 16, "n_embd2": 16},
    "ngram": {"context": 2},
    "bigram": {},
}


def _text(n_lines: int = 300) -> str:
    lines = [f"{'ROMEO' if i % 3 else 'JULIET'}:\nline {i} of the play, with words; and more words!\n"
             for i in range(n_lines)]
    return "\n".join(lines)


@pytest.fixture
def play(tmp_path) -> Path:
    path = tmp_path / "play.txt"
    path.write_text(_text(), encoding="utf-8")
    return path


def cli(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


# --- reading ------------------------------------------------------------------------------------

@pytest.mark.parametrize("chunk", [3, 7, 1 << 20])
def test_stream_round_trip_with_newlines_bom_crlf_and_non_ascii(tmp_path, monkeypatch, chunk):
    """Chunk edges fall inside CRLF pairs and multi-byte characters at the small chunk sizes."""
    monkeypatch.setattr(textmode, "CHUNK_BYTES", chunk)
    raw = "\ufeffHé said:\r\n\tcafé 中文 👩\u200d🔬\rline three\n\nend\r\n".encode("utf-8")
    path = tmp_path / "t.txt"
    path.write_bytes(raw)
    corpus = textmode.read_text(path)
    expected = raw.decode("utf-8-sig").replace("\r\n", "\n").replace("\r", "\n")
    assert textmode.decode(corpus.stream.tolist(), corpus.chars) == expected
    assert corpus.chars == sorted(set(expected)) and "\n" in corpus.chars and "\t" in corpus.chars
    assert 0 not in corpus.stream.tolist()  # id 0 (the words mode's start/stop token) never occurs
    assert corpus.stream.dtype == torch.uint8
    assert corpus.lines == expected.count("\n")


def test_wide_vocabulary_takes_a_wider_integer(tmp_path):
    path = tmp_path / "wide.txt"
    path.write_text("".join(chr(0x4E00 + i) for i in range(300)) + "\n", encoding="utf-8")
    corpus = textmode.read_text(path)
    assert corpus.stream.dtype == torch.int16
    assert textmode.decode(corpus.stream.tolist(), corpus.chars) == path.read_text(encoding="utf-8")


@pytest.mark.parametrize("raw, message", [
    (b"ok\nfine\nbad \x07 bell\n", "control character U+0007 on line 3"),
    (b"ok\n\x00\x01binary", "NUL byte on line 2"),
    (b"ok\r\nstill ok\r\n\xff\xfe", "not UTF-8 (byte 0xff on line 3)"),
    (b"", "empty file"),
])
def test_bad_text_is_refused_with_its_line(tmp_path, raw, message):
    path = tmp_path / "bad.txt"
    path.write_bytes(raw)
    with pytest.raises(MakemoreError, match=None) as e:
        textmode.read_text(path)
    assert message in str(e.value) and str(path) in str(e.value)


def test_too_large_a_file_is_refused_before_reading(tmp_path, monkeypatch):
    path = tmp_path / "big.txt"
    path.write_text("abc" * 100)
    monkeypatch.setattr(textmode, "MAX_TEXT_BYTES", 100)
    with pytest.raises(MakemoreError, match="at most"):
        textmode.read_text(path)


# --- split and windows -----------------------------------------------------------------------------

def test_the_boundary_is_nanogpts_and_batches_stay_on_their_side(play):
    corpus = textmode.read_text(play)
    n = len(play.read_text(encoding="utf-8"))
    assert len(corpus) == n and corpus.boundary == int(n * 0.9)
    batches = textmode.TextBatches(corpus, block=16)
    assert torch.equal(batches.splits["train"], corpus.stream[: int(n * 0.9)])
    assert torch.equal(batches.splits["val"], corpus.stream[int(n * 0.9):])
    starts = batches.draw(10_000, torch.Generator().manual_seed(0))
    assert int(starts.min()) >= 0 and int(starts.max()) + batches.window <= corpus.boundary
    assert int(starts.max()) + batches.window == corpus.boundary or len(set(starts.tolist())) > 100


@needs_tiny
def test_tiny_shakespeare_splits_where_nanogpt_does():
    corpus = textmode.read_text(TINY)
    assert len(corpus) == 1_115_394 and len(corpus.chars) == 65
    assert corpus.boundary == 1_003_854  # nanoGPT's prepare.py: "train has 1,003,854 tokens"


@pytest.mark.parametrize("skip", [0, 3])
def test_windows_are_the_streams_slices(play, skip):
    corpus = textmode.read_text(play)
    batches = textmode.TextBatches(corpus, block=12, skip=skip)
    starts = batches.draw(64, torch.Generator().manual_seed(1))
    x, y, extra = batches.micro_batch(starts, None, True, "cpu")
    assert extra == {} and x.shape == y.shape == (64, skip + 12)
    train = corpus.stream.long()
    for i, s in enumerate(starts.tolist()):
        assert torch.equal(x[i], train[s:s + skip + 12])
        assert torch.equal(y[i, skip:], train[s + skip + 1:s + skip + 13])
        assert bool((y[i, :skip] == -1).all())
    assert batches.targets(starts) == 64 * 12


def test_window_models_are_scored_on_full_windows_only(play):
    """stream_loss for an MLP equals its loss computed directly on every predicted position's window."""
    corpus = textmode.read_text(play)
    torch.manual_seed(0)
    model = build_model("mlp", len(corpus.chars) + 1, 16, {**FAMILIES["mlp"].hyper, **SMALL_HYPER["mlp"]}).eval()
    skip = textmode.window_skip(model)
    assert skip == 3
    stream = corpus.stream[corpus.boundary:]
    loss = textmode.stream_loss(model, stream, 16, skip)
    starts = textmode.tiling_starts(len(stream), skip + 17, 16)
    targets = torch.cat([torch.arange(s + skip + 1, s + skip + 17) for s in starts.tolist()])
    assert len(set(targets.tolist())) == len(targets)  # each character predicted once
    s = stream.long()
    windows = torch.stack([s[t - 4:t] for t in targets.tolist()])  # the 4 characters before each target
    with torch.no_grad():
        expected = F.cross_entropy(model.window_logits(windows), s[targets]).item()
    assert loss == pytest.approx(expected, rel=1e-5)


# --- models ---------------------------------------------------------------------------------------

@needs_tiny
@pytest.mark.parametrize("name", [n for n in FAMILIES if not FAMILIES[n].fitted])
def test_loss_at_initialisation_is_near_ln_65(name):
    corpus = textmode.read_text(TINY)
    block, hyper = text_defaults(name)
    torch.manual_seed(0)
    model = build_model(name, len(corpus.chars) + 1, block, hyper)
    batches = textmode.TextBatches(corpus, block, textmode.window_skip(model))
    loss = batches.evaluate(model, "val", max_tokens=4096)
    assert abs(loss - math.log(65)) < 0.1, loss


@pytest.mark.parametrize("name", list(FAMILIES))
def test_every_family_trains_a_few_steps_in_text_mode(play, tmp_path, name):
    from makemore.training import Request, new_trainer

    out = tmp_path / f"run-{name}"
    trainer, _ = new_trainer(Request(data=str(play), model_type=name, out=out, mode="text", block_size=16,
                                     hyper=SMALL_HYPER[name], device="cpu",
                                     train={"max_steps": 6, "eval_interval": 3, "warmup_steps": 1}))
    events = list(trainer.run())
    kinds = [e.kind for e in events]
    assert kinds[-1] == "finished"
    evals = [e for e in events if e.kind == "eval"]
    assert all(math.isfinite(e.val_loss) for e in evals)
    if not FAMILIES[name].fitted:
        assert evals[-1].train_loss < evals[0].train_loss
    samples = [e for e in events if isinstance(e, Samples)]
    assert samples and all(s.samples == [] and len(s.text) == textmode.SAMPLE_CHARS for s in samples)
    assert set(samples[-1].text) <= set(trainer.vocab.chars)
    table = next(e for e in events if e.kind == "bigrams").probs
    assert all(abs(sum(row) - 1) < 1e-4 for row in table)
    config = json.loads((out / rundir.CONFIG).read_text())
    n = len(play.read_text(encoding="utf-8"))
    assert config["mode"] == "text" and config["model"]["block_size"] == 16
    assert config["split"]["boundary"] == int(0.9 * n) and config["dataset"]["chars"] == n
    assert not (out / rundir.SPLIT).exists()  # the split is the boundary; the corpus is not copied


def test_count_model_counts_the_stream_like_a_direct_count(play, tmp_path, monkeypatch):
    """The ngram fitted chunk by chunk holds the counts of every (two characters, next) of the training part."""
    from makemore.training import Request, new_trainer

    monkeypatch.setattr(textmode.TextBatches, "fit", _small_chunk_fit)
    trainer, _ = new_trainer(Request(data=str(play), model_type="ngram", out=tmp_path / "ng", mode="text",
                                     block_size=16, hyper={"context": 2}, device="cpu"))
    list(trainer.run())
    train = trainer.data.splits["train"].long()
    V = len(trainer.vocab)
    expected = torch.bincount((train[:-2] * V + train[1:-1]) * V + train[2:], minlength=V ** 3)
    assert torch.equal(trainer.model.counts.view(-1), expected)


def _small_chunk_fit(self, model, device):
    """TextBatches.fit with chunks of 37 characters, so that chunk edges are crossed many times."""
    train = self.splits["train"]
    for a in range(0, len(train) - 1 - self.skip, 37):
        part = train[a:a + 37 + self.skip + 1].long()
        x, y = part[:-1][None], part[1:][None].clone()
        y[:, : self.skip] = -1
        model.fit(x, y)


# --- sampling ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["transformer", "bow", "gru", "mlp"])
def test_sampling_past_the_block_equals_recomputation_on_the_cropped_window(name):
    """Greedy continuation far past the block with the incremental state (KV cache, running sum, hidden
    state, window) gives the logits of a full forward pass on the last block_size tokens at every step."""
    torch.manual_seed(3)
    V, block = 11, 8
    hyper = {**FAMILIES[name].hyper, **SMALL_HYPER[name]}
    model = build_model(name, V, block, hyper).eval()
    with torch.no_grad():  # random weights large enough that greedy decoding does not get stuck in a loop
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.5)
    prompt = [3, 1, 4, 1, 5]
    got = list(textmode.continue_ids(model, prompt, 40, lambda row: int(row.argmax())))
    history = list(prompt)
    for token, logits in got:
        limit = model.context_limit
        idx = torch.tensor([history[-limit:] if limit else history])
        with torch.no_grad():
            full, _ = model(idx)
        expected = full[0, -1].clone()
        expected[0] = float("-inf")
        assert torch.allclose(logits, expected, atol=1e-4), (name, len(history))
        assert token == int(expected.argmax())
        history.append(token)
    assert len(history) == len(prompt) + 40 > 4 * block


@pytest.mark.parametrize("name", ["mlp", "wavenet"])
def test_a_window_model_s_short_prompt_is_padded_with_newlines_not_the_start_token(name):
    """A window model trained on a text never sees id 0 (the word lists' start token), yet a prompt shorter than
    its window was padded with it: from the default prompt, a newline, it drew garbage (`[[[[]]N[]`) until the
    window filled. It is padded with the text's newlines: a short prompt is continued as the same prompt with
    newlines in front."""
    torch.manual_seed(4)
    chars = list("\n abcdefghij")
    hyper = {**FAMILIES[name].hyper, **SMALL_HYPER[name]}
    model = build_model(name, len(chars) + 1, 8, hyper).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.5)
    context = hyper["context"]
    greedy = {"temperature": 0}
    for prompt in ("\n", "ab"):
        short = "".join(textmode.generate_text(model, chars, prompt, 30, **greedy))
        padded = "".join(textmode.generate_text(model, chars, "\n" * (context - len(prompt)) + prompt, 30, **greedy))
        assert short == padded, (prompt, short, padded)
    ids = textmode.encode("ab", chars)
    with torch.no_grad():  # what the start token in front gives instead: other logits
        unpadded, _ = model.decode(torch.tensor([ids]), model.init_state(1, torch.device("cpu")))
    first = next(textmode.continue_ids(model, ids, 1, lambda row: int(row.argmax()), pad=1))[1]
    assert not torch.allclose(first[1:], unpadded[0, 1:])


def test_sampling_streams_draws_and_refuses_unknown_prompt_characters(play, tmp_path):
    run = tmp_path / "run"
    r = cli("train", play, "--mode", "text", "-o", run, "--n-layer", "1", "--n-head", "2", "--n-embd", "16",
            "--block-size", "16", "--max-steps", "4", "--eval-interval", "2", "-q")
    assert r.exit_code == 0, r.output
    started = json.loads((run / "metrics.jsonl").read_text().splitlines()[0])
    vocab = [line for line in cli("info", run).stdout.splitlines() if line.startswith("vocab")]
    assert vocab and vocab[0].split()[1:3] == [str(len(started["vocab"])), "symbols:"]  # as training counted them
    r = cli("sample", run, "--prompt", "ROMEO:", "--length", "50", "--seed", "7")
    assert r.exit_code == 0, r.output
    assert r.stdout.startswith("ROMEO:") and len(r.stdout.rstrip("\n")) >= 50
    again = cli("sample", run, "--prompt", "ROMEO:", "--length", "50", "--seed", "7", "--json")
    assert json.loads(again.stdout)["samples"][0]["text"] == r.stdout[:-1]  # the same draw, as JSON
    several = cli("sample", run, "--prompt", "ROMEO:", "--length", "40", "-n", "3", "--seed", "3",
                  "-O", tmp_path / "three.txt")
    drawn = json.loads(cli("sample", run, "--prompt", "ROMEO:", "--length", "40", "-n", "3", "--seed", "3",
                           "--json").stdout)["samples"]
    apart = "\n" + "-" * 15 + "\n"  # a blank line apart, they could not be told from a text's own blank lines
    assert (tmp_path / "three.txt").read_text() == apart.join(d["text"] for d in drawn) + "\n"
    assert several.stdout == (tmp_path / "three.txt").read_text()  # printed as written
    # a CR the model read as LF is printed and recorded as LF (it echoed the CR, which the model never saw)
    crlf = json.loads(cli("sample", run, "--prompt", "ROMEO:\r\nO", "--length", "5", "--json").stdout)
    assert crlf["prompt"] == "ROMEO:\nO" and crlf["samples"][0]["text"].startswith("ROMEO:\nO")
    assert cli("sample", run, "--prompt", "ROMEO:\rO", "--length", "5").stdout.startswith("ROMEO:\nO")
    r = cli("sample", run, "--prompt", "ROMEO:Ω", "--length", "5")
    assert r.exit_code == 2 and "'Ω'" in r.output and "not in the model's vocabulary" in r.output
    assert "Traceback" not in r.output
    r = cli("sample", run, "--prefix", "ab")
    assert r.exit_code == 2 and "--prefix applies to word lists" in r.output
    r = cli("eval", run, "--json")
    result = json.loads(r.stdout)
    assert result["on"] == "val split" and result["bpc"] == pytest.approx(result["loss"] / math.log(2))
    # a val split within training's evaluation budget is scored whole there too (its last partial window was
    # left out): the best val is eval's figure for the best checkpoint
    assert result["loss"] == pytest.approx(json.loads(cli("info", run, "--json").stdout)["best_val_loss"], abs=1e-5)
    r = cli("eval", run, play, "--json")
    assert json.loads(r.stdout)["chars"] == len(play.read_text(encoding="utf-8")) - 1


@pytest.mark.parametrize("length", [8 * 5 + 1, 8 * 5 + 6, 8 * 9 + 3])
def test_eval_scores_every_character_of_a_file_and_of_a_split_once(play, tmp_path, length):
    """Windows tile the stream; where they stop short of its end, a last window scores the rest (before, up to
    a block's worth of characters at the end went unscored while the count included them)."""
    import torch
    import makemore

    run = tmp_path / "run"
    r = cli("train", play, "--mode", "text", "--type", "bigram", "--block-size", "8", "--max-steps", "60", "-o", run,
            "-q")
    assert r.exit_code == 0, r.output
    text = play.read_text()[:length]
    part = tmp_path / "part.txt"
    part.write_text(text)
    model = makemore.load(run)
    got = model.evaluate(part)
    chars = model._loaded.vocab.chars
    ids = torch.tensor([chars.index(c) + 1 for c in text])
    with torch.no_grad():  # a bigram's prediction depends on the previous character alone: one pass scores all
        logits, _ = model.module(ids[None, :-1])
        expected = torch.nn.functional.cross_entropy(logits[0], ids[1:]).item()
    assert got["chars"] == length - 1 and got["loss"] == pytest.approx(expected, rel=1e-5)
    whole = play.read_text()
    val_text = tmp_path / "val.txt"
    val_text.write_text(whole[int(len(whole) * 0.9):])  # the val split: the last 10%
    on_split, on_file = model.evaluate(), model.evaluate(val_text)
    assert on_split["chars"] == on_file["chars"] == len(whole) - int(len(whole) * 0.9) - 1
    assert on_split["loss"] == pytest.approx(on_file["loss"], rel=1e-6)


def test_a_text_without_a_newline_trains_and_samples_from_a_space(tmp_path):
    """A continuation with no prompt starts from a newline; a text that has none starts from a space instead
    (before, its first evaluation's sample failed on the newline, leaving a half-made run)."""
    text = tmp_path / "line.txt"
    text.write_text("to be or not to be, that is the question. " * 60)
    run = tmp_path / "run"
    r = cli("train", text, "--mode", "text", "--type", "bigram", "--block-size", "8", "--max-steps", "4",
            "--eval-interval", "2", "-o", run, "-q")
    assert r.exit_code == 0, r.output
    drawn = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    texts = [d["text"] for d in drawn if d["event"] == "samples"]
    assert texts and all(t and set(t) <= set(text.read_text()) for t in texts)
    r = cli("sample", run, "--length", "30", "--json")
    assert r.exit_code == 0, r.output
    sample = json.loads(r.stdout)["samples"][0]["text"]
    assert sample.startswith(" ") and len(sample) == 31
    import makemore

    continued = makemore.load(run).continue_text(length=12)
    assert len(continued) == 12 and set(continued) <= set(text.read_text())


# --- runs -------------------------------------------------------------------------------------------

def test_resume_of_a_text_run_continues_exactly(play, tmp_path):
    common = ["--mode", "text", "--n-layer", "1", "--n-head", "2", "--n-embd", "16", "--block-size", "16",
              "--eval-interval", "3", "--warmup-steps", "2", "-q"]
    straight, halves = tmp_path / "straight", tmp_path / "halves"
    assert cli("train", play, "-o", straight, "--max-steps", "6", *common).exit_code == 0
    assert cli("train", play, "-o", halves, "--max-steps", "3", *common).exit_code == 0
    r = cli("train", "--resume", halves, "--max-steps", "6", "-q")
    assert r.exit_code == 0, r.output
    a, _ = ckpt.load_tensors(straight / rundir.LAST)
    b, _ = ckpt.load_tensors(halves / rundir.LAST)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    play.write_text(_text() + "changed\n", encoding="utf-8")
    r = cli("train", "--resume", halves, "--max-steps", "9", "-q")
    assert r.exit_code == 2 and "changed since the run began" in r.output


def test_builtin_shakespeare_is_text_by_nature():
    from makemore.data import builtin_datasets
    from makemore.training import Request, resolve_mode

    assert "shakespeare" in builtin_datasets()
    assert resolve_mode(Request(data="shakespeare")) == "text"
    assert resolve_mode(Request(data="names")) == "words"
    corpus = textmode.read_text(builtin_datasets()["shakespeare"])
    assert 900_000 < len(corpus) < 1_300_000
    assert "gutenberg" not in textmode.decode(corpus.stream.tolist(), corpus.chars).lower()


def test_prose_read_as_words_points_to_text_mode(tmp_path):
    path = tmp_path / "prose.txt"
    path.write_text("".join(f"This is a long line of running text, number {i}, that goes on and on and on.\n"
                            if i % 5 else f"Short line {i}.\n" for i in range(50)), encoding="utf-8")
    r = cli("train", path, "--max-steps", "1", "-o", tmp_path / "run")
    assert r.exit_code == 2 and "--mode text" in r.output and "40 of 50 distinct words (lines) are longer" in r.output
    assert not (tmp_path / "run").exists()
    path.write_text("".join(f"Line {i} is long enough for everyone.\n" for i in range(50)), encoding="utf-8")
    r = cli("train", path, "--max-steps", "1", "-o", tmp_path / "run2", "--n-layer", "1", "--n-embd", "16",
            "--n-head", "2")
    assert r.exit_code == 0 and "--mode text trains on the file as one stream" in r.output


def test_samples_event_with_text_round_trips_through_json():
    event = Samples(step=5, temperature=0.8, samples=[], text="ROMEO:\nWhat, ho!\n\tand [bold]so[/] on")
    back = event_from_json(json.loads(json.dumps(event.to_json())))
    assert back == event
    words = event_from_json({"event": "samples", "step": 1, "temperature": 1.0,
                             "samples": [{"word": "emma", "tag": "new"}]})
    assert words.text is None and words.samples[0].word == "emma"


@pytest.mark.parametrize("n_lines", [300, 3000])
def test_info_says_when_the_best_val_loss_is_on_a_part_of_val(tmp_path, n_lines):
    """Training scores a text run on a fixed part of val (``EVAL_TOKENS``); `info` says so when val is longer,
    and nothing when that part is all of it."""
    from makemore.text import EVAL_TOKENS

    play = tmp_path / "play.txt"
    play.write_text(_text(n_lines), encoding="utf-8")
    run = tmp_path / "run"
    assert cli("train", play, "--mode", "text", "-o", run, "--n-layer", "1", "--n-head", "2", "--n-embd", "16",
               "--block-size", "16", "--max-steps", "2", "-q").exit_code == 0
    val = json.loads((run / "config.json").read_text())["split"]["val"]
    shown = CliRunner().invoke(app, ["info", str(run)], env={"COLUMNS": "250"}).stdout
    part = f"@ step 2 · on {EVAL_TOKENS:,} characters of val (`makemore eval` scores all of it)"
    assert (part in shown) == ((val - 17) // 16 + 1 > EVAL_TOKENS // 16), (val, shown)  # windows of 16 (and 1)


def test_the_part_of_val_info_names_for_tokens_and_shards():
    """A token run's part is in tokens; a shard run's `makemore eval` scores its first ``MAX_EVAL_TOKENS``. A val
    whose windows fit within training's part is scored whole there (``text.stream_loss``): nothing is said, where
    info said "on 8,192 of val" of a val of 8,302 scored whole by both."""
    from makemore.commands import _scored_part
    from makemore.text import EVAL_TOKENS
    from makemore.tokentext import MAX_EVAL_TOKENS

    assert EVAL_TOKENS == 8192
    assert _scored_part({"val": EVAL_TOKENS}, "tokens", 16, None) == ""  # all of val, scored at each evaluation
    assert _scored_part({"val": "?"}, "tokens", 16, None) == ""  # an edited config.json: nothing claimed
    assert _scored_part({"val": 9000}, "tokens", "?", None) == ""
    # windows of 17 tokens, 16 apart: 512 of them, as many as an evaluation scores, tile 8,208 tokens
    assert _scored_part({"val": 8208}, "tokens", 16, None) == ""
    assert _scored_part({"val": 8209}, "tokens", 16, None).endswith(f"{EVAL_TOKENS:,} tokens of val "
                                                                   f"(`makemore eval` scores all of it)")
    assert _scored_part({"val": 8211}, "tokens", 16, 4) == ""  # a window model's 3 tokens of context in front
    assert _scored_part({"val": 8212}, "tokens", 16, 4) != ""
    assert _scored_part({"val": 8302}, "characters", 256, None) == ""  # (the case info got wrong)
    big = {"kind": "shards", "val": MAX_EVAL_TOKENS + 1}
    assert _scored_part(big, "tokens", 16, None).endswith(f"(`makemore eval` scores its first {MAX_EVAL_TOKENS:,})")
    assert _scored_part({**big, "val": MAX_EVAL_TOKENS}, "tokens", 16, None).endswith("scores all of it)")


def test_info_reads_a_long_metrics_file_without_loading_it(tmp_path, play, monkeypatch):
    run = tmp_path / "run"
    assert cli("train", play, "--mode", "text", "-o", run, "--n-layer", "1", "--n-head", "2", "--n-embd", "16",
               "--block-size", "16", "--max-steps", "2", "-q").exit_code == 0
    with open(run / rundir.METRICS, "a", encoding="utf-8") as f:
        for i in range(20_000):
            f.write(json.dumps({"event": "step", "step": 10 + i, "loss": 2.0, "lr": 1e-3, "steps_per_s": 1.0,
                                "tokens_per_s": 1.0, "elapsed": float(i)}) + "\n")
            if i % 1000 == 0:
                f.write(json.dumps({"event": "eval", "step": 10 + i, "train_loss": 2.0, "val_loss": 3.0 - i / 1e5,
                                    "best_val_loss": 0.0, "best_step": 0}) + "\n")
        f.write('{"event": "eval", "step": 99999, "val_loss": 0.1')  # a torn last line is skipped
    monkeypatch.setattr(Path, "read_text", _no_metrics_read_text(Path.read_text))
    monkeypatch.setattr(Path, "read_bytes", _no_metrics_read_text(Path.read_bytes))
    r = cli("info", run, "--json")
    assert r.exit_code == 0, r.output
    info = json.loads(r.stdout)
    assert info["steps"] == 10 + 19_999 and info["best_step"] == 10 + 19_000 and info["mode"] == "text"


def _no_metrics_read_text(original):
    def read_text(self, *args, **kwargs):
        if self.name == rundir.METRICS:
            raise AssertionError("metrics.jsonl read whole")
        return original(self, *args, **kwargs)
    return read_text


async def test_a_text_run_trains_and_replays_in_the_tui_without_failing(play, tmp_path):
    """The TUI renders text runs (the engineer of the screen owns how); here: nothing breaks on one."""
    import time

    from makemore.training import Request, new_trainer
    from makemore.tui.app import create_app

    run = tmp_path / "run"
    trainer, _ = new_trainer(Request(data=str(play), out=run, mode="text", block_size=16, device="cpu",
                                     hyper=SMALL_HYPER["transformer"], train={"max_steps": 4, "eval_interval": 2}))
    app = create_app(trainer=trainer, poll_interval=0.05, chart_interval=0.05)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = app.run_screen()
        deadline = time.monotonic() + 60
        while screen.state.snapshot().finished is None:
            assert time.monotonic() < deadline, "the text run did not finish in the TUI"
            await pilot.pause(0.05)
        await pilot.pause(0.2)
        assert screen.state.snapshot().samples.text is not None
    app = create_app(follow=run, poll_interval=0.05)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause(0.5)
        assert app.run_screen().state.snapshot().finished is not None


def test_the_python_api_trains_and_continues_text(play, tmp_path):
    import makemore

    run = makemore.train(play, mode="text", block_size=16, out=tmp_path / "run", max_steps=2, n_layer=1,
                         n_head=2, n_embd=16, progress=False, device="cpu")
    model = run.model
    text = model.continue_text("ROMEO", 40, seed=1)
    assert len(text) == 40 and set(text) <= set(play.read_text(encoding="utf-8"))
    assert text == model.continue_text("ROMEO", 40, seed=1)
    with pytest.raises(MakemoreError, match="a text run"):
        model.sample(3)
    # evaluate: nats and bits per character on the val split, as `makemore eval --json` gives them
    result = model.evaluate()
    assert result["bpc"] == pytest.approx(result["loss"] / math.log(2)) and result["loss_unit"] == "nats/char"
    printed = cli("eval", run.run_dir, "--json")
    assert printed.exit_code == 0, printed.output
    assert result == json.loads(printed.stdout)


def test_a_text_time_budget_takes_its_tiers_shape_and_spreads_its_schedule(play):
    """`--max-time 600` on text: the budget tier's deeper model and learning rate over the default's, no step
    limit, so the schedule follows the clock, and evaluations spaced for a long run; a shorter budget is the
    plain recipe with the clock deciding."""
    from makemore.training import Request, check_request, text_block_size

    family = FAMILIES["transformer"]
    seconds, settings = family.text.budgets[0]
    plain_hyper, plain = check_request(Request(data=str(play), mode="text"))
    hyper, cfg = check_request(Request(data=str(play), mode="text", train={"max_time": 600}))
    assert cfg.max_steps == 0 and cfg.max_time == 600
    assert plain_hyper == {**family.hyper, **family.text.hyper}
    assert hyper == {**plain_hyper, "n_layer": settings["n_layer"]} != plain_hyper
    assert cfg.eval_interval == settings["eval_interval"] != plain.eval_interval
    assert cfg.learning_rate == settings["learning_rate"] != plain.learning_rate
    assert cfg.batch_size == plain.batch_size
    assert text_block_size(Request(data=str(play), mode="text", train={"max_time": 600})) == family.text.block_size
    _, short = check_request(Request(data=str(play), mode="text", train={"max_time": seconds / 2}))
    assert short.eval_interval == plain.eval_interval and short.max_steps == 0


def test_a_stream_shorter_than_a_window_is_counted_in_the_right_number():
    from makemore.text import stream_loss

    with pytest.raises(MakemoreError, match="^1 character is fewer than one window of 5$"):
        stream_loss(None, [7], 4, 0, None, None)
    with pytest.raises(MakemoreError, match="^3 tokens are fewer than one window of 5$"):
        stream_loss(None, [7, 8, 9], 4, 0, None, None, unit="token")


def test_a_prompt_of_bytes_that_are_not_utf8_is_refused_by_name():
    """A prompt typed with a byte that is not UTF-8 reached a token run's tokenizer, which was blamed (and the
    prompt had been printed before the refusal)."""
    from makemore.errors import MakemoreError
    from makemore.text import check_prompt

    with pytest.raises(MakemoreError, match=r"^--prompt: not UTF-8 \(byte 0xff\)$"):
        check_prompt("a\udcff")
    assert check_prompt("a\r\nb") == "a\nb"


def test_a_character_texts_embedding_leaves_out_the_index_it_never_uses(play, tmp_path):
    """A text has no start or stop: index 0 never occurs, so its untrained row is left out of the projection, and
    the characters are labelled as they are ('.' before was both that row and the full stop)."""
    from makemore.events import event_from_json
    from makemore.instruments import token_labels
    from makemore.tui.diagnostics_screen import DiagnosticsHistory

    play.write_text(play.read_text() + "The end.\n", encoding="utf-8")  # a full stop among the characters
    chars = sorted(set(play.read_text()))
    labels = token_labels(chars, start=False)
    for recorded in (False, True):
        run = tmp_path / f"run{int(recorded)}"
        flags = ["--diagnostics", "--diag-interval", "1"] if recorded else []
        made = cli("train", play, "--mode", "text", "--n-layer", "1", "--n-embd", "16", "--n-head", "2",
                   "--block-size", "16", "--max-steps", "2", "-b", "4", "-q", "-o", run, *flags)
        assert made.exit_code == 0, made.output
        report = json.loads(cli("diagnose", run, "--json").stdout)
        assert report["labels"] == labels and len(report["embedding"]) == len(chars)
        assert labels.count(".") == 1 and "'\\n'" in labels
    events = [event_from_json(json.loads(line)) for line in (run / "metrics.jsonl").read_text().splitlines()]
    history = DiagnosticsHistory()
    for event in events:
        history.apply(event)
    assert history.labels == labels and len(history.latest.embedding) == len(chars)


def test_resume_takes_the_runs_own_text_where_it_was_moved_and_refuses_another(play, tmp_path):
    """A project moved elsewhere: the run's text is no longer at the path config.json names, and giving it again
    at its new path was refused as "not the data this run was trained on". The same bytes (sha256) are taken,
    and config.json records where they are now; a different text is still refused."""
    run = tmp_path / "run"
    common = ["--n-layer", "1", "--n-embd", "16", "--n-head", "2", "--block-size", "16", "-b", "4", "-q"]
    made = cli("train", play, "--mode", "text", *common, "--max-steps", "2", "-o", run)
    assert made.exit_code == 0, made.output
    moved = tmp_path / "elsewhere" / "play.txt"
    moved.parent.mkdir()
    play.rename(moved)
    other = tmp_path / "other.txt"
    other.write_text(moved.read_text() + "more\n", encoding="utf-8")
    refused = cli("train", other, "--resume", run, "--max-steps", "4")
    assert refused.exit_code == 2 and "is not the data this run was trained on" in refused.output
    gone = cli("eval", run)
    assert gone.exit_code == 2 and f"record where it is now with `makemore train FILE --resume {run}`" in gone.output
    # a finished run: nothing to train, but the path is taken; what eval advised is done, so it exits 0 (it was
    # an error, exit 2, for a command that did what it was asked)
    finished = cli("train", moved, "--resume", run)
    assert finished.exit_code == 0 and f"{run}: finished, with nothing to continue; where its data is now is " \
        "recorded" in finished.output, finished.output
    assert f"reads its data from {moved.resolve()} from now on" in finished.output
    short = cli("train", moved, "--resume", run, "--max-steps", "1")  # a length asked for: refused, as before
    assert short.exit_code == 2 and "already trained 2 of 1 step" in short.output
    assert cli("eval", run, "--json").exit_code == 0  # and the run reads its text from there from now on
    resumed = cli("train", moved, "--resume", run, "--max-steps", "4", "-q")
    assert resumed.exit_code == 0, resumed.output
    config = json.loads((run / "config.json").read_text())
    assert config["dataset"]["path"] == str(moved.resolve()) and config["train"]["max_steps"] == 4
    copy = tmp_path / "copy.txt"  # a copy, its original still there: the same bytes, taken too
    copy.write_bytes(moved.read_bytes())
    again = cli("train", copy, "--resume", run, "--max-steps", "5", "-q")
    assert again.exit_code == 0, again.output
    assert json.loads((run / "config.json").read_text())["dataset"]["path"] == str(copy.resolve())
