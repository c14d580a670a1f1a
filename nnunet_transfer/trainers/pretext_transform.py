"""The pretext corruption as the last of nnU-Net's training transforms, run per sample in nnU-Net's
data-augmentation workers, so the training process only feeds the network.

Each sample dict (``image`` ``(C, *spatial)``, ``segmentation``) becomes the pretext's network input
and target: the corrupted image and the original (plus the loss mask) for reconstruction, the
rotation class for rotation prediction, both views ``(2, C, *spatial)`` for SimCLR. nnU-Net's
loader stacks the samples into the batch.

Random streams: every process that runs the transform (each augmentation worker, or the training
process itself with ``nnUNet_n_proc_DA=0``) takes a worker index from a shared counter the first
time it corrupts a sample, and at every epoch draws from its own generator seeded with
``(seed, epoch, worker index, DDP rank)``: the streams of two workers never coincide, two runs with the same
seed and ``nnUNet_n_proc_DA=0`` corrupt the same samples identically, and a run continued with
``--c`` at epoch k draws epoch k's stream, exactly as the uninterrupted run did, rather than
replaying epoch 0's. The epoch is a shared value the trainer sets at the start of every epoch;
batches the workers prepared ahead of time belong to the epoch they were prepared in.
"""
from __future__ import annotations

import multiprocessing
import os
from typing import Any

import numpy as np
import torch
from batchgeneratorsv2.transforms.base.basic_transform import BasicTransform

from nnunet_transfer.pretext.base import Pretext, PretextBatch

RECONSTRUCTION, CLASSIFICATION, VIEWS = "reconstruction", "classification", "views"


def reconstruction_target(out: PretextBatch) -> torch.Tensor:
    """The target of a reconstruction pretext as the trainers' masked MSE reads it: the original
    image, followed by the loss mask (as many channels again) when the pretext has one."""
    return out.target if out.mask is None else torch.cat([out.target, out.mask.to(out.target.dtype)], dim=1)


def stream_seed(seed: int, epoch: int, worker: int, rank: int = 0) -> int:
    """The seed of one worker's stream in one epoch (numpy's SeedSequence: well-mixed, reproducible);
    ``rank``: the process's rank in nnU-Net's multi-GPU (DDP) training, whose ranks each have workers."""
    return int(np.random.SeedSequence([int(seed), int(epoch) + 1, int(worker), int(rank)]).generate_state(1)[0])


class PretextTransform(BasicTransform):
    """``image`` -> the pretext's input, ``segmentation`` -> its target, for one sample.

    ``output``: ``reconstruction`` (target: the original image, followed by the loss mask when the
    pretext has one), ``classification`` (target: the class index, a 0-d long tensor) or ``views``
    (image: the two views stacked, ``(2, C, *spatial)``; target: unused, 0). ``epoch`` and
    ``workers`` are shared integers (``multiprocessing.Value``) made by the training process.
    """

    def __init__(self, pretext: Pretext, seed: int, output: str, epoch: Any | None = None,
                 workers: Any | None = None, rank: int = 0):
        super().__init__()
        if output not in (RECONSTRUCTION, CLASSIFICATION, VIEWS):
            raise ValueError(output)
        self.pretext, self.seed, self.output, self.rank = pretext, int(seed), output, int(rank)
        self.epoch = epoch if epoch is not None else multiprocessing.Value("i", 0)
        self.workers = workers if workers is not None else multiprocessing.Value("i", 0)
        self._pid: int | None = None
        self._worker = 0
        self._stream: tuple[int, int] | None = None
        self._generator = torch.Generator()

    def generator(self) -> torch.Generator:
        """This process's generator for the current epoch (a new worker takes the next index)."""
        pid = os.getpid()
        if pid != self._pid:
            with self.workers.get_lock():
                self._worker = self.workers.value
                self.workers.value += 1
            self._pid = pid
            self._stream = None
        epoch = int(self.epoch.value)
        if self._stream != (self._worker, epoch):
            self._generator.manual_seed(stream_seed(self.seed, epoch, self._worker, self.rank))
            self._stream = (self._worker, epoch)
        return self._generator

    def apply(self, data_dict: dict, **params) -> dict:
        image = data_dict["image"].float()
        out = self.pretext(image[None], self.generator())
        if self.output == VIEWS:
            data_dict["image"] = out.input  # (2, C, *spatial): the sample's first and second view
            data_dict["segmentation"] = torch.zeros((), dtype=torch.int16)
        elif self.output == CLASSIFICATION:
            data_dict["image"] = out.input[0]
            data_dict["segmentation"] = out.target[0].long()
        else:
            data_dict["image"], data_dict["segmentation"] = out.input[0], reconstruction_target(out)[0]
        return data_dict

    def __getstate__(self) -> dict:  # a spawned worker: the shared values travel by inheritance
        return {k: v for k, v in self.__dict__.items() if k != "_generator"} | {"_pid": None, "_stream": None}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state, _generator=torch.Generator())
