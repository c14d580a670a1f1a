"""Pretrain-then-plan: the whole chain for one source and its targets."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from nnunet_transfer import nnunet_commands
from nnunet_transfer.errors import NnunetTransferError
from nnunet_transfer.layout import CHECKPOINT_FINAL, CHECKPOINT_LATEST, channel_names, resolve_dataset, results_folder
from nnunet_transfer.names import DEFAULT_PLANNER, SCRATCH_TRAINER, SEGMENTATION_PRETRAINER, STRATEGIES
from nnunet_transfer.planning.attach import attach, default_output_plans
from nnunet_transfer.planning.like_checkpoint import plan_like_checkpoint
from nnunet_transfer.planning.shared import plan_shared
from nnunet_transfer.plans_blocks import parse_schedule


@dataclass(frozen=True)
class PretrainThenPlanResult:
    checkpoint: Path
    target_plans: dict[str, Path]  # target dataset -> plans file with the transfer block
    finetune_commands: list[str]


def pretrain_then_plan(source: int | str, targets: Sequence[int | str], configuration: str, plans_name: str,
                       trainer: str = SEGMENTATION_PRETRAINER, schedule: dict | None = None, num_processes: int = 2,
                       device: str | None = None, log_dir: str | Path | None = None,
                       progress: bool = True, planner: str = DEFAULT_PLANNER) -> PretrainThenPlanResult:
    """Plan + preprocess ``source`` (with nnU-Net's ``planner``), pretrain it with stock
    ``nnUNetv2_train ... all -tr trainer``, plan + preprocess ``targets`` like the checkpoint,
    attach it to each target.

    Targets are checked before the (long) pretraining starts. A finished pretraining
    (``checkpoint_final.pth`` present) is not repeated.
    """
    src = resolve_dataset(source)
    names = [resolve_dataset(t) for t in targets]
    src_channels = channel_names(src)
    for name in names:
        if len(channel_names(name)) != len(src_channels):
            raise NnunetTransferError(
                f"{name} has {len(channel_names(name))} input channel(s) {list(channel_names(name).values())} but "
                f"source {src} has {len(src_channels)} {list(src_channels.values())}; a network pretrained on the "
                f"source cannot take the target's images. Nothing was planned or trained.")
    plan_shared(src, [], plans_name, [configuration], num_processes, schedule=schedule, progress=progress,
                planner=planner)
    out = results_folder(src, trainer, plans_name, configuration, "all")
    checkpoint = out / CHECKPOINT_FINAL
    if not checkpoint.is_file():
        log = Path(log_dir or out.parent) / f"pretrain_{src}.log"
        nnunet_commands.train(src, configuration, "all", trainer, plans_name, log,
                              epochs=parse_schedule(schedule or {}, "the schedule options").num_epochs, device=device,
                              continue_training=(out / CHECKPOINT_LATEST).is_file(), progress=progress)
    plan_like_checkpoint(checkpoint, names, plans_name, configuration, num_processes, schedule=schedule,
                         progress=progress)
    attached = {name: attach(checkpoint, name, plans_name) for name in names}
    ft_plans = default_output_plans(plans_name, src)
    commands = [f"nnUNetv2_train {name} {configuration} 0 -tr {STRATEGIES['finetune']} -p {ft_plans}" for name in names]
    commands += [f"nnUNetv2_train {name} {configuration} 0 -tr {SCRATCH_TRAINER} -p {plans_name}" for name in names]
    return PretrainThenPlanResult(checkpoint, attached, commands)

