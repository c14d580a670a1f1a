"""Seeding a training from the plans' ``training_schedule.seed``.

nnU-Net does not seed its training: the network's initial weights come from torch's global
generator, the patch and oversampling choices of its data loader from numpy's, and each
augmentation worker seeds numpy from the operating system (and inherits the parent's torch
state). Our trainers seed all of them from one number:

- before the network is built: Python's, numpy's and torch's global generators from ``seed``
  (the same on every DDP rank, whose networks must start equal);
- at the start of every epoch: the same three from ``(seed, epoch, rank)``, so the batches of an
  epoch drawn in the training process (``nnUNet_n_proc_DA=0``: nnU-Net's single-threaded loader)
  depend on the seed and the epoch only, and a run continued with ``--c`` draws epoch k's batches
  as the uninterrupted run did;
- every augmentation worker: its own seed from ``(seed, loader, worker, rank)``.

With ``nnUNet_n_proc_DA=0`` on the CPU the same seed therefore repeats a run exactly (loss curve
and final weights). With workers, each worker's stream is seeded, but which worker's batch arrives
first is not (nnU-Net's ``NonDetMultiThreadedAugmenter``), and on a GPU cuDNN's algorithm choice
(``cudnn.benchmark``) and atomic additions in some backward kernels are not deterministic: such
runs are seeded, not repeatable.
"""
from __future__ import annotations

import random
from collections.abc import Sequence

import numpy as np
import torch

# the seed entropy's second word: which of nnU-Net's two loaders a worker serves
TRAIN_LOADER, VALIDATION_LOADER = 0, 1


def seed_everything(entropy: Sequence[int]) -> None:
    """Seed Python's, numpy's and torch's global generators from ``entropy`` (numpy's SeedSequence:
    well mixed, so neighbouring seeds or epochs give unrelated streams)."""
    python_seed, numpy_seed, torch_seed = np.random.SeedSequence([int(e) for e in entropy]).generate_state(3)
    random.seed(int(python_seed))
    np.random.seed(int(numpy_seed))
    torch.manual_seed(int(torch_seed))


def epoch_entropy(seed: int, epoch: int, rank: int = 0) -> tuple[int, int, int, int]:
    """The entropy of one epoch's streams in the training process (distinct from the network's ``(seed,)``)."""
    return int(seed), 1, int(epoch), int(rank)


def worker_seeds(seed: int, loader: int, workers: int, rank: int = 0) -> list[int]:
    """One 32-bit seed per augmentation worker of a loader (numpy's seed range)."""
    return [int(np.random.SeedSequence([int(seed), 2, int(loader), worker, int(rank)]).generate_state(1)[0])
            for worker in range(workers)]
