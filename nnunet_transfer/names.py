"""The names a user chooses from: pretraining tasks and pretexts, fine-tuning strategies, trainers.

This is the one table of them. The command line, the study file, the demo, the trainer registry
(``trainers.registry``: the class of each name in ``TRAINER_NAMES``), the pretext classes
(``pretext.PRETEXT_CLASSES``: the ``Pretext`` subclass whose ``name`` is each key of ``PRETEXTS``)
and the default load rule of a checkpoint derive their choices from it, so a new pretext or
strategy is added here (plus its module and trainer class) and nowhere else; importing the
registry fails for a name without its class, and a test checks that every trainer class of ours
is named here.
Pure data: importing it imports nothing else.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PretextName:
    """A self-supervised pretext: its name in plans / study files, its trainer, and whether its
    pretraining trains the decoder (reconstruction) or only the encoder (a pooled head)."""

    name: str
    trainer: str
    trains_decoder: bool
    title: str


PRETEXTS: dict[str, PretextName] = {p.name: p for p in (
    PretextName("models_genesis", "nnUNetTrainerPretrainModelsGenesis", True, "Models Genesis"),
    PretextName("context_restoration", "nnUNetTrainerPretrainContextRestoration", True, "context restoration"),
    PretextName("masked_image_modeling", "nnUNetTrainerPretrainMaskedImageModeling", True, "masked image modelling"),
    PretextName("rotation", "nnUNetTrainerPretrainRotation", False, "rotation prediction"),
    PretextName("simclr", "nnUNetTrainerPretrainSimCLR", False, "SimCLR"),
)}

SSL_PREFIX = "ssl:"
SEGMENTATION_PRETRAINER = "nnUNetTrainerPretrainSegmentation"
CLASSIFICATION_PRETRAINER = "nnUNetTrainerPretrainClassification"

# pretraining task (study files: ``task``) -> nnU-Net trainer
PRETRAINING_TASKS: dict[str, str] = {
    "segmentation": SEGMENTATION_PRETRAINER,
    "classification": CLASSIFICATION_PRETRAINER,
    **{SSL_PREFIX + p.name: p.trainer for p in PRETEXTS.values()},
}

# fine-tuning strategy (study files: ``strategies``) -> nnU-Net trainer
STRATEGIES: dict[str, str] = {
    "finetune": "nnUNetTrainerFinetune",
    "warmup": "nnUNetTrainerFinetuneWarmup",
    "frozen_encoder": "nnUNetTrainerFinetuneFrozenEncoder",
    "encoder_lr": "nnUNetTrainerFinetuneEncoderLR",
}
SCRATCH = "scratch"
SCRATCH_TRAINER = "nnUNetTrainerFromScratch"

# every trainer class this package provides, pretraining first: ``trainers.registry`` looks each one up
# in the trainer modules, and ``nnUNet_extTrainer`` finds exactly these
TRAINER_NAMES: tuple[str, ...] = tuple(dict.fromkeys([*PRETRAINING_TASKS.values(), *STRATEGIES.values(),
                                                      SCRATCH_TRAINER]))

# checkpoint block ``mode`` values
MODE_SEGMENTATION, MODE_CLASSIFICATION, MODE_SELF_SUPERVISED = "segmentation", "classification", "self-supervised"
MODE_NNSSL = "nnssl"  # a checkpoint pretrained by nnssl (OpenMind): its encoder is what it offers

# transfer rules (plans ``transfer`` block, ``attach`` / ``preview`` options)
LOAD_RULES = ("encoder", "encoder+decoder", "all-but-head")
INPUT_CHANNEL_RULES = ("sum", "mean", "tile")
INFLATION_RULES = ("average", "center")
KERNEL_RULES = ("crop", "average")
# input channels a channel_map leaves unmapped: zero weights, the mean of the source channels, or random init
UNMAPPED_CHANNEL_RULES = ("zero", "mean", "random")

# which NIfTI header transform places a file whose qform and sform disagree (convert --header-transform)
HEADER_TRANSFORMS = ("sform", "qform")

# nnU-Net's experiment planners by the names nnU-Net uses (-pl): its default (plain U-Net) and the
# residual-encoder presets M / L / XL (GPU memory targets 8 / 24 / 40 GB); plan --planner, a study's planner
PLANNERS = ("ExperimentPlanner", "nnUNetPlannerResEncM", "nnUNetPlannerResEncL", "nnUNetPlannerResEncXL")
DEFAULT_PLANNER = "ExperimentPlanner"

# evaluation: the challenge profiles (``evaluation/profiles.py`` defines them, a test keeps both in step) and
# the normalised surface Dice tolerance used unless one is given
EVALUATION_PROFILES = ("atlas2", "isbi2015", "msseg2016")
NSD_TOLERANCE_MM = 2.0

DOMAINS = ("mri", "natural")
DEVICES = ("cuda", "cpu", "mps")  # nnUNetv2_train -device


def decoder_trained(mode: str | None, pretext: str | None) -> bool:
    """Whether a pretraining of this ``mode`` / ``pretext`` trains the U-Net decoder.

    Classification and the pooled-head pretexts (rotation, SimCLR) build the decoder but never
    train it; its weights are as initialised and not worth loading."""
    if mode in (MODE_CLASSIFICATION, MODE_NNSSL):  # nnssl: the encoder is what its adaptation plan offers
        return False
    return PRETEXTS[pretext].trains_decoder if pretext in PRETEXTS else True
