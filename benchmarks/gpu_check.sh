#!/usr/bin/env bash
# The GPU check: on a machine with a CUDA device, after `pip install .` in a fresh clone:
#   bash benchmarks/gpu_check.sh            (about 5 minutes on one GPU; prints one table)
# Our trainers' 3d_fullres step time against stock nnUNetTrainer at nnU-Net's planned patch and batch
# size (every fine-tuning strategy, every pretraining mode), the transfer time, and one tiny study
# end to end. Results also go to benchmarks/results/gpu_check.json. Without a CUDA device it says so
# and exits 0 (`--device cpu --smoke` runs the same script small on a CPU, to check the script).
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ " $* " != *" --device cpu "* ]] && ! python -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)"; then
  echo "gpu_check: no CUDA device here; nothing measured"
  exit 0
fi
exec python benchmarks/gpu_check.py "$@"
