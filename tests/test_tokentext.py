"""Token-level text mode: training on a text's tokens or on token shards, bits per character, the GPT-2 preset."""

from __future__ import annotations

import ast
import json
import math
import os
from pathlib import Path

import numpy as np
import pytest

from makemore.tokenizer import Tokenizer

TEXT = ("First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n\n"
        "First Citizen:\nYou are all resolved rather to die than to famish?\n\nAll:\nResolved. resolved.\n\n") * 40
TINY = ["--n-layer", "1", "--n-head", "2", "--n-embd", "16"]


class Result:
    def __init__(self, result):
        self.returncode, self.stdout, self.stderr = result.exit_code, result.stdout, result.output


def makemore(*args: str, cwd: Path) -> Result:
    """The command in this process (CliRunner), in the directory ``cwd``."""
    from typer.testing import CliRunner

    from makemore.cli import app

    here = os.getcwd()
    os.chdir(cwd)
    try:
        return Result(CliRunner().invoke(app, list(args), env={"COLUMNS": "200"}))
    finally:
        os.chdir(here)


@pytest.fixture(autouse=True)
def small_evaluations(monkeypatch):
    """Evaluations and samples during training sized for a test (a continuation of 400 characters and 32k
    tokens of each split at every evaluation cost most of a short run)."""
    import makemore.text

    monkeypatch.setattr(makemore.text, "EVAL_TOKENS", 2048)
    monkeypatch.setattr(makemore.text, "SAMPLE_CHARS", 40)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("tokens")
    (root / "play.txt").write_text(TEXT)
    Tokenizer.train([TEXT], vocab_size=300).save(root / "tok.json")
    return root


def test_train_eval_and_sample_a_token_model(workdir):
    result = makemore("train", "play.txt", "--mode", "text", "--tokenizer", "tok.json", *TINY, "--block-size", "16",
                      "--max-steps", "6", "--eval-interval", "3", "-b", "4", "-o", "run", cwd=workdir)
    assert result.returncode == 0, result.stderr
    run = workdir / "run"
    config = json.loads((run / "config.json").read_text())
    tok = Tokenizer.load(workdir / "tok.json")
    # the first line counts the training part in tokens, as metrics.jsonl's started event does
    train_tokens = len(tok.encode(TEXT[: int(len(TEXT) * 0.9)]))
    assert f" · {train_tokens:,} training tokens · " in result.stderr, result.stderr
    started = json.loads((run / "metrics.jsonl").read_text().splitlines()[0])
    assert started["event"] == "started" and (started["num_words"], started["unit"]) == (train_tokens, "token")
    assert (run / "tokenizer.json").read_bytes() == (workdir / "tok.json").read_bytes()
    assert config["dataset"]["tokenizer"]["sha256"] == tok.sha256
    # the vocabulary is the tokenizer's, padded to a multiple of 64 for the embedding and the head
    from safetensors.numpy import load_file

    weights = load_file(run / "model.safetensors")
    assert weights["wte.weight"].shape[0] == 320 and tok.vocab_size == 300
    info = makemore("info", "run", "--json", cwd=workdir)
    summary = json.loads(info.stdout)
    assert info.returncode == 0 and summary["vocab_size"] == 300  # the tokenizer's, not 1
    best = min((m for m in map(json.loads, (run / "metrics.jsonl").read_text().splitlines())
                if m["event"] == "eval"), key=lambda m: m["val_loss"])
    assert summary["loss_unit"] == "nats/token" and summary["best_val_bpc"] == best["val_bpc"]  # not nats / ln 2
    # a replaced tokenizer.json is named once (its refusal named config.json first, then the tokenizer's file)
    import shutil

    shutil.copytree(run, workdir / "swapped")
    Tokenizer.train([TEXT], vocab_size=280).save(workdir / "swapped" / "tokenizer.json")
    swapped = makemore("sample", "swapped", cwd=workdir)
    assert swapped.returncode == 2 and swapped.stderr == "error: swapped/tokenizer.json: not the tokenizer this run " \
        "trained with (sha256 differs from config.json)\n", swapped.stderr
    (workdir / "short.txt").write_text("All:")
    short = makemore("eval", "run", "short.txt", cwd=workdir)
    assert short.returncode == 2 and "tokens are fewer than one window of 17" in short.stderr, short.stderr

    # eval: nats per token, and bits per character of the val text (the last 10% of the characters)
    result = makemore("eval", "run", "--json", cwd=workdir)
    assert result.returncode == 0, result.stderr
    ev = json.loads(result.stdout)
    boundary = int(len(TEXT) * 0.9)
    val_text = TEXT[boundary:]
    # what was predicted: every token but the first (the context of the first window), and the text they encode
    val_ids = tok.encode(val_text)
    assert ev["tokens"] == len(val_ids) - 1 and ev["chars"] == len(val_text) - len(tok.decode(val_ids[:1]))
    assert ev["bpc"] == pytest.approx(ev["loss"] * ev["tokens"] / ev["chars"] / math.log(2))
    # training's evaluations turn nats per token into bits per character by the same counts (they used all the
    # split's tokens and characters, eval the predicted ones)
    assert best["val_bpc"] / best["val_loss"] == pytest.approx(ev["bpc"] / ev["loss"], rel=1e-9)
    assert ev["loss"] < math.log(300) + 0.5  # near the uniform loss after 6 steps, and finite

    # sample: --length counts characters of the continuation, which decodes as it streams
    result = makemore("sample", "run", "--prompt", "All:", "--length", "37", "--json", cwd=workdir)
    assert result.returncode == 0, result.stderr
    text = json.loads(result.stdout)["samples"][0]["text"]
    assert text.startswith("All:") and len(text) == len("All:") + 37
    result = makemore("sample", "run", "--prompt", "All:", "--length", "37", cwd=workdir)
    assert result.returncode == 0 and result.stdout.rstrip("\n") == text


def test_a_counted_token_model_evaluates(workdir):
    """The n-gram, fitted by counting, has buffers and no parameters: eval found its device by its parameters
    and died in a traceback."""
    result = makemore("train", "play.txt", "--tokenizer", "tok.json", "--type", "ngram", "--context", "1",
                      "--block-size", "16", "-o", "ngram", "-q", cwd=workdir)  # a bigram: 320² counts, not 320³
    assert result.returncode == 0, result.stderr
    for args in (["eval", "ngram", "--json"], ["eval", "ngram", "play.txt", "--json"]):
        result = makemore(*args, cwd=workdir)
        assert result.returncode == 0, result.stderr
        ev = json.loads(result.stdout)
        assert ev["loss_unit"] == "nats/token" and 0 < ev["loss"] < math.log(300)


def test_a_counted_models_checkpoints_hold_its_counts_not_its_zeros(workdir):
    """A trigram over 320 tokens counts in a table of 320³ = 32.8 million int64 cells (262 MB), which was written
    whole to the best, last and last-state checkpoints: 786 MB for a 7,000-character text. Its non-zero cells are
    what is stored now, and a checkpoint holding the whole table (as written before) loads alike."""
    from safetensors.torch import save_file

    from makemore import checkpoint

    result = makemore("train", "play.txt", "--tokenizer", "tok.json", "--type", "ngram", "--context", "2",
                      "--block-size", "16", "-o", "trigram", "-q", cwd=workdir)
    assert result.returncode == 0, result.stderr
    run = workdir / "trigram"
    stored = {f.name: f.stat().st_size for f in run.glob("*.safetensors")}
    assert len(stored) == 3 and max(stored.values()) < 100_000, stored
    tensors, meta = checkpoint.load_tensors(run / "model.safetensors")
    counts = tensors["counts"]
    assert counts.shape == (320 * 320, 320) and 0 < int(counts.count_nonzero()) <= int(counts.sum())
    state, _ = checkpoint.load_tensors(run / "last.state.safetensors")
    assert state["model.counts"].equal(counts)
    before = makemore("eval", "trigram", "--json", cwd=workdir)
    assert before.returncode == 0, before.stderr

    whole = {"format": meta["format"], **{k: json.dumps(v) for k, v in meta.items() if k != "format"}}
    save_file(tensors, run / "model.safetensors", metadata=whole)
    assert (run / "model.safetensors").stat().st_size > 8 * counts.numel()
    after = makemore("eval", "trigram", "--json", cwd=workdir)
    assert after.returncode == 0, after.stderr
    assert json.loads(after.stdout)["loss"] == json.loads(before.stdout)["loss"] < math.log(300)


def _in_memory(prepared):
    """The same shard run with every document copied into memory instead of memory-mapped."""
    class InMemory:
        def __init__(self, shards):
            self.index, self.tokenizer, self.folder = shards.index, shards.tokenizer, shards.folder
            self._docs = {s: [[np.array(seg) for seg in doc] for doc in shards.documents(s)] for s in ("train", "val")}

        def documents(self, split):
            return self._docs[split]

        def tokens(self, split):
            return self.index["splits"][split]["tokens"]

    import dataclasses

    return dataclasses.replace(prepared, shards=InMemory(prepared.shards))


def test_training_from_shards_equals_training_from_the_same_tokens_in_memory(workdir, tmp_path):
    from makemore.shards import prepare
    from makemore.tokentext import prepare_shards
    from makemore.training import Request, new_trainer

    docs = tmp_path / "docs"
    docs.mkdir()
    for i in range(6):
        (docs / f"{i}.txt").write_text(TEXT[i * 500:(i + 1) * 500 + 700])
    prepare(docs, Tokenizer.load(workdir / "tok.json"), tmp_path / "shards", shard_tokens=256)

    def losses(prepared, out):
        req = Request(data=str(tmp_path / "shards"), hyper=dict(n_layer=1, n_head=2, n_embd=16), out=out,
                      train=dict(max_steps=8, eval_interval=8, batch_size=4, grad_accum=2, log_interval=1), block_size=24, seed=3,
                      device="cpu")
        trainer, _ = new_trainer(req, prepared)
        events = list(trainer.run())
        return [(e.kind, getattr(e, "loss", None), getattr(e, "val_loss", None)) for e in events
                if e.kind in ("step", "eval")]

    mapped = prepare_shards(tmp_path / "shards", seed=3)
    assert isinstance(mapped.shards.documents("train")[0][0], np.memmap)
    a = losses(mapped, tmp_path / "a")
    b = losses(_in_memory(mapped), tmp_path / "b")
    assert a == b and len(a) > 3


def test_gpt2_preset_trains_a_few_steps_on_a_cpu(workdir, monkeypatch):
    result = makemore("prepare", "play.txt", "--tokenizer", "tok.json", "-o", "shards", cwd=workdir)
    assert result.returncode == 0, result.stderr
    result = makemore("train", "shards", "--preset", "gpt2-124m", "--n-layer", "2", "--n-embd", "128",
                      "--block-size", "128", "--max-steps", "20", "--batch-size", "4", "--grad-accum", "2",
                      "-o", "gpt", cwd=workdir)
    assert result.returncode == 0, result.stderr
    assert "sized for GPUs" not in result.stderr  # its batch was given: no warning about the preset's
    small = makemore("train", "shards", "--preset", "gpt2-124m", "--n-layer", "1", "--n-embd", "64",
                     "--block-size", "16", "--max-steps", "1", "-q", "-o", "small", cwd=workdir)
    assert small.returncode == 0, small.stderr
    assert "sized for GPUs" not in small.stderr  # a model made smaller: a step takes no minutes
    config = json.loads((workdir / "gpt" / "config.json").read_text())
    model, train = config["model"], config["train"]
    # the options given win; the preset fills in the rest
    assert model["hyper"] == {"n_layer": 2, "n_head": 2, "n_embd": 128, "dropout": 0.0, "tie_weights": True,
                              "dropout_samples": 0}
    assert model["block_size"] == 128 and train["max_steps"] == 20 and train["batch_size"] == 4
    assert (train["beta2"], train["weight_decay"], train["grad_clip"], train["learning_rate"]) == (0.95, 0.1, 1.0, 6e-4)
    assert train["warmup_steps"] == 1  # 715 of 19,073 steps, scaled to 20
    finished = [json.loads(line) for line in (workdir / "gpt" / "metrics.jsonl").read_text().splitlines()
                if '"finished"' in line]
    assert finished and finished[-1]["step"] == 20 and math.isfinite(finished[-1]["best_val_loss"])
    index = json.loads((workdir / "shards" / "index.json").read_text())["splits"]
    info = makemore("info", "gpt", cwd=workdir).stdout.splitlines()
    split = [line for line in info if line.startswith("split")]
    best = json.loads(makemore("info", "gpt", "--json", cwd=workdir).stdout)
    assert any(line.startswith("best val") and f"{best['best_val_loss']:.4f} nats/token "
               f"({best['best_val_bpc']:.4f} bits/char) @ step" in line for line in info), info
    # whole documents each side, in tokens: no character boundary as a stream's split has
    assert split and f"token shards: {index['train']['tokens']:,} / {index['val']['tokens']:,} tokens" in split[0]
    # eval holds the train split's first tokens only, as many as a val split may hold (training's evaluations
    # hold EVAL_TOKENS of them; eval held as few): it says so, and counts what it scored
    from makemore import tokentext

    monkeypatch.setattr(tokentext, "MAX_EVAL_TOKENS", 2400)
    result = json.loads(makemore_cli(workdir, "eval", "gpt", "--split", "train", "--json"))
    held = 2400 + 128 + 1  # MAX_EVAL_TOKENS as set here, and one window (training held 2048 + 129)
    assert held < index["train"]["tokens"]
    assert result["on"] == f"train split, its first {held:,} of {index['train']['tokens']:,} tokens in the first " \
                           f"epoch's order"
    assert result["tokens"] == held - 1 and 0 < result["chars"] < index["train"]["chars"]  # all but the first
    # the characters are the documents' text: an end-of-text token is none (it counted as its 13 characters)
    from makemore.rundir import RunDir
    from makemore.tokentext import batches_for_run

    loaded = RunDir(workdir / "gpt").load_model()
    first = batches_for_run(loaded.run, loaded.model, held).splits["train"]
    tok = loaded.vocab.tokenizer
    ends = int((first == tok.eot_id).sum())
    assert ends > 0 and result["chars"] == len(tok.decode(first[1:].tolist())) - 13 * int((first[1:] == tok.eot_id).sum())


def test_the_presets_cpu_note_bounds_a_step_from_below_and_keeps_quiet_under_a_minute():
    from makemore.commands import preset_cpu_note

    gpt2 = {"n_layer": 12, "n_embd": 768}
    note = preset_cpu_note("gpt2-124m", gpt2, 512, 1024, 2)  # 2.67e14 FLOPs at 1e11 a core on 2 cores: 22 min
    assert note == ("--preset gpt2-124m is sized for GPUs: on this CPU's 2 cores one step of its batch takes 22 "
                    "minutes or more; docs/tokens.md gives smaller overrides for a CPU")
    assert "hours" in preset_cpu_note("gpt2-124m", gpt2, 512 * 8, 1024, 2)  # a larger --batch-size costs more
    assert preset_cpu_note("gpt2-124m", gpt2, 512, 1024, 64) is None  # 42 s on 64 cores
    assert preset_cpu_note("gpt2-124m", {"n_layer": 1, "n_embd": 64}, 512, 32, 2) is None



def test_bits_per_char_by_hand_on_a_toy_text():
    """A model that gives every one of the V rows the same logit loses ln V nats per token. The toy text
    "abababab" is 4 tokens "ab" of 2 characters each, so 4 ln V nats over 8 characters: log2(V) / 2 bits each."""
    import torch

    from makemore.tokentext import TokenBatches

    tok = Tokenizer.train(["ab " * 50], vocab_size=258)  # one merge: "ab"
    train_ids, val_ids = tok.encode("abababababab"), tok.encode("abababab")
    assert len(val_ids) == 4
    V = 320  # 258 ids padded to a multiple of 64

    class Uniform(torch.nn.Module):
        config = type("C", (), {"vocab_size": V})()

        def forward(self, idx, targets=None):
            return torch.zeros(*idx.shape, V), None

    batches = TokenBatches(torch.tensor(train_ids), torch.tensor(val_ids), tok, {"train": 12, "val": 8}, block=2)
    loss = batches.evaluate(Uniform(), "val", max_tokens=None)
    assert loss == pytest.approx(math.log(V))
    assert batches.bits_per_char(loss, "val") == pytest.approx(math.log2(V) / 2)


def test_sampling_never_prints_control_characters(workdir):
    """An untrained model draws bytes it never saw, escape (0x1b) among them; what reaches the terminal is
    U+FFFD in their place (and still exactly --length characters)."""
    import torch

    from makemore.models import build_model
    from makemore.tokentext import generate_tokens

    tok = Tokenizer.load(workdir / "tok.json")
    torch.manual_seed(0)
    model = build_model("transformer", 320, 16, {"n_layer": 1, "n_head": 1, "n_embd": 8, "dropout": 0.0})

    class Escaping(torch.nn.Module):  # every draw is byte 0x1b
        def __init__(self):
            super().__init__()
            self.inner = model
            self.context_limit = 16

        def init_state(self, batch_size, device):
            return model.init_state(batch_size, device)

        def decode(self, idx, state):
            logits, state = model.decode(idx, state)
            logits = torch.full_like(logits, -1e9)
            logits[..., 0x1B] = 0
            return logits, state

    text = "".join(generate_tokens(Escaping(), tok, "All:", 12, temperature=1.0,
                                   generator=torch.Generator().manual_seed(0)))
    assert text == "\ufffd" * 12 and "\x1b" not in text


# --- the Python API on tokens ------------------------------------------------------------------------------

def test_the_python_api_trains_continues_and_evaluates_a_token_model(workdir, tmp_path):
    import makemore

    run = makemore.train(workdir / "play.txt", mode="text", tokenizer=workdir / "tok.json", block_size=16,
                         out=tmp_path / "run", max_steps=4, eval_interval=2, batch_size=4, n_layer=1, n_head=2,
                         n_embd=16, progress=False, device="cpu")
    model = run.model
    assert (run.run_dir / "tokenizer.json").read_bytes() == (workdir / "tok.json").read_bytes()
    # length counts characters of the decoded continuation, as `makemore sample --length` does
    text = model.continue_text("All:", 37, seed=3)
    assert len(text) == 37 and text == model.continue_text("All:", 37, seed=3)
    with pytest.raises(makemore.MakemoreError, match="--prompt is empty"):  # as a character run's
        model.continue_text("", 5)
    cli = makemore_cli(workdir, "sample", str(run.run_dir), "--prompt", "All:", "--length", "37", "--seed", "3",
                       "--json")
    assert json.loads(cli)["samples"][0]["text"] == "All:" + text
    # evaluate: bits per character of the val text, worked out here from the text and the tokenizer
    result = model.evaluate()
    val_text = TEXT[int(len(TEXT) * 0.9):]
    tok = Tokenizer.load(workdir / "tok.json")
    ids = tok.encode(val_text)  # predicted: all but the first token, and the characters they encode
    assert result["tokens"] == len(ids) - 1 and result["chars"] == len(val_text) - len(tok.decode(ids[:1]))
    assert result["bpc"] == pytest.approx(result["loss"] * result["tokens"] / result["chars"] / math.log(2))
    assert result == {**json.loads(makemore_cli(workdir, "eval", str(run.run_dir), "--json")), "run": result["run"]}
    other = tmp_path / "other.txt"
    other.write_text(TEXT[:400])
    on_file = model.evaluate(other)
    ids = tok.encode(TEXT[:400])
    assert on_file["chars"] == 400 - len(tok.decode(ids[:1])) and on_file["tokens"] == len(ids) - 1
    with pytest.raises(makemore.MakemoreError, match="no test split"):
        model.evaluate(split="test")


def makemore_cli(cwd: Path, *args: str) -> str:
    result = makemore(*args, cwd=cwd)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_the_python_api_applies_a_preset_as_the_command_line_does(workdir, tmp_path):
    import makemore

    options = dict(n_layer=1, n_embd=64, block_size=16, max_steps=3, batch_size=4, grad_accum=1)
    makemore.train(workdir / "play.txt", tokenizer=workdir / "tok.json", preset="gpt2-124m", out=tmp_path / "api",
                   progress=False, device="cpu", **options)
    flags = [x for k, v in options.items() for x in ("--" + k.replace("_", "-"), str(v))]
    makemore_cli(workdir, "train", "play.txt", "--tokenizer", "tok.json", "--preset", "gpt2-124m", *flags,
                 "--device", "cpu", "-o", str(tmp_path / "cli"))
    api, cli = (json.loads((tmp_path / d / "config.json").read_text()) for d in ("api", "cli"))
    assert api["model"] == cli["model"] and api["train"] == cli["train"]
    assert api["model"]["hyper"]["n_head"] == 1 and api["model"]["hyper"]["tie_weights"] is True  # 64 // 64
    assert api["train"]["beta2"] == 0.95 and api["train"]["max_steps"] == 3  # the preset's, and the option given
    with pytest.raises(makemore.MakemoreError, match="drop --type mlp"):
        makemore.train(workdir / "play.txt", tokenizer=workdir / "tok.json", preset="gpt2-124m", type="mlp",
                       progress=False)


def test_diagnose_labels_a_token_runs_embeddings_with_its_tokens(workdir, tmp_path):
    """`makemore diagnose` of a token run: one point per token of the tokenizer (not the rows that pad the
    vocabulary), labelled with the token's text (quoted where it holds a space), drawn unlabelled above 256."""
    run = tmp_path / "run"
    made = makemore("train", "play.txt", "--tokenizer", "tok.json", *TINY, "--block-size", "16", "--max-steps", "2",
                    "-b", "4", "-q", "-o", str(run), cwd=workdir)
    assert made.returncode == 0, made.stderr
    shown = makemore("diagnose", str(run), "--json", cwd=workdir)
    assert shown.returncode == 0, shown.stderr
    report = json.loads(shown.stdout)
    tok = Tokenizer.load(workdir / "tok.json")
    assert len(report["embedding"]) == len(report["labels"]) == tok.vocab_size == 300
    assert len(set(report["labels"])) == 300  # each token told apart: a lone byte of a character by its escape
    assert report["labels"][0xE2] == "\\xe2" and report["labels"][ord("a")] == "a"
    merged = {report["labels"][i]: tok.token_bytes[i].decode() for i in range(256, 300)}
    assert any(label.startswith("' ") for label in merged)  # a token that starts a word, quoted
    assert all(ast.literal_eval(label) == text if label.startswith("'") else label == text
               for label, text in merged.items())
    plot = makemore("diagnose", str(run), cwd=workdir)
    assert plot.returncode == 0 and "300 tokens, unlabelled" in plot.stdout, plot.stdout


def test_a_token_runs_principal_components_leave_the_padding_rows_out(workdir, tmp_path):
    """The 20 rows that pad 300 tokens to 320 are never an input: they are left out of the projection, and of
    its share of the variance, both from a checkpoint and from the diagnostics recorded while training."""
    import torch
    from makemore.diagnostics import project_2d
    from makemore.rundir import RunDir

    for recorded in (False, True):
        run = tmp_path / f"run{int(recorded)}"
        flags = ["--diagnostics", "--diag-interval", "2"] if recorded else []
        made = makemore("train", "play.txt", "--tokenizer", "tok.json", *TINY, "--block-size", "16",
                        "--max-steps", "2", "-b", "4", "-q", "-o", str(run), *flags, cwd=workdir)
        assert made.returncode == 0, made.stderr
        report = json.loads(makemore("diagnose", str(run), "--json", cwd=workdir).stdout)
        assert (report["diagnostics"] is not None) == recorded
        wte = RunDir.open(run).load_model().model.wte.weight
        assert wte.shape[0] == 320
        coords, variance = project_2d(wte[:300])  # the trained weights: the best checkpoint is the last step's
        shown = torch.tensor(report["embedding"])
        assert report["embedding_variance"] == pytest.approx(float(variance), abs=1e-5)
        assert torch.allclose(shown, coords, atol=1e-4)
        padded = project_2d(wte)[0][:300]  # with the padding rows in, the picture differs
        assert (shown - padded).abs().max() > 1e-2


def test_resume_takes_the_original_command_with_its_tokenizer(workdir, tmp_path):
    """Repeating the command that made a token run, with --resume and a longer --max-steps, continues it; another
    tokenizer is refused (before, any --tokenizer was)."""
    run = tmp_path / "run"
    first = makemore("train", "play.txt", "--tokenizer", "tok.json", *TINY, "--block-size", "16", "--max-steps", "4",
                     "-b", "4", "-q", "-o", str(run), cwd=workdir)
    assert first.returncode == 0, first.stderr
    again = makemore("train", "play.txt", "--tokenizer", "tok.json", *TINY, "--block-size", "16", "--max-steps", "6",
                     "-b", "4", "-q", "--resume", str(run), cwd=workdir)
    assert again.returncode == 0 and again.stdout.startswith("done (max_steps) at step 6"), again.stderr
    Tokenizer.train([TEXT], vocab_size=280).save(tmp_path / "other.json")
    other = makemore("train", "play.txt", "--tokenizer", str(tmp_path / "other.json"), "--max-steps", "8",
                     "--resume", str(run), cwd=workdir)
    assert other.returncode == 2 and "not the tokenizer" in other.stderr
    # the Python API takes the same call again too, and refuses the other tokenizer the same way
    import makemore as api

    api.train(workdir / "play.txt", tokenizer=workdir / "tok.json", resume=run, max_steps=7,
                       progress=False)
    assert json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])["step"] == 7
    with pytest.raises(api.MakemoreError, match="tokenizer .*other.json: not the tokenizer"):
        api.train(workdir / "play.txt", tokenizer=tmp_path / "other.json", resume=run, max_steps=8,
                           progress=False)


def test_an_edited_tokenizer_record_is_refused(workdir, tmp_path):
    """config.json's record of the tokenizer was shown as it was: `info` printed "1000000000 tokens (rows padded
    to 1000000000)" for an edit."""
    import shutil

    if not (workdir / "run").is_dir():  # (run alone: the token run of the first test)
        test_train_eval_and_sample_a_token_model(workdir)
    for edit in ({"vocab_size": 10**9, "padded": 10**9}, {"padded": 64}, {"vocab_size": "300"}):
        run = tmp_path / "run"
        shutil.rmtree(run, ignore_errors=True)
        shutil.copytree(workdir / "run", run)
        config = json.loads((run / "config.json").read_text())
        config["dataset"]["tokenizer"].update(edit)
        (run / "config.json").write_text(json.dumps(config))
        result = makemore("info", str(run), cwd=workdir)
        assert result.returncode == 2 and "field dataset.tokenizer must give vocab_size" in result.stderr, edit
