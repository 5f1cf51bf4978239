"""One family's default against training options, side by side: the same zoo plan (budget), steps, batch and seeds,
every model judged by one Evaluator - FID∞ with its error bar, KID, precision, recall, wall time.

A difference counts only beyond two combined errors (|ΔFID∞| > 2 √(e₁² + e₂²)); with `--seeds 0 1` every variant
trains twice and the table gives each seed's row, so a difference near the line can be read across seeds.

    OMP_NUM_THREADS=2 python scripts/compare_options.py diffusion --variant "--snr_gamma 5"
    OMP_NUM_THREADS=2 python scripts/compare_options.py gan --variant "--diffaugment color,translation,cutout" --seeds 0 1
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
from pathlib import Path

from hfgen.evaluation import Evaluator
from hfgen.evaluation.evaluator import markdown_table
from hfgen.families import get_family
from hfgen.loading import load_pipeline
from hfgen.training.launch import train
from hfgen.zoo.run import BUDGETS, ZooArguments, training_runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("family")
    parser.add_argument("--variant", action="append", required=True, help="Extra `hfgen train` flags of one variant.")
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--budget", default="laptop")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--num_samples", type=int, help="Samples per model (default: the budget's).")
    parser.add_argument("--output_dir", default="compare-options")
    args = parser.parse_args()

    root = Path(args.output_dir) / args.dataset / args.family
    variants = {"default": [], **{flags: shlex.split(flags) for flags in args.variant}}
    num_samples = args.num_samples or BUDGETS[args.budget].num_samples
    rows: dict[str, dict] = {}
    evaluator = Evaluator(args.dataset)
    for seed in args.seeds:
        for name, flags in variants.items():
            folder = root / f"{name.replace(' ', '_').replace('-', '')}-seed{seed}"
            seconds = 0.0
            for family, argv in training_runs(ZooArguments(dataset=args.dataset, budget=args.budget, seed=seed), args.family, folder):
                extra = flags if family == args.family else []
                seconds += train(family, [*argv, *extra]).train_seconds
            pipe = load_pipeline(str(folder))
            options = get_family(args.family).sampling_options(pipe, "dpmsolver", 20)
            metrics = evaluator.evaluate_pipeline(pipe, num_samples, 250, options).metrics
            rows[f"{name} (seed {seed})"] = metrics | {"train_seconds": seconds}
            print(f"{name}, seed {seed}: FID∞ {metrics['fid']:.3f} ± {metrics['fid_error']:.3f}", flush=True)

    print(f"\n{args.family} on {args.dataset}, `{args.budget}` budget, {num_samples} samples; judge: {evaluator.judge_info['title']}\n")
    print(markdown_table(rows, "variant"))
    print()
    for row_name, row in rows.items():
        name, seed = row_name.rsplit(" (seed ", 1)
        if name != "default":
            base = rows[f"default (seed {seed}"]
            gap, line = row["fid"] - base["fid"], 2 * math.hypot(row["fid_error"], base["fid_error"])
            verdict = ("better" if gap < 0 else "worse") if abs(gap) > line else "no difference"
            print(f"- {row_name}: ΔFID∞ {gap:+.3f} against two combined errors {line:.3f}: {verdict}")
    root.mkdir(parents=True, exist_ok=True)
    (root / "comparison.json").write_text(json.dumps({"judge": evaluator.judge_info, "num_samples": num_samples, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
