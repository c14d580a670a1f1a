"""Preview a transfer: the TransferReport for a checkpoint and a target, without training."""
from __future__ import annotations

from pathlib import Path

from nnunet_transfer.io import read_json
from nnunet_transfer.layout import DATASET_JSON, channel_names, preprocessed_dir, resolve_dataset
from nnunet_transfer.networks.build import build_network
from nnunet_transfer.planning.plans_file import load_plans, resolved_configuration
from nnunet_transfer.transfer.driver import transfer_from_checkpoint
from nnunet_transfer.transfer.report import TransferReport
from nnunet_transfer.transfer.rules import TransferRules


def build_target_network(name: str, plans: dict, configuration: str):
    """The network nnU-Net builds for ``configuration`` of ``plans`` (with deep supervision, as in
    training), with the dataset's input channels and segmentation heads."""
    from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

    cfg = resolved_configuration(plans, configuration)
    dataset_json = read_json(preprocessed_dir(name) / DATASET_JSON)
    labels = PlansManager(plans).get_label_manager(dataset_json)
    return build_network(cfg["architecture"], cfg["patch_size"], len(channel_names(name)),
                         labels.num_segmentation_heads, deep_supervision=True)


def preview(checkpoint: str | Path, target: int | str, plans_name: str, configuration: str,
            rules: TransferRules | None = None, loaded: dict | None = None) -> TransferReport:
    """Build the target network as nnU-Net would (plans + dataset.json) and match the checkpoint
    (``loaded``: its contents, already read) into it under ``rules`` through the trainers' own
    transfer path; nothing is written. Raises NnunetTransferError as the trainer would."""
    name = resolve_dataset(target)
    plans = load_plans(name, plans_name)
    network = build_target_network(name, plans, configuration)
    report = transfer_from_checkpoint(checkpoint, network, rules or TransferRules(),
                                      f"the {configuration} network of {name}", apply=False, loaded=loaded,
                                      target_json=read_json(preprocessed_dir(name) / DATASET_JSON))
    spacing = resolved_configuration(plans, configuration).get("spacing")
    report.target_spacing = None if spacing is None else [float(s) for s in spacing]
    return report
