"""The zoo run behind `hfgen zoo`: the seed's comparison table, measured - every family trained on the same data
with a set budget, judged by the same `Evaluator` with the same seed, written up as `<output_dir>/README.md`."""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from accelerate import PartialState

from ..arguments import require_dataset, require_existing, require_positive, require_seed, require_writable
from ..evaluation.evaluator import Evaluation, Evaluator, evaluation_results, markdown_table
from ..evaluation.judges import JUDGE_HELP, JUDGE_MODEL_HELP, JudgeName, check_judge_model
from ..families import LikelihoodSettings, ZooPlan, ZooPrerequisite, family_names, get_family
from ..hub.cards import update_card, write_card
from ..loading import load_pipeline
from ..plots import loss_figure, sample_figure
from ..training.launch import finished_run_seconds, machine, train
from ..training.trainer import LOG_FILE, RUN_INFO_FILE


@dataclass(frozen=True)
class Budget:
    """What every family shares under one budget; each family's steps and model size are its own
    (`Family.zoo`, in its `family.py`)."""

    training: tuple[str, ...]
    """`--flag value` pairs every family gets (batch size, logging) unless its plan sets the flag."""
    num_samples: int
    likelihood: LikelihoodSettings


BUDGETS: dict[str, Budget] = {
    # Seconds in all, for tests: tiny networks, two steps, a hundred samples.
    "tiny": Budget(
        training=("--train_batch_size", "16", "--num_grid_images", "4", "--logging_steps", "1", "--lr_warmup_steps", "0"),
        num_samples=100,
        likelihood=LikelihoodSettings(iwae_samples=4, bpd_timesteps=4),
    ),
    # A few minutes per family on digits on a laptop CPU, with each family's default model.
    "laptop": Budget(
        training=("--train_batch_size", "64", "--logging_steps", "25", "--lr_warmup_steps", "100"),
        num_samples=2000,
        likelihood=LikelihoodSettings(iwae_samples=1000, bpd_timesteps=100),
    ),
    # Fashion-MNIST in about three and a half hours on 2 CPU cores (scripts/zoo_fashion_mnist.sh; timed in
    # docs/evaluation.md): short trainings, 1,000 samples per model, bits/dim on 1,000 test images (the VAE's IWAE
    # bound takes 0.16 s an image).
    "cpu": Budget(
        training=("--train_batch_size", "64", "--logging_steps", "50", "--lr_warmup_steps", "200"),
        num_samples=1000,
        likelihood=LikelihoodSettings(iwae_samples=100, bpd_timesteps=10, test_images=1000),
    ),
    # A real run (GPU, or hours of CPU): e.g. Fashion-MNIST, see scripts/zoo_fashion_mnist.sh.
    "full": Budget(
        training=("--train_batch_size", "128", "--logging_steps", "100", "--lr_warmup_steps", "500"),
        num_samples=10000,
        likelihood=LikelihoodSettings(iwae_samples=1000, bpd_timesteps=1000),
    ),
}


@dataclass
class ZooArguments:
    dataset: str = field(default="digits", metadata={"help": "Dataset every family trains and is judged on."})
    data_dir: str | None = field(default=None, metadata={"help": "Folder with the Fashion-MNIST IDX files."})
    output_dir: str = field(default="zoo-report", metadata={"help": "Where models, figures and README.md are written."})
    budget: Literal["tiny", "laptop", "cpu", "full"] = field(
        default="laptop",
        metadata={"help": "tiny: seconds (tests); laptop: minutes per family on digits; cpu: ~3.5 h of 2 cores on "
                  "Fashion-MNIST; full: GPU/hours."},
    )
    families: list[str] | None = field(default=None, metadata={"help": "Families to train (default: all available)."})
    max_steps: int | None = field(default=None, metadata={"help": "Override the budget's steps for every family."})
    num_samples: int | None = field(default=None, metadata={"help": "Samples per model (default: the budget's)."})
    batch_size: int = field(default=250, metadata={"help": "Images per pipeline call when sampling."})
    steps: int = field(default=20, metadata={"help": "Diffusion: DPM-Solver++ steps when sampling."})
    seed: int = field(default=0, metadata={"help": "One seed for training, sampling and metrics."})
    judge: JudgeName | None = field(default=None, metadata={"help": JUDGE_HELP})
    judge_model: str | None = field(default=None, metadata={"help": JUDGE_MODEL_HELP})
    reuse_trained: bool = field(
        default=False,
        metadata={"help": "Keep each model whose folder already holds a finished run of exactly the options the zoo "
                  "would train it with (its recorded train time goes in the table); train the others. A zoo stopped "
                  "part-way continues with the same command plus this flag."},
    )

    def __post_init__(self) -> None:
        unknown = sorted(set(self.families or ()) - set(family_names()))
        if unknown:
            raise ValueError(f"Unknown families {unknown}: use some of {', '.join(family_names())}.")
        require_positive(self, "max_steps", "num_samples", "batch_size", "steps")
        require_seed(self)
        require_dataset("dataset", self.dataset)
        require_existing("data_dir", self.data_dir, "folder")
        require_writable("output_dir", self.output_dir, "folder")
        check_judge_model(self.judge, self.judge_model)


def log(message: str) -> None:
    if PartialState().is_main_process:
        print(f"[zoo {time.strftime('%H:%M:%S')}] {message}", flush=True)


def available_families(names: list[str]) -> tuple[list[str], dict[str, str]]:
    """The families whose module imports, and why each other one does not (reported, not fatal)."""
    available, missing = [], {}
    for name in names:
        try:
            get_family(name)
            available.append(name)
        except ImportError as error:
            missing[name] = str(error)
    return available, missing


def train_argv(args: ZooArguments, family: str, output_dir: Path, plan: ZooPlan | None = None) -> list[str]:
    plan = plan or get_family(family).zoo[args.budget]
    steps = args.max_steps or plan.max_steps
    prerequisite = plan.prerequisite
    return [
        "--dataset", args.dataset, *(["--data_dir", args.data_dir] if args.data_dir else []),
        "--output_dir", str(output_dir), "--overwrite_output_dir", "--seed", str(args.seed), "--max_steps", str(steps),
        "--sample_steps", str(steps), "--checkpointing_steps", str(steps),  # one final grid, no mid-run checkpoints
        *budget_flags(BUDGETS[args.budget], plan), *plan.flags,
        *([prerequisite.flag, str(prerequisite_folder(output_dir, prerequisite))] if prerequisite else []),
    ]


def budget_flags(budget: Budget, plan: ZooPlan) -> list[str]:
    """The budget's `--flag value` pairs that the family's plan does not set itself (its own warm-up, say)."""
    pairs = zip(budget.training[::2], budget.training[1::2])
    return [item for flag, value in pairs if flag not in plan.flags for item in (flag, value)]


def prerequisite_folder(output_dir: Path, prerequisite: ZooPrerequisite) -> Path:
    """Where the model a family builds on is trained: models/latent-diffusion-vae next to models/latent-diffusion."""
    return output_dir.with_name(f"{output_dir.name}-{prerequisite.family}")


def training_runs(args: ZooArguments, family: str, output_dir: Path) -> list[tuple[str, list[str]]]:
    """(family, argv) of each `hfgen train` the zoo runs for `family`: the model it needs first, then its own."""
    plan = get_family(family).zoo[args.budget]
    first = plan.prerequisite
    before = [(first.family, train_argv(args, first.family, prerequisite_folder(output_dir, first), first.plan))] if first else []
    return [*before, (family, train_argv(args, family, output_dir, plan))]


def run_zoo(args: ZooArguments) -> dict[str, dict[str, Any]] | None:
    """Train, evaluate and report every available family; returns the table rows (main process)."""
    output_dir = Path(args.output_dir)
    budget = BUDGETS[args.budget]
    num_samples = args.num_samples or budget.num_samples
    families, missing = available_families(args.families or family_names())
    for name, reason in missing.items():
        log(f"{name}: missing, not in the report ({reason})")

    trained: dict[str, tuple[Path, float]] = {}
    for number, family in enumerate(families, 1):
        folder = output_dir / "models" / family
        try:
            seconds = 0.0  # a family's train time includes the model it needs first
            for name, argv in training_runs(args, family, folder):
                what = family if name == family else f"{name}, which {family} needs first,"
                run_folder = output_folder(argv)
                kept = finished_run_seconds(name, argv, PartialState().num_processes) if args.reuse_trained else None
                if kept is not None:
                    log(f"keeping {what} ({number}/{len(families)}): {run_folder} holds this run, "
                        f"trained in {kept:.0f} s")
                    seconds += kept
                    continue
                log(f"training {what} ({number}/{len(families)}): hfgen train {name} {' '.join(argv)}")
                seconds += train(name, argv).train_seconds
                if PartialState().is_main_process:
                    write_card(run_folder)
            trained[family] = (folder, seconds)
        except Exception as error:  # one broken family must not cost the others' hours: report it instead
            missing[family] = f"training failed: {type(error).__name__}: {error}"
            log(f"{family}: {missing[family]}")

    log(f"evaluating on {args.dataset} with {num_samples} samples per model")
    evaluator = Evaluator(
        args.dataset, args.data_dir, args.seed, likelihood_images=budget.likelihood.test_images, judge=args.judge,
        judge_model=args.judge_model,
    )
    log(f"judge: {evaluator.judge_info['title']}")
    rows: dict[str, Evaluation] = {}
    train_seconds: dict[str, float] = {}
    for family, (folder, seconds) in trained.items():
        pipe = load_pipeline(str(folder)).to(PartialState().device)
        options = get_family(family).sampling_options(pipe, "dpmsolver", args.steps)
        settings = dataclasses.replace(budget.likelihood, grey_levels=evaluator.grey_levels)
        likelihood_options = get_family(family).likelihood_options(settings)
        likelihood: dict[str, Any] = {}
        for number, (name, row_options) in enumerate(table_rows(family).items()):
            log(f"evaluating {name}")
            evaluation = evaluator.evaluate_pipeline(  # one likelihood per model: its rows share it
                pipe, num_samples, args.batch_size, options | row_options, None if number else likelihood_options
            )
            if evaluation is not None:
                likelihood = likelihood or {k: v for k, v in evaluation.metrics.items() if k.startswith("bits_per_dim")}
                evaluation.metrics |= likelihood
                rows[name], train_seconds[name] = evaluation, seconds
                if not number:  # the model's card carries its first (default) row
                    update_card(folder, evaluation_results(str(folder), pipe, evaluator, num_samples, evaluation))
    if not PartialState().is_main_process:
        return None
    log("reference rows: real test images, scikit-learn KDE, SMOTE, Gaussian noise")
    references = evaluator.reference_rows(num_samples)

    table = {name: {**e.metrics, "train_seconds": train_seconds[name]} for name, e in rows.items()}
    table |= {f"*{name}*": e.metrics for name, e in references.items()}
    write_report(args, output_dir, table, rows, references, trained, missing, evaluator, num_samples)
    log(f"wrote {output_dir / 'README.md'}")
    return table


def output_folder(argv: list[str]) -> Path:
    """The --output_dir of one of `training_runs`' argv (every one names it)."""
    return Path(argv[argv.index("--output_dir") + 1])


def recorded_hardware(run_folder: Path) -> str:
    """What a run's run_info.json says it trained on (`hfgen train` records it)."""
    try:
        return json.loads((run_folder / RUN_INFO_FILE).read_text())["hardware"]
    except (OSError, ValueError, KeyError):
        return "hardware not recorded"


def table_rows(family: str) -> dict[str, dict[str, Any]]:
    """Row name -> pipeline call options of one trained family: its declared `zoo_rows`, or one plain row."""
    declared = get_family(family).zoo_rows
    return {f"{family} ({label})": options for label, options in declared.items()} if declared else {family: {}}


def write_report(
    args: ZooArguments,
    output_dir: Path,
    table: dict[str, dict[str, Any]],
    rows: dict[str, Evaluation],
    references: dict[str, Evaluation],
    trained: dict[str, tuple[Path, float]],
    missing: dict[str, str],
    evaluator: Evaluator,
    num_samples: int,
) -> None:
    """README.md (table, figures, how to reproduce), samples.png, loss_curves.png and metrics.json."""
    output_dir.mkdir(parents=True, exist_ok=True)
    sample_figure({"real test images": evaluator.test} | {f: e.images for f, e in rows.items()}, output_dir / "samples.png")
    logs = {family: folder / LOG_FILE for family, (folder, _) in trained.items() if (folder / LOG_FILE).is_file()}
    if logs:
        loss_figure(logs, output_dir / "loss_curves.png")
    judge = evaluator.judge_info
    results = {"dataset": args.dataset, "budget": args.budget, "num_samples": num_samples, "seed": args.seed,
               "judge": judge, "rows": table, "missing": missing}
    (output_dir / "metrics.json").write_text(json.dumps(results, indent=2))
    runs = [(name, argv) for family, (folder, _) in trained.items() for name, argv in training_runs(args, family, folder)]
    commands = "\n".join(f"hfgen train {name} {' '.join(argv)}" for name, argv in runs)
    trained_on = sorted({recorded_hardware(output_folder(argv)) for _, argv in runs})
    lines = [
        f"# hfgen zoo: {args.dataset}",
        "",
        f"Every family trained on `{args.dataset}` with the `{args.budget}` budget and judged by the same code: "
        f"{num_samples} samples per model (seed {args.seed}) against the train split, in the features of one judge: "
        f"**{judge['title']}**{f' (test accuracy {accuracy:.1%})' if (accuracy := judge.get('test_accuracy')) else ''} - "
        f"`--judge {judge['name']}`; numbers of another judge do not compare. "
        "Rows in *italics* are references computed by the same code: real test images (the floor: "
        f"{references['real test images'].images.shape[0]} of them, with a random class mix as a model's), two "
        "trivial baselines every model must beat - scikit-learn's kernel-density sampler in PCA space (clamped to "
        "[0, 1]) and SMOTE (convex combinations of neighbouring training images, no clamp) - and Gaussian noise "
        "(the ceiling). Rows named `family (option)` are one model sampled with that pipeline option.",
        "",
        markdown_table(table, "family"),
        "",
        "± is a delete-half jackknife standard error over the samples (20 random halves). FID∞: FID extrapolated to "
        "infinitely many samples (Chong & Forsyth 2020), so rows with different numbers of images compare; KID "
        f"(unbiased) and precision/recall use subsets of {next(iter(table.values()))['subset_size']} images for "
        "every row. "
        "FID, KID: distances between feature distributions (lower is better). Precision: share of samples inside "
        "the real-data manifold (quality); recall: share of real images inside the samples' manifold (coverage) - "
        "Kynkäänniemi et al. 2019, k=3. NN dist.: RMS pixel distance of a sample to its nearest training image "
        "(near 0: copying). bits/dim: negative log-likelihood of "
        f"{len(evaluator.likelihood_test)} test images ± its standard error, for the families whose pipeline has one "
        f"(n/a otherwise). Train time is wall-clock, on {' and '.join(trained_on) or 'no recorded hardware'}; "
        f"samples/s, measured on {machine()}, includes the pipeline's whole "
        f"sampling loop (step-by-step samplers: DPM-Solver++, {args.steps} steps).",
        "",
        "![One sample grid per family](samples.png)",
        "",
        *(["![Training loss curves](loss_curves.png)", ""] if logs else []),
        *([f"Not in this report: {', '.join(f'{name} ({reason})' for name, reason in missing.items())}.", ""] if missing else []),
        "Reproduce:",
        "",
        "```bash",
        f"hfgen zoo --dataset {args.dataset} --budget {args.budget} --judge {judge['name']}"
        f"{f' --judge_model {args.judge_model}' if args.judge_model else ''} --output_dir {args.output_dir}",
        "```",
        "",
        "which ran:",
        "",
        "```bash",
        commands,
        "```",
        "",
    ]
    (output_dir / "README.md").write_text("\n".join(lines))

