"""Does a judge rank models as another does? FID∞ of the reference rows and of models along training runs, under
two judges, with Spearman's rank correlation across all rows (scipy.stats.spearmanr).

Each family trains once per step count with a constant learning rate and one seed: data order and noise are a
function of (seed, step), so every shorter run is a prefix of the longest one - points along one training run.

    OMP_NUM_THREADS=1 python scripts/judge_agreement.py --dataset digits --judges classifier self_supervised
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from scipy.stats import spearmanr

from hfgen.evaluation import Evaluator
from hfgen.loading import load_pipeline
from hfgen.families import get_family
from hfgen.training.launch import train
from hfgen.zoo.run import ZooArguments, train_argv


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--judges", nargs=2, default=["classifier", "self_supervised"])
    parser.add_argument("--families", nargs="+", default=["vae", "gan"])
    parser.add_argument("--steps", nargs="+", type=int, default=[50, 200, 800])
    parser.add_argument("--num_samples", type=int, default=1000)
    parser.add_argument("--output_dir", default="judge-agreement")
    args = parser.parse_args()

    root = Path(args.output_dir)
    models = {}
    for family in args.families:
        for steps in args.steps:
            folder = root / f"{family}-{steps}"
            if not (folder / "model_index.json").is_file():
                argv = train_argv(ZooArguments(dataset=args.dataset, budget="laptop", max_steps=steps), family, folder)
                train(family, [*argv, "--lr_scheduler_type", "constant", "--lr_warmup_steps", "0", "--logging_steps", "50"])
            models[f"{family} {steps} steps"] = folder

    fids: dict[str, dict[str, float]] = {}
    for judge in args.judges:
        evaluator = Evaluator(args.dataset, judge=judge)
        rows = {name: e.metrics for name, e in evaluator.reference_rows(args.num_samples).items()}
        for name, folder in models.items():
            pipe = load_pipeline(str(folder))
            family = get_family(json.loads((folder / "training_args.json").read_text())["family"])
            options = family.sampling_options(pipe, "dpmsolver", 20)
            rows[name] = evaluator.evaluate_pipeline(pipe, args.num_samples, 250, options).metrics
        fids[judge] = {name: row["fid"] for name, row in rows.items()}
        print(f"{judge}: {evaluator.judge_info['title']}")

    first, second = args.judges
    print(f"| row | FID∞ {first} | FID∞ {second} |\n| --- | ---: | ---: |")
    for name in fids[first]:
        print(f"| {name} | {fids[first][name]:.4g} | {fids[second][name]:.4g} |")
    names = list(fids[first])
    rho = spearmanr([fids[first][n] for n in names], [fids[second][n] for n in names]).statistic
    models_only = [n for n in names if n in models]
    rho_models = spearmanr([fids[first][n] for n in models_only], [fids[second][n] for n in models_only]).statistic
    print(f"Spearman's rho, all {len(names)} rows: {rho:.3f}; the {len(models_only)} model rows: {rho_models:.3f}")
    (root / "agreement.json").write_text(json.dumps({"fid": fids, "spearman": rho, "spearman_models": rho_models}, indent=2))


if __name__ == "__main__":
    main()
