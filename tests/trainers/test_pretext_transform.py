"""The pretext corruption as nnU-Net's last training transform: what it makes of a sample, its
streams (same seed same corruption, one stream per worker and epoch, resumed runs continue the
stream), and the self-supervised trainers' data loaders corrupting in the workers only."""
import multiprocessing
import os

import pytest
import torch

from nnunet_transfer.pretext import MaskedImageModeling, ModelsGenesis, RotationPrediction, SimCLRViews
from nnunet_transfer.trainers.pretext_transform import (CLASSIFICATION, RECONSTRUCTION, VIEWS, PretextTransform,
                                                        stream_seed)


def _samples(n=4, shape=(1, 12, 12, 12)):
    torch.manual_seed(0)
    return [torch.rand(shape) for _ in range(n)]


def _run(transform, samples):
    return [transform(image=s.clone(), segmentation=torch.zeros(1, *s.shape[1:], dtype=torch.int16))
            for s in samples]


def test_same_seed_and_epoch_give_the_same_corruptions_and_another_seed_does_not():
    a, b, c = (PretextTransform(ModelsGenesis(), seed, RECONSTRUCTION) for seed in (3, 3, 4))
    out_a, out_b, out_c = (_run(t, _samples()) for t in (a, b, c))
    assert all(torch.equal(x["image"], y["image"]) for x, y in zip(out_a, out_b))
    assert not all(torch.equal(x["image"], y["image"]) for x, y in zip(out_a, out_c))
    assert all(torch.equal(x["segmentation"], s) for x, s in zip(out_a, _samples()))  # target: the original


def test_a_continued_run_draws_the_epochs_stream_not_the_first_epochs_again():
    epoch = multiprocessing.Value("i", 0)
    whole = PretextTransform(MaskedImageModeling(), 7, RECONSTRUCTION, epoch=epoch)
    first = _run(whole, _samples())
    epoch.value = 1
    second = _run(whole, _samples())
    resumed = PretextTransform(MaskedImageModeling(), 7, RECONSTRUCTION, epoch=multiprocessing.Value("i", 1))
    again = _run(resumed, _samples())
    assert all(torch.equal(x["image"], y["image"]) for x, y in zip(second, again))
    assert not all(torch.equal(x["image"], y["image"]) for x, y in zip(first, again))
    assert stream_seed(7, 1, 0) != stream_seed(7, 0, 0) != stream_seed(7, 0, 1) != stream_seed(7, 0, 1, rank=1)


def _in_a_worker(transform, sample, queue):
    torch.set_num_threads(1)  # as nnU-Net's workers do: a forked child must not use the parent's thread pool
    out = transform(image=sample.clone(), segmentation=torch.zeros(1, 1, 1, 1, dtype=torch.int16))["image"]
    queue.put((transform._worker, out.numpy().copy()))  # plain data: the worker may exit before it is read


@pytest.mark.parametrize("start", ["fork", "spawn"])  # Linux's default, macOS's (the transform is pickled)
def test_every_worker_process_takes_its_own_index_and_stream(start):
    context = multiprocessing.get_context(start)
    transform = PretextTransform(ModelsGenesis(), 1, RECONSTRUCTION, epoch=context.Value("i", 0),
                                 workers=context.Value("i", 0))
    sample, queue = _samples(1)[0], context.Queue()
    workers = [context.Process(target=_in_a_worker, args=(transform, sample, queue)) for _ in range(2)]
    for w in workers:
        w.start()
    results = sorted((queue.get(timeout=60) for _ in workers), key=lambda r: r[0])
    for w in workers:
        w.join()
    assert [r[0] for r in results] == [0, 1]
    assert not (results[0][1] == results[1][1]).all()
    assert transform.workers.value == 2


def test_what_each_kind_of_pretext_makes_of_a_sample():
    image = torch.rand(2, 10, 12, 12)
    rotation = PretextTransform(RotationPrediction(), 0, CLASSIFICATION)(image=image.clone(), segmentation=None)
    assert rotation["image"].shape == (2, 10, 12, 12) and rotation["segmentation"].dtype == torch.long
    assert rotation["segmentation"].ndim == 0 and 0 <= int(rotation["segmentation"]) < 4
    views = PretextTransform(SimCLRViews(), 0, VIEWS)(image=image.clone(), segmentation=None)
    assert views["image"].shape == (2, 2, 10, 12, 12)
    masked = PretextTransform(MaskedImageModeling(), 0, RECONSTRUCTION)(image=image.clone(), segmentation=None)
    assert masked["segmentation"].shape == (4, 10, 12, 12)  # the original, then the loss mask
    assert torch.equal(masked["segmentation"][:2], image)


@pytest.mark.xdist_group("planned_tiny")
def test_ssl_trainers_corrupt_in_the_augmentation_workers_only(folders, monkeypatch):
    """A real self-supervised trainer's data loaders with 2 augmentation workers: the batch arrives
    corrupted (input, original and mask), and the training process never ran the pretext."""
    from nnunet_transfer.planning.plans_file import load_plans, write_plans
    from tests.trainers.test_hooks import SOURCE, _trainer
    from nnunet_transfer.trainers.pretrain_ssl import nnUNetTrainerPretrainMaskedImageModeling
    write_plans({**load_plans(SOURCE, "TinyPlans"), "plans_name": "SslPlans"}, SOURCE)
    monkeypatch.setenv("nnUNet_n_proc_DA", "2")
    main = os.getpid()
    original = MaskedImageModeling.apply

    def apply_outside_main(self, x, params):
        assert os.getpid() != main, "the training process ran the pretext"
        return original(self, x, params)

    monkeypatch.setattr(MaskedImageModeling, "apply", apply_outside_main)
    trainer = _trainer(nnUNetTrainerPretrainMaskedImageModeling, SOURCE, "SslPlans", fold="all")
    train, val = trainer.get_dataloaders()
    try:
        batch = next(train)
        channels = batch["data"].shape[1]
        assert batch["target"].shape[1] == 2 * channels and batch["target"].is_floating_point()
        mask = batch["target"][:, channels:]
        assert 0 < float(mask.mean()) < 1  # some voxels masked, some not
        original = batch["target"][:, :channels]
        assert torch.equal(batch["data"][mask == 0], original[mask == 0])  # unmasked voxels: the image
        assert torch.count_nonzero(batch["data"][mask == 1]) == 0  # masked voxels: zero in the input
        for _ in range(20):  # the seeded workers (restarted by our trainers) take indices 0 and 1
            if trainer.pretext_transform.workers.value == 2:
                break
            next(train)
        assert trainer.pretext_transform.workers.value == 2
        trainer.current_epoch = 3  # as after --c at epoch 3: the workers switch to epoch 3's streams
        trainer.on_train_epoch_start()
        assert trainer.pretext_transform.epoch.value == 3
    finally:
        for loader in (train, val):
            loader._finish()
