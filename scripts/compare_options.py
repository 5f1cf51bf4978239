"""One family's default against training options, side by side: the same zoo plan (budget), steps, batch and seeds,
every model judged by one Evaluator - FID∞ with its error bar, KID, precision, recall, wall time.

A sampler row (`--sampler`) judges the same weights called with other pipeline options; `scheduler` and `steps`
choose the diffusion sampler (`--sampler scheduler=heun`). A difference counts only
beyond two combined errors (|ΔFID∞| > 2 √(e₁² + e₂²)); with `--seeds 0 1` every variant
trains twice and the table gives each seed's row, so a difference near the line can be read across seeds.

    OMP_NUM_THREADS=2 python scripts/compare_options.py diffusion --variant "--snr_gamma 5" --sampler scheduler=dpmsolver-karras --sampler scheduler=heun
    OMP_NUM_THREADS=2 python scripts/compare_options.py gan --variant "--diffaugment color,translation,cutout" --seeds 0 1
    OMP_NUM_THREADS=2 python scripts/compare_options.py vae --sampler latent_sampler=prior --sampler decode=sample
"""

from __future__ import annotations

import argparse
import ast
import json
import shlex
from pathlib import Path

from hfgen.evaluation import Evaluator
from hfgen.evaluation.evaluator import markdown_table
from hfgen.evaluation.metrics import fid_verdict
from hfgen.families import get_family
from hfgen.loading import load_pipeline
from hfgen.training.launch import train_or_keep
from hfgen.zoo.run import BUDGETS, ZooArguments, training_runs


def _option(pair: str) -> tuple[str, object]:
    """`key=value` of a pipeline call, the value as Python reads it when it can (numbers, True), else the string."""
    key, value = pair.split("=", 1)
    try:
        return key, ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return key, value


def main(argv: list[str] | None = None) -> dict[str, dict]:
    """Train and judge every variant; returns the table's rows (what comparison.json holds)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("family")
    parser.add_argument("--variant", action="append", default=[], help="Extra `hfgen train` flags of one variant.")
    parser.add_argument("--base", default="", help="`hfgen train` flags of every variant, the default included.")
    parser.add_argument(
        "--sampler", action="append", default=[],
        help="Pipeline options of one more row per trained model, e.g. 'latent_sampler=mixture' (the same weights).",
    )
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--budget", default="laptop")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--num_samples", type=int, help="Samples per model (default: the budget's).")
    parser.add_argument("--output_dir", default="compare-options")
    parser.add_argument(
        "--reuse_trained", action="store_true",
        help="Keep a variant's folder that holds its finished run (as `hfgen zoo --reuse_trained`): new sampler rows "
             "or another seed without training again.",
    )
    args = parser.parse_args(argv)

    root = Path(args.output_dir) / args.dataset / args.family
    variants = {"default": shlex.split(args.base), **{flags: shlex.split(f"{args.base} {flags}") for flags in args.variant}}
    samplers = {"": {}} | {text: dict(_option(pair) for pair in text.split(",")) for text in args.sampler}
    num_samples = args.num_samples or BUDGETS[args.budget].num_samples
    rows: dict[str, dict] = {}
    evaluator = Evaluator(args.dataset)
    for seed in args.seeds:
        for name, flags in variants.items():
            folder = root / f"{name.replace(' ', '_').replace('-', '')}-seed{seed}"
            seconds = 0.0
            for family, argv in training_runs(ZooArguments(dataset=args.dataset, budget=args.budget, seed=seed), args.family, folder):
                argv = [*argv, *(flags if family == args.family else [])]
                seconds += train_or_keep(family, argv, args.reuse_trained)
            pipe = load_pipeline(str(folder))
            for sampler, sampler_options in samplers.items():
                row = f"{name}{f', {sampler}' if sampler else ''}"
                call_options = dict(sampler_options)
                scheduler, steps = call_options.pop("scheduler", "dpmsolver"), call_options.pop("steps", 20)
                options = get_family(args.family).sampling_options(pipe, scheduler, steps) | call_options
                metrics = evaluator.evaluate_pipeline(pipe, num_samples, 250, options).metrics
                rows[f"{row} (seed {seed})"] = metrics | {"train_seconds": seconds}
                print(f"{row}, seed {seed}: FID∞ {metrics['fid']:.3f} ± {metrics['fid_error']:.3f}", flush=True)

    print(f"\n{args.family} on {args.dataset}, `{args.budget}` budget, {num_samples} samples; judge: {evaluator.judge_info['title']}\n")
    print(markdown_table(rows, "variant"))
    print()
    for row_name, row in rows.items():
        name, seed = row_name.rsplit(" (seed ", 1)
        if name != "default":
            gap, line, verdict = fid_verdict(row, rows[f"default (seed {seed}"])
            print(f"- {row_name}: ΔFID∞ {gap:+.3f} against two combined errors {line:.3f}: {verdict}")
    root.mkdir(parents=True, exist_ok=True)
    (root / "comparison.json").write_text(json.dumps({"judge": evaluator.judge_info, "num_samples": num_samples, "rows": rows}, indent=2))
    return rows


if __name__ == "__main__":
    main()
