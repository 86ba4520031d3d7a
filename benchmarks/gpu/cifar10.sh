#!/usr/bin/env bash
# The CIFAR-10 study at the papers' budgets on one CUDA GPU (see README.md here). Resumable: finished runs are kept.
set -euo pipefail
cd "$(dirname "$0")/../.."
python -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'error: no CUDA device')"
for model in dcgan32 sngan-resnet32; do
  steps=50000; [ "$model" = dcgan32 ] && steps=100000
  python benchmarks/bench_cifar10.py --device cuda --threads 4 --steps "$steps" --samples 10000 \
    --models "$model" --work runs/bench-cifar10-gpu --out benchmarks/results/cifar10-gpu.json
done
