"""Benchmark the hfgen GPT against transformers' GPT2LMHeadModel of the same size, in one run on one machine.

    python scripts/bench_autoregressive.py                        # generation (cached / uncached), training, MFU
    python scripts/bench_autoregressive.py --train_steps 2000     # + nanoGPT's CPU run on python-stdlib
    python scripts/bench_autoregressive.py --pixels --gen_batch 100 --rounds 2   # 28x28 image sampling instead

Both models get the same layers, heads, width, vocabulary and context, dropout 0, tied embeddings and SDPA
attention; timings alternate between the two in rounds (median kept), so load on a shared machine hits both.
MFU follows nanoGPT's `estimate_mfu`: FLOPs per token = 6N + 12 L H Q T (N: parameters without the position
embedding), against this machine's measured fp32 matmul peak rather than a datasheet number.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
from transformers import GPT2Config, GPT2LMHeadModel

from hfgen import HfgenGPTConfig, HfgenGPTForCausalLM, PixelGPTPipeline


def build_models(args: argparse.Namespace) -> dict[str, torch.nn.Module]:
    ours = HfgenGPTConfig(
        vocab_size=args.vocab_size, max_position_embeddings=args.context, hidden_size=args.width,
        num_hidden_layers=args.layers, num_attention_heads=args.heads,
    )
    gpt2 = GPT2Config(
        vocab_size=args.vocab_size, n_positions=args.context, n_embd=args.width, n_layer=args.layers, n_head=args.heads,
        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, bos_token_id=None, eos_token_id=None, tie_word_embeddings=True,
        attn_implementation="sdpa",
    )
    torch.manual_seed(0)
    models = {"hfgen": HfgenGPTForCausalLM(ours), "gpt2": GPT2LMHeadModel(gpt2)}
    sizes = {name: sum(p.numel() for p in m.parameters()) for name, m in models.items()}
    if sizes["hfgen"] != sizes["gpt2"]:
        raise RuntimeError(f"The two models differ in size: {sizes}.")
    return models


def alternate(jobs: dict[str, Callable[[], float]], rounds: int) -> dict[str, float]:
    """Median of each job's result over `rounds`, running the jobs in turn each round."""
    results: dict[str, list[float]] = {name: [] for name in jobs}
    for _ in range(rounds):
        for name, job in jobs.items():
            results[name].append(job())
    return {name: statistics.median(values) for name, values in results.items()}


def generation_speed(model: torch.nn.Module, args: argparse.Namespace, use_cache: bool) -> Callable[[], float]:
    prompt = torch.randint(0, args.vocab_size, (args.gen_batch, 1), generator=torch.Generator().manual_seed(0))
    new = args.context - 1

    @torch.no_grad()
    def run() -> float:
        started = time.perf_counter()
        model.generate(prompt, max_new_tokens=new, min_new_tokens=new, do_sample=False, use_cache=use_cache, pad_token_id=0)
        return args.gen_batch * new / (time.perf_counter() - started)

    return run


def pixel_sampling(args: argparse.Namespace) -> dict:
    """Images/s of hfgen's `PixelGPTPipeline` (its own loop, a KV cache written in place) against GPT-2's `generate()`
    drawing as many tokens per image (transformers' default cache, which concatenates), same layers and vocabulary."""
    from hfgen.data.pixels import PixelVocabulary

    vocabulary, pixels = PixelVocabulary(256), args.resolution**2
    sizes = argparse.Namespace(**{**vars(args), "vocab_size": vocabulary.vocab_size, "context": pixels + 1})
    models = {name: model.eval() for name, model in build_models(sizes).items()}
    pipe = PixelGPTPipeline(model=models["hfgen"], resolution=args.resolution, channels=1, grey_levels=256)
    pipe.set_progress_bar_config(disable=True)
    prompt = vocabulary.first_tokens(None, args.gen_batch)

    def ours() -> float:
        started = time.perf_counter()
        pipe(batch_size=args.gen_batch, generator=torch.Generator().manual_seed(0), output_type="pt")
        return args.gen_batch / (time.perf_counter() - started)

    @torch.no_grad()
    def gpt2() -> float:
        started = time.perf_counter()
        models["gpt2"].generate(prompt, max_new_tokens=pixels, min_new_tokens=pixels, do_sample=True, top_k=0, pad_token_id=0)
        return args.gen_batch / (time.perf_counter() - started)

    speed = alternate({"hfgen": ours, "gpt2": gpt2}, args.rounds)
    return {
        "config": {k: getattr(args, k) for k in ("layers", "heads", "width", "resolution", "gen_batch", "rounds")},
        "torch_threads": torch.get_num_threads(),
        "images_per_second": speed,
        "ratio_hfgen_over_gpt2": speed["hfgen"] / speed["gpt2"],
    }


def training_speed(model: torch.nn.Module, args: argparse.Namespace) -> Callable[[], float]:
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    batch = torch.randint(0, args.vocab_size, (args.batch_size, args.context), generator=torch.Generator().manual_seed(0))

    def step() -> None:
        loss = model(batch, labels=batch, use_cache=False).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    def run() -> float:
        step()  # warm-up (allocator, autograd graph)
        started = time.perf_counter()
        for _ in range(args.steps_per_round):
            step()
        return args.steps_per_round * batch.numel() / (time.perf_counter() - started)

    return run


def matmul_peak(size: int = 1024, repeats: int = 20) -> float:
    """FLOP/s of a square fp32 matmul on this machine (best of `repeats`)."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b
    best = min(_timed(lambda: a @ b) for _ in range(repeats))
    return 2 * size**3 / best


def _timed(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def flops_per_token(model: torch.nn.Module, args: argparse.Namespace) -> float:
    """nanoGPT's estimate: 6N + 12 L H Q T, N without the position embedding (it costs no matmul)."""
    positions = args.context * args.width
    n = sum(p.numel() for p in model.parameters()) - positions
    return 6 * n + 12 * args.layers * args.heads * (args.width // args.heads) * args.context


def full_run(args: argparse.Namespace) -> dict[str, float]:
    """nanoGPT's CPU config through `hfgen train` on python-stdlib; tokens/s and validation loss from its log."""
    from hfgen.data.text import load_text_data
    from hfgen.training.launch import train

    output_dir = args.run_dir or tempfile.mkdtemp(prefix="ar-stdlib-")
    started = time.perf_counter()
    result = train("autoregressive", [
        "--dataset", "python-stdlib", "--output_dir", output_dir, "--block_size", str(args.context),
        "--vocab_size", str(args.vocab_size), "--hidden_size", str(args.width), "--num_hidden_layers", str(args.layers),
        "--num_attention_heads", str(args.heads), "--train_batch_size", str(args.batch_size),
        "--max_steps", str(args.train_steps), "--learning_rate", "1e-3", "--lr_warmup_steps", "100",
        "--logging_steps", "100", "--sample_steps", str(args.train_steps), "--checkpointing_steps", str(args.train_steps),
        "--use_ema", "false", "--validation_max_examples", "2000",
    ])
    wall = time.perf_counter() - started
    log = [json.loads(line) for line in (Path(output_dir) / "train_log.jsonl").read_text().splitlines()]
    validation = [row for row in log if "validation_loss" in row][-1]
    # Nats per character: comparable across tokenizers (nanoGPT's 1.88 is per character of Shakespeare).
    text = load_text_data("python-stdlib", args.context, args.vocab_size)
    blocks = text.validation[:2000]["input_ids"]
    characters = sum(len(text.tokenizer.decode(block)) for block in blocks)
    tokens_predicted = blocks.shape[0] * (blocks.shape[1] - 1)
    return {
        "steps": result.global_step,
        "train_seconds": result.train_seconds,
        "wall_seconds_with_eval_and_saving": wall,
        "train_tokens_per_second": args.train_steps * args.batch_size * args.context / result.train_seconds,
        "validation_loss_per_token": validation["validation_loss"],
        "validation_perplexity": validation["validation_perplexity"],
        "validation_nats_per_character": validation["validation_loss"] * tokens_predicted / characters,
        "output_dir": output_dir,
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--context", type=int, default=64)
    parser.add_argument("--vocab_size", type=int, default=4096)
    parser.add_argument("--batch_size", type=int, default=12, help="Training batch (nanoGPT's CPU config: 12).")
    parser.add_argument("--gen_batch", type=int, default=1, help="Sequences generated at once.")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps_per_round", type=int, default=20)
    parser.add_argument("--train_steps", type=int, default=0, help="Also run nanoGPT's CPU config for N steps (2000: ~3 min).")
    parser.add_argument("--run_dir", default=None, help="Output folder of that run (default: a temporary one).")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (1 is steadiest on a shared machine).")
    parser.add_argument("--output", default=None, help="Write the results as JSON here.")
    parser.add_argument("--pixels", action="store_true", help="Time image sampling (a 256-level pixel model) instead.")
    parser.add_argument("--resolution", type=int, default=28, help="--pixels: image side (28: Fashion-MNIST).")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.pixels:
        return report(pixel_sampling(args), args.output)

    models = build_models(args)
    for model in models.values():
        model.eval()
    cached = alternate({name: generation_speed(m, args, use_cache=True) for name, m in models.items()}, args.rounds)
    uncached = alternate({name: generation_speed(m, args, use_cache=False) for name, m in models.items()}, args.rounds)
    for model in models.values():
        model.train()
    training = alternate({name: training_speed(m, args) for name, m in models.items()}, args.rounds)
    peak = matmul_peak()
    flops = flops_per_token(models["hfgen"], args)
    results = {
        "config": {k: getattr(args, k) for k in ("layers", "heads", "width", "context", "vocab_size", "batch_size", "gen_batch")},
        "parameters": sum(p.numel() for p in models["hfgen"].parameters()),
        "torch_threads": torch.get_num_threads(),
        "generation_tokens_per_second_cached": cached,
        "generation_tokens_per_second_uncached": uncached,
        "generation_ratio_hfgen_over_gpt2": cached["hfgen"] / cached["gpt2"],
        "cache_speedup": {name: cached[name] / uncached[name] for name in cached},
        "training_tokens_per_second": training,
        "training_ratio_hfgen_over_gpt2": training["hfgen"] / training["gpt2"],
        "matmul_peak_gflops": peak / 1e9,
        "flops_per_token": flops,
        "mfu": {name: flops * tps / peak for name, tps in training.items()},
    }
    if args.train_steps:
        results["python_stdlib_run"] = full_run(args)
    return report(results, args.output)


def report(results: dict, output: str | None) -> dict:
    print(json.dumps(results, indent=2))
    if output:
        Path(output).write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
