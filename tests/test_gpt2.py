"""The GPT-2 (124M) preset: its size, its initialisation, tied embeddings, and how options override it."""

from __future__ import annotations

import math

import pytest
import torch

from makemore.errors import MakemoreError
from makemore.presets import get_preset, padded_vocab
from makemore.models import build_model


def gpt2_param_count(V: int, T: int, L: int, C: int) -> int:
    """Counted by hand from GPT-2's layout: token and position embeddings, per block two LayerNorms (weight and
    bias), the fused q/k/v matrix and the attention projection with biases, the 4x MLP with biases; a final
    LayerNorm; the head tied to the token embedding (no parameters of its own)."""
    per_block = 2 * 2 * C + (C * 3 * C + 3 * C) + (C * C + C) + (C * 4 * C + 4 * C) + (4 * C * C + C)
    return V * C + T * C + L * per_block + 2 * C


def test_padded_vocab():
    assert padded_vocab(50257) == 50304 and padded_vocab(64) == 64 and padded_vocab(65) == 128
    assert padded_vocab(1) == 64


def test_preset_builds_gpt2_small_with_124m_parameters():
    preset = get_preset("gpt2-124m")
    hyper, train, block = preset.apply({}, {}, None, "cpu")
    V = padded_vocab(50257)
    with torch.device("meta"):
        model = build_model(preset.model_type, V, block, hyper)
    n = model.num_params()
    assert n == gpt2_param_count(V, 1024, 12, 768)
    assert 124e6 < n < 125e6  # "124M" (nanoGPT: 124.47M with the padded vocabulary, position embeddings in)
    assert model.lm_head.weight is model.wte.weight
    assert (model.config.n_layer, model.config.n_head, model.config.n_embd, block) == (12, 12, 768, 1024)
    # the recipe: 2**19 tokens per step, AdamW (0.9, 0.95), weight decay 0.1, clipping 1.0, cosine to 10%
    assert train["batch_size"] * block == 2**19
    assert (train["beta2"], train["weight_decay"], train["grad_clip"], train["min_lr_ratio"]) == (0.95, 0.1, 1.0, 0.1)
    assert "dtype" not in train  # bfloat16 and compile are for CUDA
    _, on_gpu, _ = preset.apply({}, {}, None, "cuda")
    assert on_gpu["dtype"] == "bfloat16" and on_gpu["compile"] is True


def test_residual_projections_are_initialised_smaller():
    preset = get_preset("gpt2-124m")
    hyper, _, _ = preset.apply({"n_embd": 128}, {}, None, "cpu")
    torch.manual_seed(0)
    model = build_model("transformer", 128, 64, hyper)
    L = hyper["n_layer"]
    proj = torch.cat([b.attn.c_proj.weight.flatten() for b in model.h] + [b.mlp.c_proj.weight.flatten() for b in model.h])
    other = torch.cat([b.attn.c_attn.weight.flatten() for b in model.h])
    assert proj.std().item() == pytest.approx(0.02 / math.sqrt(2 * L), rel=0.05)
    assert other.std().item() == pytest.approx(0.02, rel=0.05)


def test_explicit_options_override_the_preset():
    preset = get_preset("gpt2-124m")
    hyper, train, block = preset.apply({"n_layer": 2, "n_embd": 128, "n_head": None},
                                       {"max_steps": 20, "batch_size": None, "learning_rate": 1e-3}, 128, "cpu")
    assert hyper["n_layer"] == 2 and hyper["n_embd"] == 128 and block == 128
    assert hyper["n_head"] == 2  # heads of 64 channels, as GPT-2's
    assert train["max_steps"] == 20 and train["learning_rate"] == 1e-3 and train["batch_size"] == 512
    hyper, _, _ = preset.apply({"n_embd": 96, "n_head": 3}, {}, None, "cpu")
    assert hyper["n_head"] == 3
    with pytest.raises(MakemoreError, match="give --n-head"):
        preset.apply({"n_embd": 100}, {}, None, "cpu")
    # a batch of one's own keeps the micro-batch of 16 sequences (-b 4 with the preset's 32 micro-batches was
    # refused as "--grad-accum must be between 1 and the batch size", an option not given)
    grad_accum = {b: preset.apply({}, {"batch_size": b}, None, "cpu")[1]["grad_accum"] for b in (4, 16, 64, 512)}
    assert grad_accum == {4: 1, 16: 1, 64: 4, 512: 32}
    assert preset.apply({}, {"batch_size": 64, "grad_accum": 2}, None, "cpu")[1]["grad_accum"] == 2
    with pytest.raises(MakemoreError, match="unknown"):
        get_preset("gpt5")


def test_tied_weights_train_as_one_matrix():
    hyper = {"n_layer": 1, "n_head": 2, "n_embd": 16, "dropout": 0.0, "tie_weights": True}
    torch.manual_seed(0)
    model = build_model("transformer", 64, 8, hyper)
    untied = build_model("transformer", 64, 8, {**hyper, "tie_weights": False})
    assert untied.num_params() - model.num_params() == 64 * 16
    x = torch.randint(0, 64, (2, 8))
    _, loss = model(x, x)
    loss.backward()
    # the one matrix gets the gradient of both uses: embedding lookup and head
    assert model.wte.weight.grad is model.lm_head.weight.grad
    assert torch.count_nonzero(model.wte.weight.grad[x.unique()]) > 0


def test_the_preset_on_a_word_list_is_refused_for_what_it_is(tmp_path):
    """A text recipe on a word list: refused by name, not as a --block-size the user never gave."""
    from typer.testing import CliRunner

    from makemore.cli import app

    words = tmp_path / "names.txt"
    words.write_text("emma\nolivia\nava\nmia\n" * 5)
    result = CliRunner().invoke(app, ["train", str(words), "--preset", "gpt2-124m", "--n-layer", "1", "--n-embd",
                                      "64", "--max-steps", "2", "-b", "8", "--grad-accum", "1",
                                      "-o", str(tmp_path / "run")])
    assert result.exit_code == 2
    assert f"--preset gpt2-124m is a recipe for text or token shards; {words} reads as a word list" in result.stderr
    assert "--block-size" not in result.stderr and not (tmp_path / "run").exists()


def test_tie_weights_is_an_option_of_the_command_line_and_the_api(tmp_path):
    """The error for a wrong family lists --tie-weights among the Transformer's options: it is one (before, the
    command line had no such option and the API refused the keyword)."""
    from typer.testing import CliRunner

    import makemore
    from makemore.cli import app

    words = tmp_path / "names.txt"
    words.write_text("emma\nolivia\nava\nmia\nluna\nzoe\n" * 5)
    common = ["--n-layer", "1", "--n-head", "2", "--n-embd", "16", "--max-steps", "2", "-q"]
    for flag, out in (("--tie-weights", "tied"), ("--no-tie-weights", "untied")):
        result = CliRunner().invoke(app, ["train", str(words), flag, *common, "-o", str(tmp_path / out)])
        assert result.exit_code == 0, result.output
    tied, untied = (makemore.load(tmp_path / d) for d in ("tied", "untied"))
    V = len(tied.module.wte.weight)
    assert untied.num_params - tied.num_params == V * 16  # the head's own matrix, gone (its bias stays)
    api = makemore.train(words, tie_weights=True, n_layer=1, n_head=2, n_embd=16, max_steps=2,
                         out=tmp_path / "api", progress=False)
    assert api.model.num_params == tied.num_params


def test_a_run_names_its_preset_and_info_says_so(tmp_path):
    """config.json keeps the preset that filled in a run's settings; info names it (a name this makemore does not
    know too), and a value that is no name is refused as the file's error."""
    import json

    from typer.testing import CliRunner

    import makemore
    from makemore.cli import app

    text = tmp_path / "play.txt"
    text.write_text("First Citizen:\nBefore we proceed any further, hear me speak.\n" * 40)
    makemore.train(text, mode="text", preset="gpt2-124m", n_layer=1, n_embd=64, block_size=16, batch_size=8,
                   grad_accum=1, max_steps=1, out=tmp_path / "run", progress=False)
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["preset"] == "gpt2-124m"
    result = CliRunner().invoke(app, ["info", str(tmp_path / "run")])
    assert result.exit_code == 0 and "--preset gpt2-124m where no option was given" in result.stdout
    assert json.loads(CliRunner().invoke(app, ["info", str(tmp_path / "run"), "--json"]).stdout)["preset"] \
        == "gpt2-124m"
    from makemore.instruments import _flatten  # compare's rows: the preset's own, beside the type
    from makemore.rundir import RunDir

    assert _flatten(RunDir.open(tmp_path / "run").summary())["preset"] == "gpt2-124m"
    config["preset"] = "gpt9"  # a name this makemore does not know (a later one's): a record, shown as it is
    (tmp_path / "run" / "config.json").write_text(json.dumps(config))
    result = CliRunner().invoke(app, ["info", str(tmp_path / "run")])
    assert result.exit_code == 0 and "--preset gpt9 where no option was given" in result.stdout
    for bad in (["x"], 5, ""):  # no name: refused as the file's error (a list was a traceback)
        config["preset"] = bad
        (tmp_path / "run" / "config.json").write_text(json.dumps(config))
        for command in ("info", "runs"):
            target = tmp_path / "run" if command == "info" else tmp_path
            result = CliRunner().invoke(app, [command, str(target)])
            assert result.exception is None or isinstance(result.exception, SystemExit), result.output  # no crash
            assert f"field preset must be a preset's name, not {json.dumps(bad)}" in result.stderr, result.output
