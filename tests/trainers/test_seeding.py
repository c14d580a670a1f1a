"""Seeding from training_schedule.seed: one entropy, three generators; distinct worker streams."""
import random

import numpy as np
import torch

from nnunet_transfer.trainers.seeding import (TRAIN_LOADER, VALIDATION_LOADER, epoch_entropy, seed_everything,
                                              worker_seeds)


def _draw() -> tuple:
    return random.random(), float(np.random.rand()), float(torch.rand(1))


def test_same_entropy_same_draws_in_every_generator():
    seed_everything([3])
    first = _draw()
    seed_everything([3])
    assert _draw() == first
    seed_everything([4])
    assert all(a != b for a, b in zip(_draw(), first))


def test_epochs_and_ranks_draw_their_own_streams():
    draws = set()
    for epoch in range(3):
        for rank in range(2):
            seed_everything(epoch_entropy(0, epoch, rank))
            draws.add(_draw())
    seed_everything([0])  # the network's streams differ from every epoch's
    draws.add(_draw())
    assert len(draws) == 7


def test_worker_seeds_are_distinct_across_workers_loaders_ranks_and_seeds():
    seeds = worker_seeds(0, TRAIN_LOADER, 4) + worker_seeds(0, VALIDATION_LOADER, 4) + worker_seeds(0, TRAIN_LOADER, 4,
                                                                                                    rank=1)
    seeds += worker_seeds(1, TRAIN_LOADER, 4)
    assert len(set(seeds)) == 16 and all(0 <= s < 2 ** 32 for s in seeds)
    assert worker_seeds(5, TRAIN_LOADER, 2) == worker_seeds(5, TRAIN_LOADER, 2)
