"""The autoregressive family end to end: `hfgen train|sample` on text and pixels, 1 and 2 processes, and the
exported model loading with `trust_remote_code=True` where hfgen cannot be imported."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from hfgen import HfgenGPTForCausalLM
from hfgen.cli import main
from hfgen.data import load_image_dataset
from hfgen.loading import load_pipeline

from helpers import launch_two_processes, run_hfgen, subprocess_env

TINY = ["--hidden_size", "32", "--num_hidden_layers", "2", "--num_attention_heads", "4", "--lr_warmup_steps", "5"]
TEXT = ["--dataset", "python-stdlib", "--max_chars", "100000", "--vocab_size", "512", "--block_size", "32"]


@pytest.fixture(scope="module")
def cache_env(tmp_path_factory):
    """One tokenizer cache for this module's runs (the 2-process run shares it, racing to create it)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HFGEN_CACHE", str(tmp_path_factory.mktemp("hfgen-cache")))
        yield


@pytest.fixture(scope="module")
def text_model(tmp_path_factory, cache_env):
    out = tmp_path_factory.mktemp("ar-stdlib")
    run_hfgen(
        "train", "autoregressive", *TEXT, *TINY, "--output_dir", out, "--max_steps", "40", "--train_batch_size", "16",
        "--logging_steps", "10", "--learning_rate", "3e-3",
    )
    return out


def read_log(folder) -> list[dict]:
    return [json.loads(line) for line in (folder / "train_log.jsonl").read_text().splitlines()]


def test_text_loss_falls_and_the_folder_is_hub_ready(text_model):
    log = read_log(text_model)
    losses = [row["loss"] for row in log if "loss" in row]
    assert len(losses) == 4 and losses[-1] < losses[0] - 0.3, losses
    validation = [row for row in log if "validation_loss" in row][-1]
    assert validation["validation_perplexity"] == pytest.approx(2.718281828 ** validation["validation_loss"], rel=1e-6)
    for name in ("config.json", "model.safetensors", "tokenizer.json", "modeling_hfgen_gpt.py", "configuration_hfgen_gpt.py"):
        assert (text_model / name).is_file(), name
    assert not list(text_model.glob("*.bin")) and (text_model / "samples.txt").read_text().strip()
    tokenizer = AutoTokenizer.from_pretrained(text_model)
    model = AutoModelForCausalLM.from_pretrained(text_model)
    assert isinstance(model, HfgenGPTForCausalLM) and model.config.vocab_size == len(tokenizer)


def test_sample_streams_text_and_rejects_a_too_long_prompt(text_model, capsys):
    result = run_hfgen(
        "sample", text_model, "--prompt", "def fib(n):", "--max_new_tokens", "12", "--temperature", "0.8", "--seed", "0"
    )
    assert result.stdout.startswith("def fib(n):") and "12 tokens in" in result.stdout
    # The CLI entry point in-process (no second interpreter start): one line naming the fix, exit status 2.
    assert main(["sample", str(text_model), "--prompt", "x = 1\n" * 20, "--max_new_tokens", "10"]) == 2
    error = capsys.readouterr().err
    assert "context window of 32 tokens" in error and "Traceback" not in error
    assert main(["sample", str(text_model), "--top_p", "0"]) == 2 and "--top_p must be in (0, 1]" in capsys.readouterr().err


def test_exported_code_loads_with_trust_remote_code_without_hfgen(text_model, tmp_path):
    prompt = [[1, 2, 3, 4]]
    expected = AutoModelForCausalLM.from_pretrained(text_model).generate(torch.tensor(prompt), max_new_tokens=12, do_sample=False)
    script = textwrap.dedent(f"""
        import json, sys
        sys.modules["hfgen"] = None  # hfgen is installed (editable) in this venv: make it unimportable
        try:
            import hfgen
        except ImportError:
            pass
        else:
            raise SystemExit("hfgen should not be importable here")
        import torch
        from transformers import AutoModel, AutoModelForCausalLM
        model = AutoModelForCausalLM.from_pretrained({str(text_model)!r}, trust_remote_code=True)
        bare = AutoModel.from_pretrained({str(text_model)!r}, trust_remote_code=True)
        assert type(model).__module__.startswith("transformers_modules.") and type(bare).__name__ == "HfgenGPTModel"
        print(json.dumps(model.generate(torch.tensor({prompt}), max_new_tokens=12, do_sample=False).tolist()))
    """)
    env = subprocess_env(HF_MODULES_CACHE=str(tmp_path / "modules"))
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads(result.stdout.strip().splitlines()[-1]) == expected.tolist()


def test_pixel_model_trains_reports_bits_per_dim_and_samples(tmp_path, cache_env):
    out = tmp_path / "ar-digits"
    run_hfgen(
        "train", "autoregressive", "--dataset", "digits", *TINY, "--output_dir", out, "--max_steps", "20",
        "--train_batch_size", "16", "--logging_steps", "10", "--num_grid_images", "4", "--validation_max_examples", "50",
    )
    log = read_log(out)
    assert all(row["bits_per_dim"] == pytest.approx(row["loss"] / 0.6931471805599453) for row in log if "loss" in row)
    bits = [row["test_bits_per_dim"] for row in log if "test_bits_per_dim" in row][-1]
    pipe = load_pipeline(str(out))
    test = load_image_dataset("digits", "test")[:50]
    assert pipe.bits_per_dim(test["image"]) == pytest.approx(bits, rel=1e-6)  # saved (EMA) weights = validated ones
    assert main(["sample", str(out), "--num_images", "4", "--output", str(out / "grid.png")]) == 0
    assert (out / "grid.png").is_file() and (out / "samples.png").is_file()


def test_two_process_run(tmp_path, cache_env):
    out = tmp_path / "ar-ddp"
    launch_two_processes(
        "train", "autoregressive", *TEXT, *TINY, "--output_dir", out, "--max_steps", "4", "--train_batch_size", "8",
        "--logging_steps", "2",
    )
    info = json.loads((out / "run_info.json").read_text())
    assert info["distributed_type"] == "MULTI_CPU" and info["num_processes"] == 2 and info["backend"] == "gloo"
    first, second = info["replica_checksums"]
    assert first == second
    assert (out / "tokenizer.json").is_file() and (out / "model.safetensors").is_file()
