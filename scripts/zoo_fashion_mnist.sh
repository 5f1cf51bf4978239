#!/usr/bin/env bash
# The zoo on Fashion-MNIST (28x28, 60,000 train / 10,000 test), judged by the same code as the digits zoo.
#
# BUDGET=cpu (default): about three and a half hours on 2 CPU cores (timed in docs/evaluation.md, Fashion-MNIST) -
#   short trainings (diffusion 1,500 steps, VAE 3,000, GAN 3,000, autoregressive 1,000 at ~5 s a step, latent
#   diffusion 1,500 on a 3,000-step VAE; batch 64), 1,000 samples per model, bits/dim on 1,000 test images (IWAE
#   with 100 importance samples, the diffusion bound on 10 stratified timesteps).
#   Needs the IDX files: `apt-get install dataset-fashion-mnist` (or --data_dir DIR).
#     OMP_NUM_THREADS=2 bash scripts/zoo_fashion_mnist.sh
#   Stopped part-way? The same command plus --reuse_trained keeps the models that finished and trains the rest.
# BUDGET=full: a real run (one GPU, or many hours of CPU): 30-40k steps at batch 128, 10,000 samples per model.
#     BUDGET=full bash scripts/zoo_fashion_mnist.sh
# N GPUs - training is data-parallel, sampling and likelihoods are split across processes and gathered:
#     BUDGET=full NUM_PROCESSES=4 bash scripts/zoo_fashion_mnist.sh
#   which runs
#     accelerate launch --num_processes 4 -m hfgen zoo --dataset fashion_mnist --budget full --output_dir zoo-fashion-mnist
# Extra flags go through, e.g. `--max_steps 5000` or `--data_dir DIR`. The table lands in $OUTPUT_DIR/README.md
# (and metrics.json); commit the table, not the weights in $OUTPUT_DIR/models.
set -euo pipefail

BUDGET="${BUDGET:-cpu}"
NUM_PROCESSES="${NUM_PROCESSES:-1}"
OUTPUT_DIR="${OUTPUT_DIR:-zoo-fashion-mnist-$BUDGET}"
PYTHON="${PYTHON:-python}"
ARGS=(--dataset fashion_mnist --budget "$BUDGET" --output_dir "$OUTPUT_DIR" "$@")

if [ "$NUM_PROCESSES" -gt 1 ]; then
  exec accelerate launch --num_processes "$NUM_PROCESSES" -m hfgen zoo "${ARGS[@]}"
fi
exec "$PYTHON" -m hfgen zoo "${ARGS[@]}"
