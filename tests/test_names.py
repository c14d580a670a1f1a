"""The one name table agrees with the trainers, pretexts and demo that use it."""
from nnunet_transfer.demo.cases import SPECS
from nnunet_transfer.demo.menu import DATASET_OFFSETS, SOURCES
from nnunet_transfer.names import PRETEXTS, PRETRAINING_TASKS, STRATEGIES, TRAINER_NAMES, decoder_trained
from nnunet_transfer.pretext import PRETEXT_CLASSES
from nnunet_transfer.trainers.registry import TRAINERS


def test_every_trainer_class_of_ours_is_named_and_registered():
    """The registry is derived from the names; no trainer class of ours is left out of them."""
    import inspect

    from nnunet_transfer.trainers.registry import TRAINER_MODULES
    assert list(TRAINERS) == list(TRAINER_NAMES)
    defined = {name for module in TRAINER_MODULES for name, cls in vars(module).items()
               if inspect.isclass(cls) and cls.__module__ == module.__name__ and name.startswith("nnUNetTrainer")}
    assert defined == set(TRAINER_NAMES)


def test_each_pretext_has_its_class_and_its_trainer_says_which_pretext_it_trains():
    assert set(PRETEXT_CLASSES) == set(PRETEXTS)
    for name, pretext in PRETEXTS.items():
        trainer = TRAINERS[pretext.trainer]
        assert trainer.pretext_name == name and PRETEXT_CLASSES[name].name == name
        assert PRETRAINING_TASKS[f"ssl:{name}"] == pretext.trainer


def test_decoder_trained_matches_what_the_trainers_build():
    from nnunet_transfer.trainers.pretrain_ssl import ReconstructionTrainerBase
    for pretext in PRETEXTS.values():
        assert pretext.trains_decoder == issubclass(TRAINERS[pretext.trainer], ReconstructionTrainerBase)
    assert not decoder_trained("classification", None) and decoder_trained("segmentation", None)


def test_strategy_trainers_are_fine_tuning_trainers():
    from nnunet_transfer.trainers.finetune import nnUNetTrainerFinetune
    assert all(issubclass(TRAINERS[t], nnUNetTrainerFinetune) for t in STRATEGIES.values())


def test_demo_menu_agrees_with_the_demo_datasets():
    assert list(DATASET_OFFSETS) == list(SPECS)
    assert all(dataset in SPECS and task in PRETRAINING_TASKS for dataset, task, _ in SOURCES.values())
