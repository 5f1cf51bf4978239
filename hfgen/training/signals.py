"""Graceful stop: a preemption signal ends the run after the current optimizer step, with a checkpoint.

SLURM, Kubernetes and spot instances send SIGTERM (SLURM's `--signal` sends SIGUSR1) some seconds before they
kill a job; Ctrl-C sends SIGINT. The handler only raises a flag; the Trainer checks it once per optimizer
step, agreed across processes by one all-reduce, so every rank stops at the same step and no rank is left
waiting in a collective.
"""

from __future__ import annotations

import os
import shlex
import signal
import sys
import threading
import time
from types import FrameType

import torch
from accelerate import Accelerator

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1)
# EX_TEMPFAIL from sysexits.h ("temporary failure, retry later"): a requeueing job script can tell a
# preempted run (resume it) from a failed one (exit 1/2) and a finished one (0).
STOPPED_EXIT_CODE = 75
# `accelerate launch` forwards the Ctrl-C its workers already got from the terminal: a repeat this soon is the
# same keypress, not a second one.
REPEAT_WINDOW_SECONDS = 1.0


class TrainingStopped(BaseException):
    """Raised after the stop checkpoint is written. A BaseException, like KeyboardInterrupt, so code that
    survives a failed run (the zoo goes on to the next family) does not survive a preemption."""

    def __init__(self, message: str, step: int, is_main_process: bool) -> None:
        super().__init__(message)
        self.step, self.is_main_process = step, is_main_process


class GracefulStop:
    """Context manager: while active, the first stop signal sets a flag; a second one exits at once."""

    def __init__(self) -> None:
        self.signal: signal.Signals | None = None
        self._received_at = 0.0
        self._previous: dict[signal.Signals, object] = {}

    def __enter__(self) -> GracefulStop:
        if threading.current_thread() is not threading.main_thread():  # Python only lets the main thread handle signals
            return self
        for signum in STOP_SIGNALS:
            self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc_info) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signal is None:
            self.signal, self._received_at = signal.Signals(signum), time.monotonic()
            print(f"\n{self.signal.name}: stopping after this optimizer step with a checkpoint "
                  "(send it again to exit at once, losing the steps since the last checkpoint)", file=sys.stderr, flush=True)
        elif time.monotonic() - self._received_at > REPEAT_WINDOW_SECONDS:
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)

    def requested(self, accelerator: Accelerator) -> bool:
        """Whether any process got a stop signal; the same answer on every process (one 1-element all-reduce)."""
        if accelerator.num_processes == 1:
            return self.signal is not None
        flag = torch.tensor([float(self.signal is not None)], device=accelerator.device)
        return bool(accelerator.reduce(flag, reduction="sum").item())


def resume_command(command: list[str] | None, num_processes: int) -> str:
    """`command` (how the run was started) with `--resume_from_checkpoint latest`, under the same launcher."""
    if command is None:
        return "the same command with --resume_from_checkpoint latest"
    argv, skip = [], False
    for token in command:  # drop a --resume_from_checkpoint already there
        if skip or token.startswith("--resume_from_checkpoint="):
            skip = False
            continue
        skip = token == "--resume_from_checkpoint"
        if not skip:
            argv.append(token)
    launcher = ["accelerate", "launch", "--num_processes", str(num_processes), "-m"] if num_processes > 1 else []
    return shlex.join([*launcher, *argv, "--resume_from_checkpoint", "latest"])
