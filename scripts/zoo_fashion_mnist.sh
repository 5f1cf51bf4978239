#!/usr/bin/env bash
# The zoo on Fashion-MNIST with budgets for a real run: every family trained with the `full` budget
# (30-40k steps at batch 128 per process), judged on 10,000 samples each by the same code as the digits zoo.
#
# One GPU (or hours of CPU):
#   bash scripts/zoo_fashion_mnist.sh
# N GPUs - training is data-parallel, sampling and likelihoods are split across processes and gathered:
#   NUM_PROCESSES=4 bash scripts/zoo_fashion_mnist.sh
# which runs
#   accelerate launch --num_processes 4 -m hfgen zoo --dataset fashion_mnist --budget full --output_dir zoo-fashion-mnist
# Extra flags go through, e.g. `--max_steps 5000` for a shorter run or `--data_dir DIR` for the IDX files.
set -euo pipefail

NUM_PROCESSES="${NUM_PROCESSES:-1}"
OUTPUT_DIR="${OUTPUT_DIR:-zoo-fashion-mnist}"
ARGS=(--dataset fashion_mnist --budget full --output_dir "$OUTPUT_DIR" "$@")

if [ "$NUM_PROCESSES" -gt 1 ]; then
  exec accelerate launch --num_processes "$NUM_PROCESSES" -m hfgen zoo "${ARGS[@]}"
fi
exec python -m hfgen zoo "${ARGS[@]}"
