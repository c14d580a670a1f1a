"""Every trainer nnU-Net can find through ``nnUNet_extTrainer``, derived from the names.

``nnunet_transfer.names.TRAINER_NAMES`` is the one list of our trainers; ``TRAINERS`` maps each name
to its class, looked up in the trainer modules below. A name without a class fails here, at import;
a new trainer class is named in ``names`` (and, in a new module, that module is added to
``TRAINER_MODULES``). Absolute imports at module level only: nnU-Net imports
``nnunet_ext/nnunet_transfer_trainer_registry.py``, which re-exports ``TRAINERS``, as a top-level module.
"""
from nnunet_transfer.names import TRAINER_NAMES
from nnunet_transfer.trainers import finetune, pretrain_classification, pretrain_segmentation, pretrain_ssl

TRAINER_MODULES = (pretrain_segmentation, pretrain_classification, pretrain_ssl, finetune)


def _trainer_class(name: str) -> type:
    found = [vars(module)[name] for module in TRAINER_MODULES if name in vars(module)]
    if not found:
        raise ImportError(f"nnunet_transfer.names names the trainer {name} but no trainer module defines it "
                          f"({', '.join(m.__name__ for m in TRAINER_MODULES)})")
    return found[0]


TRAINERS = {name: _trainer_class(name) for name in TRAINER_NAMES}
