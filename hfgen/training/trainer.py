"""The one training loop, on Accelerate. Families plug in an `Objective` (see `objective.py`)."""

from __future__ import annotations

import contextlib
import json
import math
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from accelerate import Accelerator
from accelerate.state import AcceleratorState
from accelerate.utils import DynamoBackend, ProjectConfiguration, TorchDynamoPlugin, broadcast_object_list, set_seed
from diffusers.training_utils import EMAModel
from torch import nn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm
from transformers import get_scheduler

from ..arguments import TrainingArguments
from ..data.shards import DataStreamError, one_line
from ..images import image_grid
from ..objective import Objective, PreparedModules
from ..randomness import SampleRandomness, sample_seed
from .batches import MicroBatch, SeededRows, ShardedEpochBatches
from .checkpoints import (
    CHECKPOINTS_FOLDER, ENTRY_FILES, BatchSplit, check_resumable, estimate_checkpoint_bytes, list_checkpoints, load_checkpoint, publish,
    read_state, resolve_checkpoint, save_checkpoint,
)
from .disk import ensure_space, writing
from .run_lock import RunLock
from .signals import GracefulStop, TrainingStopped, resume_command

if TYPE_CHECKING:
    import datasets

TRAINING_ARGS_FILE = "training_args.json"
LOG_FILE = "train_log.jsonl"
SAMPLE_IDS_FILE = "sample_ids.jsonl"
RUN_INFO_FILE = "run_info.json"
SAMPLE_GRID_FILE = "samples.png"
FINAL_TEMPORARY_DIR = ".tmp-final"
SHARED_CHECK_FILE = ".hfgen-shared-check"
# Training options that fix the trajectory besides the global batch (checked on its own, since any split of it
# continues the same run): a checkpoint written under other values belongs to another run.
RUN_DEFINING_OPTIONS = ("seed",)
DIVERGENCE_ADVICE = (
    "lower --learning_rate, keep --max_grad_norm on, or train in full precision (--mixed_precision no); resume "
    "from the last good checkpoint with --resume_from_checkpoint latest."
)


def training_record(args: TrainingArguments, run_arguments: dict) -> dict:
    """What training_args.json holds: the training arguments and the run's others (data, model), as JSON values."""
    return json.loads(json.dumps({"training": args.to_dict(), **run_arguments}, default=str))


@dataclass
class TrainOutput:
    global_step: int
    train_seconds: float
    samples_per_second: float
    logs: dict[str, float]


class Trainer:
    """Runs an `Objective` for `args.max_steps` optimizer steps and leaves a Hub-ready folder.

    `run_arguments` (e.g. the data and model arguments) are saved next to the training arguments so a run
    can be repeated from its folder alone, and with every checkpoint so resume can refuse another run's.
    `command` (e.g. `["hfgen", "train", "vae", ...]`) is how the run was started: the resume line repeats it.
    """

    def __init__(
        self, objective: Objective, args: TrainingArguments, run_arguments: dict | None = None,
        command: list[str] | None = None,
    ) -> None:
        self.objective, self.args = objective, args
        self.run_arguments = run_arguments or {}
        self.command = command
        self.output_dir = Path(args.output_dir)
        # accelerate keeps the precision of the first Accelerator in the process and refuses (or, given None,
        # silently keeps) another: each run starts from its own, as transformers' Trainer does between runs.
        # The distributed PartialState stays.
        AcceleratorState._reset_state()
        self.accelerator = Accelerator(
            gradient_accumulation_steps=args.gradient_accumulation_steps,
            mixed_precision=args.mixed_precision,
            dynamo_backend="no",  # compiled in place below instead: state dicts keep their keys
            log_with="tensorboard",
            project_config=ProjectConfiguration(project_dir=str(self.output_dir), logging_dir=str(self.output_dir / "logs")),
        )
        _require_mixed_precision(self.accelerator)
        set_seed(args.seed)
        modules = objective.build_modules()
        compile_options = compile_options_of(args)
        for module in modules.values():
            if args.channels_last:
                module.to(memory_format=torch.channels_last)  # 4-D weights only; a conv's output follows its weight
            if compile_options:
                module.compile(**compile_options)
        specs = objective.optimizers()
        self.optimizers = {
            phase: torch.optim.AdamW(
                [p for name in spec.modules for p in modules[name].parameters()],
                lr=spec.learning_rate or args.learning_rate,
                betas=spec.betas or (args.adam_beta1, args.adam_beta2),
                weight_decay=args.weight_decay,
            )
            for phase, spec in specs.items()
        }
        # Schedulers are stepped by hand once per optimizer step (not prepared), so warm-up and length are in
        # optimizer steps whatever the number of processes.
        self.lr_schedulers = {
            phase: get_scheduler(args.lr_scheduler_type, opt, num_warmup_steps=args.lr_warmup_steps, num_training_steps=args.max_steps)
            for phase, opt in self.optimizers.items()
        }
        names = list(modules)
        prepared = self.accelerator.prepare(*modules.values(), *self.optimizers.values())
        self.modules = PreparedModules(dict(zip(names, prepared[: len(names)])), self.accelerator.unwrap_model)
        self.optimizers = dict(zip(self.optimizers, prepared[len(names) :]))
        self.phase_modules = {phase: spec.modules for phase, spec in specs.items()}
        self.emas = {
            name: EMAModel(self.modules.unwrapped(name).parameters(), decay=args.ema_decay, use_ema_warmup=True, power=3 / 4)
            for name in (objective.ema_modules if args.use_ema else ())
        }
        for ema in self.emas.values():
            ema.to(self.accelerator.device)
        # saved with each checkpoint beside accelerate's state, and loaded back without unpickling (checkpoints.py)
        self.custom_objects = [*self.lr_schedulers.values(), *self.emas.values()]
        if hasattr(objective, "state_dict") and hasattr(objective, "load_state_dict"):
            self.custom_objects.append(objective)  # e.g. a KL warm-up counter
        self.checkpoint_dir = self.output_dir / CHECKPOINTS_FOLDER

    # -- the loop -------------------------------------------------------------------------------------------

    def train(self) -> TrainOutput:
        """Train to `max_steps`; on a stop signal, checkpoint and raise `TrainingStopped` (see `signals.py`)."""
        lock = RunLock(self.output_dir) if self.accelerator.is_main_process else contextlib.nullcontext()
        with lock, GracefulStop() as stop, contextlib.ExitStack() as on_exit:
            return self._train(stop, on_exit)

    def _train(self, stop: GracefulStop, on_exit: contextlib.ExitStack) -> TrainOutput:
        args, accelerator = self.args, self.accelerator
        self._check_shared_output_dir()
        self._check_output_dir()
        step = self._maybe_resume()
        loader = train_loader(
            self.objective.train_dataset(), args, accelerator.num_processes, accelerator.process_index,
            start=step * args.gradient_accumulation_steps,
        )
        if accelerator.is_main_process:
            self.output_dir.mkdir(parents=True, exist_ok=True)
            if args.overwrite_output_dir and not args.resume_from_checkpoint:
                self._remove_previous_run()
            self._write_arguments()
            accelerator.init_trackers("hfgen", config=_flat_config(args.to_dict()))
        progress = tqdm(total=args.max_steps, initial=step, desc="training", disable=not accelerator.is_local_main_process)
        on_exit.enter_context(progress)  # an error ends the bar's line first, so the error gets a line of its own
        sums: dict[str, torch.Tensor] = {}
        steps_in_window, window_start, started = 0, time.perf_counter(), time.perf_counter()
        examples_per_step = args.train_batch_size * args.gradient_accumulation_steps * accelerator.num_processes
        logs: dict[str, float] = {}
        try:
            for micro_batches in _optimizer_steps(loader, args.gradient_accumulation_steps, lambda: step >= args.max_steps):
                for key, value in self.training_step(micro_batches, step).items():
                    sums[key] = sums.get(key, 0.0) + value
                if args.log_sample_ids:
                    self._log_sample_ids(micro_batches, step + 1)
                steps_in_window += 1
                step += 1
                progress.update(1)
                if step % args.logging_steps == 0 or step == args.max_steps:
                    elapsed = time.perf_counter() - window_start
                    logs = {k: accelerator.reduce(v / steps_in_window, reduction="mean").item() for k, v in sums.items()}
                    diverged = sorted(k for k, v in logs.items() if not math.isfinite(v))
                    if diverged:
                        raise FloatingPointError(f"{', '.join(diverged)} became non-finite by step {step}: {DIVERGENCE_ADVICE}")
                    logs |= {f"lr_{phase}": s.get_last_lr()[0] for phase, s in self.lr_schedulers.items()}
                    logs["samples_per_second"] = examples_per_step * steps_in_window / elapsed
                    self._log(logs, step)
                    progress.set_postfix({k: f"{v:.4g}" for k, v in logs.items() if "loss" in k})
                    sums, steps_in_window, window_start = {}, 0, time.perf_counter()
                saved = False
                if step % args.checkpointing_steps == 0 and step < args.max_steps:
                    saved = self._save_checkpoint(step)
                if step % args.sample_steps == 0 and step < args.max_steps:
                    self._write_samples(self.output_dir / "samples" / f"step-{step:06d}", step)
                if step < args.max_steps and stop.requested(accelerator):
                    progress.close()
                    self._stop(step, stop, saved)
        except DataStreamError as error:  # the data for step + 1 could not be read: keep step's work
            progress.close()
            self._stream_failed(step, error)
        progress.close()
        train_seconds = time.perf_counter() - started
        self._finish(step)
        return TrainOutput(step, train_seconds, logs.get("samples_per_second", 0.0), logs)

    def training_step(self, micro_batches: list[MicroBatch], step: int) -> dict[str, torch.Tensor]:
        """Optimizer step `step` (from 0) on this process's micro-batches: every phase in turn over all of them
        (forward, backward), then its clip, optimizer and LR step; then the EMA. Phase by phase, so a later phase
        (the GAN's generator) meets the earlier ones already updated on the whole global batch, as with one big
        batch, however it is split. Returns the detached loss terms, averaged over the micro-batches. Its own method
        so a benchmark times exactly this step."""
        args, accelerator = self.args, self.accelerator
        micro_batches = [
            m._replace(batch={k: v.to(accelerator.device, non_blocking=True) for k, v in m.batch.items()}) for m in micro_batches
        ]
        terms: dict[str, torch.Tensor] = {}
        for phase, optimizer in self.optimizers.items():
            loss_key = f"{phase}_loss" if len(self.optimizers) > 1 else "loss"
            with self._only_training(phase):
                for micro in micro_batches:
                    samples = range(micro.first, micro.first + len(micro.indices))
                    randomness = SampleRandomness(args.seed, samples, step, accelerator.device)
                    torch.manual_seed(sample_seed(args.seed, micro.first, f"{phase}/global"))  # dropout's masks, see hfgen.randomness
                    with accelerator.accumulate(*self.modules.values()):
                        output = self.objective.compute_loss(phase, micro.batch, self.modules, randomness)
                        accelerator.backward(output.loss)
                    for key, value in {loss_key: output.loss, **output.logs}.items():
                        terms[key] = terms.get(key, 0.0) + value.detach().float() / len(micro_batches)
            if args.max_grad_norm:
                accelerator.clip_grad_norm_(self._parameters(phase), args.max_grad_norm)
            optimizer.step()
            if not optimizer.step_was_skipped:
                self.lr_schedulers[phase].step()
            optimizer.zero_grad(set_to_none=True)
        for name, ema in self.emas.items():
            ema.step(self.modules.unwrapped(name).parameters())
        return terms

    # -- pieces ---------------------------------------------------------------------------------------------

    def _maybe_resume(self) -> int:
        spec = self.args.resume_from_checkpoint
        if not spec:
            return 0
        checkpoint = resolve_checkpoint(spec, self.checkpoint_dir)
        if checkpoint is None:  # `latest` before any checkpoint exists: a fresh start, as a restarted job expects
            return 0
        state = read_state(checkpoint)
        check_resumable(checkpoint, state, self._run_state())
        try:
            load_checkpoint(self.accelerator, checkpoint, self.custom_objects)
        except RuntimeError as error:  # e.g. `size mismatch for conv_in.weight`, from a checkpoint saved before run checks
            reason = str(error).strip().splitlines()[-1].strip()
            raise ValueError(
                f"Checkpoint {checkpoint} does not fit this model ({reason}): resume with the options it was trained "
                f"with (its run's {TRAINING_ARGS_FILE}), or start fresh with --overwrite_output_dir."
            ) from None
        # accelerate restores its micro-step counter; every checkpoint is at an optimizer step, and another
        # --gradient_accumulation_steps would misalign the counter's sync points.
        self.accelerator.step = 0
        step = int(state["step"])
        if step > self.args.max_steps:
            raise ValueError(f"Checkpoint {checkpoint} is at step {step}, past --max_steps {self.args.max_steps}: raise --max_steps.")
        return step

    def _run_state(self) -> dict:
        """What makes a checkpoint this run's: saved with each checkpoint, compared on resume (`check_resumable`)."""
        training = {name: getattr(self.args, name) for name in RUN_DEFINING_OPTIONS}
        run = json.loads(json.dumps({**self.run_arguments, "training": training}, default=str))
        split = BatchSplit(self.args.train_batch_size, self.accelerator.num_processes, self.args.gradient_accumulation_steps)
        return {"batch_split": split.as_dict(), "run": run}

    def _check_shared_output_dir(self) -> None:
        """Refuse at start, in one line, processes that do not all see --output_dir: on machines without a shared
        filesystem a resume would find the checkpoint on one machine and start afresh on another. The main process
        writes a random token there; every process must read it back."""
        accelerator = self.accelerator
        if accelerator.num_processes == 1:
            return
        marker = self.output_dir / SHARED_CHECK_FILE
        token = broadcast_object_list([uuid.uuid4().hex if accelerator.is_main_process else None])[0]
        if accelerator.is_main_process:
            self.output_dir.mkdir(parents=True, exist_ok=True)
            marker.write_text(token)
        accelerator.wait_for_everyone()
        sees = torch.tensor([float(marker.is_file() and marker.read_text() == token)], device=accelerator.device)
        blind = [index for index, seen in enumerate(accelerator.gather(sees).tolist()) if not seen]
        accelerator.wait_for_everyone()
        if accelerator.is_main_process:
            marker.unlink()
        if blind:
            raise ValueError(
                f"--output_dir {str(self.output_dir)!r} is not shared by all {accelerator.num_processes} processes "
                f"(process {', '.join(map(str, blind))} cannot see what process 0 writes there): put it on a filesystem "
                "every machine mounts (NFS, Lustre, a cloud bucket mounted alike), since checkpoints, logs and the "
                "final model are written once, by process 0, and read back by every process on resume."
            )

    def _check_output_dir(self) -> None:
        """Like transformers' Trainer: never start a fresh run over a finished model or another run's checkpoints."""
        if self.args.resume_from_checkpoint or self.args.overwrite_output_dir:
            return
        finished = [name for name in ENTRY_FILES if (self.output_dir / name).is_file()]
        checkpoints = list_checkpoints(self.checkpoint_dir)
        if finished or checkpoints:
            holds = f"a finished model ({finished[0]})" if finished else f"checkpoints up to {checkpoints[-1].name}"
            raise ValueError(
                f"--output_dir {str(self.output_dir)!r} already holds {holds}: continue it with "
                f"--resume_from_checkpoint latest, replace it with --overwrite_output_dir, or pick another --output_dir."
            )

    def _remove_previous_run(self) -> None:
        """--overwrite_output_dir: drop the old run's checkpoints and log, which the new run would mix with its own."""
        shutil.rmtree(self.checkpoint_dir, ignore_errors=True)
        for log in (LOG_FILE, SAMPLE_IDS_FILE):
            (self.output_dir / log).unlink(missing_ok=True)

    def _save_checkpoint(self, step: int) -> bool:
        self._check_finite(step, f"checkpoint-{step}")
        needed = estimate_checkpoint_bytes(self.checkpoint_dir, self._parameter_bytes())
        limit = self.args.checkpoints_total_limit
        save_checkpoint(self.accelerator, self.checkpoint_dir, step, limit, self._run_state(), needed, self.custom_objects)
        return True

    def _stop(self, step: int, stop: GracefulStop, saved: bool) -> None:
        """Checkpoint (unless this step just was) and end the run with the line that says how to continue."""
        if not saved:
            self._save_checkpoint(step)
        self.accelerator.end_training()
        raise TrainingStopped(
            f"stopped by {stop.signal.name if stop.signal else 'a signal on another process'} at step {step} of "
            f"{self.args.max_steps}, checkpoint {self.checkpoint_dir / f'checkpoint-{step}'}; resume with: "
            f"{resume_command(self.command, self.accelerator.num_processes)}",
            step, self.accelerator.is_main_process,
        )

    def _stream_failed(self, step: int, error: DataStreamError) -> None:
        """Checkpoint the finished steps and end the run with the line that says what failed and how to continue.
        With several processes only the failing one is here - a checkpoint needs them all - so the last periodic
        checkpoint is the one to resume from."""
        if self.accelerator.num_processes == 1:
            if not (self.checkpoint_dir / f"checkpoint-{step}").is_dir():
                self._save_checkpoint(step)
            where = f"checkpoint {self.checkpoint_dir / f'checkpoint-{step}'}"
        else:
            where = f"the last checkpoint in {self.checkpoint_dir}"
        raise TrainingStopped(
            f"the data stream failed after step {step} of {self.args.max_steps}: {one_line(error)}; {where}; "
            f"resume with: {resume_command(self.command, self.accelerator.num_processes)}",
            step, True,
        )

    def _check_finite(self, step: int, what: str) -> None:
        """Never write non-finite weights: stop with the divergence line, keeping the last good checkpoint."""
        bad = [
            f"{prefix}{name}"
            for prefix, tensors in self._saved_tensors()
            for name, tensor in tensors
            if tensor.is_floating_point() and not torch.isfinite(tensor).all()
        ]
        if bad:
            shown = ", ".join(bad[:3]) + (f" and {len(bad) - 3} more" if len(bad) > 3 else "")
            raise FloatingPointError(f"{shown} became non-finite by step {step}, so {what} was not written: {DIVERGENCE_ADVICE}")

    def _saved_tensors(self) -> Iterator[tuple[str, Iterator[tuple[str, torch.Tensor]]]]:
        for name in self.modules:
            yield f"{name}.", iter(self.modules.unwrapped(name).state_dict().items())
        for name, ema in self.emas.items():
            yield f"EMA of {name} #", ((str(i), p) for i, p in enumerate(ema.shadow_params))

    def _parameter_bytes(self) -> int:
        return sum(p.numel() * p.element_size() for name in self.modules for p in self.modules.unwrapped(name).parameters())

    def _parameters(self, phase: str) -> Iterator[nn.Parameter]:
        for name in self.phase_modules[phase]:
            yield from self.modules[name].parameters()

    @contextlib.contextmanager
    def _only_training(self, phase: str) -> Iterator[None]:
        """Freeze other phases' parameters so this phase's backward cannot leak gradients into them."""
        if len(self.optimizers) == 1:
            yield
            return
        frozen = [p for other in self.optimizers if other != phase for p in self._parameters(other)]
        for p in frozen:
            p.requires_grad_(False)
        try:
            yield
        finally:
            for p in frozen:
                p.requires_grad_(True)

    @contextlib.contextmanager
    def _whole_modules(self) -> Iterator[dict[str, nn.Module] | None]:
        """On the main process, a fresh copy of every network (the objective builds it) holding the EMA weights, whole,
        in eval mode; None on the others. The weights come through `accelerator.get_state_dict`, which gathers a
        sharded model's full state dict (FSDP, DeepSpeed ZeRO-3) - a collective, so every process enters. The
        training networks are left exactly as they were."""
        accelerator = self.accelerator
        modules = {name: self.modules.unwrapped(name) for name in self.modules}
        for name, ema in self.emas.items():
            ema.store(modules[name].parameters())
            ema.copy_to(modules[name].parameters())
        try:
            states = {name: accelerator.get_state_dict(self.modules[name]) for name in self.modules}
            copies = self.objective.build_modules() if accelerator.is_main_process else None
            for name, copy in (copies or {}).items():
                copy.load_state_dict(states[name])  # copies now: the states share storage with the live weights
                copy.to(accelerator.device).eval()
        finally:
            for name, ema in self.emas.items():
                ema.restore(modules[name].parameters())
        yield copies

    def _write_samples(self, stem: Path, step: int) -> None:
        """Sample grid (or text) and validation metrics on the main process (every process gathers the weights),
        fixed generator, global RNG untouched."""
        with self._whole_modules() as modules:
            if modules is not None:
                with torch.no_grad():
                    generator = torch.Generator(self.accelerator.device).manual_seed(self.args.seed)
                    samples = self.objective.samples(modules, self.args.num_grid_images, generator)
                    validation = self.objective.validation_logs(modules)
                with writing(stem.parent, "the sample grid"):
                    stem.parent.mkdir(parents=True, exist_ok=True)
                    if isinstance(samples, torch.Tensor):
                        image_grid(samples).save(stem.with_suffix(".png"))
                    else:
                        stem.with_suffix(".txt").write_text("\n\n---\n\n".join(samples))
                if validation:
                    self._log(validation, step)
        self.accelerator.wait_for_everyone()

    def _log(self, logs: dict[str, float], step: int) -> None:
        self.accelerator.log(logs, step=step)
        if self.accelerator.is_main_process:
            with writing(self.output_dir, LOG_FILE), open(self.output_dir / LOG_FILE, "a") as f:
                f.write(json.dumps({"step": step, **logs}) + "\n")

    def _log_sample_ids(self, micro_batches: list[MicroBatch], step: int) -> None:
        """Append to SAMPLE_IDS_FILE the dataset index of every sample of optimizer step `step`, gathered from every
        process and put in stream order: what an exact, elastic resume must repeat, sample for sample."""
        positions = [m.first + k for m in micro_batches for k in range(len(m.indices))]
        indices = [index for m in micro_batches for index in m.indices]
        pairs = self.accelerator.gather(torch.tensor([positions, indices], device=self.accelerator.device).T.contiguous())
        if self.accelerator.is_main_process:
            ordered = pairs[pairs[:, 0].argsort()].tolist()
            record = {"step": step, "first": ordered[0][0], "sample_ids": [index for _, index in ordered]}
            with writing(self.output_dir, SAMPLE_IDS_FILE), open(self.output_dir / SAMPLE_IDS_FILE, "a") as f:
                f.write(json.dumps(record) + "\n")

    def _write_arguments(self) -> None:
        arguments = training_record(self.args, self.run_arguments)
        with writing(self.output_dir, TRAINING_ARGS_FILE):
            (self.output_dir / TRAINING_ARGS_FILE).write_text(json.dumps(arguments, indent=2))

    def _save_final_weights(self) -> None:
        """Weights and configs go to a hidden folder first, then into place: a full disk or a kill never leaves
        half-written weights where `from_pretrained` would load them. Every process gathers; the main one writes."""
        with self._whole_modules() as modules:
            if modules is not None:
                temporary, needed = self.output_dir / FINAL_TEMPORARY_DIR, self._parameter_bytes()
                shutil.rmtree(temporary, ignore_errors=True)
                ensure_space(self.output_dir, needed, "the final weights")
                with writing(self.output_dir, "the final weights", needed, partial=temporary):
                    self.objective.save_pretrained(modules, temporary)
                publish(temporary, self.output_dir)

    def _replica_checksum(self) -> torch.Tensor:
        """(1, 2) float64: sum and sum of squares of every parameter - equal on every process iff in sync."""
        params = [p.detach().double() for name in self.modules for p in self.modules.unwrapped(name).parameters()]
        total = torch.stack([torch.stack([p.sum(), p.square().sum()]) for p in params]).sum(0)
        return total.unsqueeze(0).to(self.accelerator.device)

    def _finish(self, step: int) -> None:
        """Write the Hub-ready folder: weights and configs (EMA weights when kept), arguments, sample grid."""
        self._check_finite(step, "the final weights")
        checksums = self.accelerator.gather(self._replica_checksum()).tolist()
        if self.accelerator.is_main_process:
            info = {
                "distributed_type": str(self.accelerator.distributed_type.value),
                "num_processes": self.accelerator.num_processes,
                "backend": self.accelerator.state.backend,
                "mixed_precision": self.accelerator.mixed_precision,
                "global_step": step,
                "replica_checksums": checksums,
            }
            with writing(self.output_dir, RUN_INFO_FILE):
                (self.output_dir / RUN_INFO_FILE).write_text(json.dumps(info, indent=2))
        self.accelerator.wait_for_everyone()
        self._save_final_weights()
        self._write_samples(self.output_dir / Path(SAMPLE_GRID_FILE).stem, step)
        self._end_training()

    def _end_training(self) -> None:
        """Drop the DDP wrappers, then the process group. In the other order the last reference to a gloo group is
        a wrapper's reducer, whose destructor joins gloo's worker threads with the GIL held while a worker may wait
        for the GIL to free a tensor: a deadlock (pytorch#56297), seen at exit of a 2-process run under load.
        `destroy_process_group` destroys the group with the GIL released."""
        self.modules = PreparedModules({name: self.modules.unwrapped(name) for name in self.modules}, lambda module: module)
        self.accelerator.free_memory()  # accelerate's own references to the wrappers (and a gc pass)
        self.accelerator.end_training()


def compile_options_of(args: TrainingArguments) -> dict[str, Any] | None:
    """torch.compile's options: --torch_compile's backend, else `accelerate launch --dynamo_backend`'s (its config and
    environment); None trains eagerly. Networks compile in place (`nn.Module.compile`) rather than inside a wrapper,
    as accelerate's prepare would: their state dicts keep their keys, so checkpoints and saved folders are the same
    whether a run compiled or not, and one can resume the other."""
    plugin = TorchDynamoPlugin(backend=args.torch_compile_backend if args.torch_compile else None)
    # Training shapes are fixed: without dynamic=False, a second network of the same class in the process (the zoo's
    # latent diffusion after pixel diffusion) recompiles with symbolic shapes, which inductor 2.13 cannot always lower
    # for channels-last strides.
    return None if plugin.backend == DynamoBackend.NO else {"dynamic": False} | plugin.to_kwargs()


def _require_mixed_precision(accelerator: Accelerator) -> None:
    """Refuse fp16 where accelerate would not autocast (a CPU): it trains in full fp32 there while reporting fp16."""
    if accelerator.mixed_precision == "fp16" and not accelerator.native_amp:
        raise ValueError(
            f"--mixed_precision fp16 needs a GPU: on {accelerator.device.type} accelerate trains in full fp32 without "
            "autocast; use --mixed_precision bf16 (autocast to bfloat16) or no."
        )


def train_loader(
    dataset: datasets.Dataset, args: TrainingArguments, num_processes: int = 1, process_index: int = 0, start: int = 0
) -> DataLoader:
    """This process's endless stream of `MicroBatch`es from micro-step `start`, decoded and transformed
    in `args.dataloader_num_workers` worker processes."""
    batches = ShardedEpochBatches(
        len(dataset), args.train_batch_size, num_processes, process_index, args.seed, start, args.gradient_accumulation_steps,
        getattr(dataset, "shard_sizes", None),  # a streamed dataset (`hfgen.data.shards`) is shuffled shard-wise
    )
    # batch_size=None: each sampled index list is fetched in one `dataset[indices]` call (batched transform), with
    # per-sample generators for random augmentations (`SeededRows`).
    return DataLoader(
        SeededRows(dataset, args.seed, batches), sampler=batches.positioned(), batch_size=None, num_workers=args.dataloader_num_workers,
        generator=torch.Generator(),  # keeps the global RNG untouched when iterators are created
    )


def _optimizer_steps(loader: DataLoader, accumulation_steps: int, done: Callable[[], bool]) -> Iterator[list[MicroBatch]]:
    """The micro-batches of each optimizer step from an endless loader until `done()`; checked before each fetch so
    no batch is wasted."""
    iterator = iter(loader)
    while not done():
        yield [next(iterator) for _ in range(accumulation_steps)]


def _flat_config(config: dict) -> dict:
    """Tensorboard hparams accept only scalars."""
    return {k: v for k, v in config.items() if isinstance(v, (int, float, str, bool)) and not (isinstance(v, float) and math.isnan(v))}
