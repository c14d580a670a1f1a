"""Self-supervised pretext tasks: one corruption per module, seedable, vectorised over the batch."""
from nnunet_transfer.pretext.context_restoration import ContextRestoration
from nnunet_transfer.pretext.contrastive import SimCLRViews, nt_xent
from nnunet_transfer.pretext.masked_image_modeling import MaskedImageModeling
from nnunet_transfer.pretext.models_genesis import ModelsGenesis
from nnunet_transfer.pretext.rotation import RotationPrediction

# name (the keys of nnunet_transfer.names.PRETEXTS) -> class
PRETEXT_CLASSES = {"models_genesis": ModelsGenesis, "context_restoration": ContextRestoration,
                   "masked_image_modeling": MaskedImageModeling, "rotation": RotationPrediction, "simclr": SimCLRViews}

__all__ = ["PRETEXT_CLASSES", "ContextRestoration", "MaskedImageModeling", "ModelsGenesis", "RotationPrediction",
           "SimCLRViews", "nt_xent"]
