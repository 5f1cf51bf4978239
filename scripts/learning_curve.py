"""One family's FID∞ along one training run, against the KDE baseline: how many steps a family needs, read from a
measured curve instead of guessed.

The zoo plan (budget) of the family trains to --max_steps with a checkpoint every --every steps; each checkpoint is
written out as a model folder by `hfgen train --resume_from_checkpoint CHECKPOINT --max_steps STEP` (the run's
weights - its EMA where it keeps one - at exactly that step, zero steps taken), and every point and the KDE are judged
by one Evaluator. A point before the end is a run part-way through its learning-rate schedule (annealed only at
--max_steps), not a run of that length; the last point is. A point counts as past the KDE only beyond two combined
errors (|ΔFID∞| > 2 √(e₁² + e₂²)).

    OMP_NUM_THREADS=2 python scripts/learning_curve.py autoregressive --dataset fashion_mnist --budget cpu --max_steps 1000 --every 250
"""

from __future__ import annotations

import argparse
import json
import shlex
from pathlib import Path

from hfgen.evaluation import Evaluator
from hfgen.evaluation.evaluator import markdown_table
from hfgen.evaluation.metrics import fid_verdict
from hfgen.families import get_family
from hfgen.loading import load_pipeline
from hfgen.training.checkpoints import CHECKPOINT_PATTERN, CHECKPOINTS_FOLDER, list_checkpoints
from hfgen.training.launch import train_or_keep
from hfgen.zoo.run import BUDGETS, ZooArguments, training_runs

KDE_ROW = "scikit-learn KDE"


def main(argv: list[str] | None = None) -> dict[str, dict]:
    """Train, write out and judge every point; returns the table's rows (what learning_curve.json holds)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("family")
    parser.add_argument("--max_steps", type=int, required=True, help="The run's length: its last point.")
    parser.add_argument("--every", type=int, required=True, help="Steps between points (the run's checkpoints).")
    parser.add_argument("--base", default="", help="Extra `hfgen train` flags of the run.")
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--budget", default="laptop")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--num_samples", type=int, help="Samples per point (default: the budget's).")
    parser.add_argument("--output_dir", default="learning-curve")
    parser.add_argument(
        "--reuse_trained", action="store_true",
        help="Keep the run and the points already written out (as `hfgen zoo --reuse_trained`): judge again without training.",
    )
    args = parser.parse_args(argv)
    if not 0 < args.every <= args.max_steps:
        parser.error(f"--every {args.every} must be between 1 and --max_steps {args.max_steps}: one point per checkpoint.")

    root = Path(args.output_dir) / args.dataset / args.family
    run_folder = root / f"steps{args.max_steps}-seed{args.seed}"
    num_samples = args.num_samples or BUDGETS[args.budget].num_samples
    flags = [
        *shlex.split(args.base), "--max_steps", str(args.max_steps), "--checkpointing_steps", str(args.every),
        "--sample_steps", str(args.every), "--checkpoints_total_limit", str(args.max_steps // args.every),
    ]
    run_seconds = 0.0
    for family, run_argv in training_runs(ZooArguments(dataset=args.dataset, budget=args.budget, seed=args.seed), args.family, run_folder):
        run_argv = [*run_argv, *(flags if family == args.family else [])]
        run_seconds += train_or_keep(family, run_argv, args.reuse_trained)

    folders = {}
    for checkpoint in list_checkpoints(run_folder / CHECKPOINTS_FOLDER):
        step = int(CHECKPOINT_PATTERN.match(checkpoint.name).group(1))
        folders[step] = run_folder.with_name(f"{run_folder.name}-at{step}")
        at_step = [*run_argv, "--max_steps", str(step), "--output_dir", str(folders[step]), "--resume_from_checkpoint", str(checkpoint)]
        train_or_keep(args.family, at_step, args.reuse_trained)
    folders[args.max_steps] = run_folder

    evaluator = Evaluator(args.dataset, seed=args.seed)
    kde = evaluator.reference_rows(num_samples)[KDE_ROW].metrics
    rows: dict[str, dict] = {}
    for step, folder in folders.items():
        pipe = load_pipeline(str(folder))
        options = get_family(args.family).sampling_options(pipe, "dpmsolver", 20)
        metrics = evaluator.evaluate_pipeline(pipe, num_samples, 250, options).metrics
        rows[f"{step} steps"] = metrics | ({"train_seconds": run_seconds} if step == args.max_steps else {})
        print(f"{step} steps: FID∞ {metrics['fid']:.3f} ± {metrics['fid_error']:.3f}", flush=True)
    rows[f"*{KDE_ROW}*"] = kde

    print(f"\n{args.family} on {args.dataset}, `{args.budget}` budget, one run of {args.max_steps} steps (seed {args.seed}), "
          f"{num_samples} samples a point; judge: {evaluator.judge_info['title']}\n")
    print(markdown_table(rows, "point"))
    print()
    for name, row in rows.items():
        if name != f"*{KDE_ROW}*":
            gap, line, verdict = fid_verdict(row, kde)
            against = {"better": "past the KDE", "worse": "behind the KDE", "no difference": "ties the KDE"}[verdict]
            print(f"- {name}: ΔFID∞ {gap:+.3f} against two combined errors {line:.3f}: {against}")
    (root / f"{run_folder.name}.json").write_text(
        json.dumps({"judge": evaluator.judge_info, "num_samples": num_samples, "rows": rows}, indent=2)
    )
    return rows


if __name__ == "__main__":
    main()
