"""Self-supervised pretext tasks: one corruption per module, seedable, vectorised over the batch.

``PRETEXT_CLASSES`` is derived, not kept by hand: each name of ``nnunet_transfer.names.PRETEXTS``
-> the ``Pretext`` subclass that declares it as its ``name``. A pretext named there without its
class fails here, at import.
"""
from nnunet_transfer.names import PRETEXTS
from nnunet_transfer.pretext.base import Pretext
from nnunet_transfer.pretext.context_restoration import ContextRestoration
from nnunet_transfer.pretext.contrastive import SimCLRViews, nt_xent
from nnunet_transfer.pretext.masked_image_modeling import MaskedImageModeling
from nnunet_transfer.pretext.models_genesis import ModelsGenesis
from nnunet_transfer.pretext.rotation import RotationPrediction


def _pretext_classes() -> dict[str, type[Pretext]]:
    declared = {cls.name: cls for cls in Pretext.__subclasses__() if "name" in vars(cls)}
    missing = [name for name in PRETEXTS if name not in declared]
    if missing:
        raise ImportError(f"nnunet_transfer.names.PRETEXTS names {missing} but no Pretext subclass in "
                          f"nnunet_transfer.pretext declares that name")
    return {name: declared[name] for name in PRETEXTS}


# name (the keys of nnunet_transfer.names.PRETEXTS) -> class
PRETEXT_CLASSES = _pretext_classes()

__all__ = ["PRETEXT_CLASSES", "ContextRestoration", "MaskedImageModeling", "ModelsGenesis", "Pretext",
           "RotationPrediction", "SimCLRViews", "nt_xent"]
