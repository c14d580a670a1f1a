"""Preview a transfer: the TransferReport for a checkpoint and a target, without training."""
from __future__ import annotations

from pathlib import Path

from nnunet_transfer.io import read_json
from nnunet_transfer.planning.common import (channel_names, load_plans, preprocessed_dir, resolve_dataset,
                                             resolved_configuration)
from nnunet_transfer.transfer.checkpoint import checkpoint_metadata, extract_state_dict, load_checkpoint
from nnunet_transfer.transfer.compat import check_compatible
from nnunet_transfer.transfer.load import preview_with_rules
from nnunet_transfer.transfer.report import TransferReport
from nnunet_transfer.transfer.rules import TransferRules


def preview(checkpoint: str | Path, target: int | str, plans_name: str, configuration: str,
            rules: TransferRules | None = None) -> TransferReport:
    """Build the target network as nnU-Net would (plans + dataset.json) and match the checkpoint
    into it under ``rules``; nothing is written. Raises NnunetTransferError as the trainer would."""
    from nnunetv2.utilities.get_network_from_plans import get_network_from_plans
    from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

    rules = rules or TransferRules()
    name = resolve_dataset(target)
    plans = load_plans(name, plans_name)
    cfg = resolved_configuration(plans, configuration)
    dataset_json = read_json(preprocessed_dir(name) / "dataset.json")
    labels = PlansManager(plans).get_label_manager(dataset_json)
    arch = cfg["architecture"]
    network = get_network_from_plans(arch["network_class_name"], arch["arch_kwargs"], arch["_kw_requires_import"],
                                     len(channel_names(name)), labels.num_segmentation_heads, deep_supervision=True)
    ckpt = load_checkpoint(checkpoint)
    source = extract_state_dict(ckpt)
    rules = rules.with_default_load(checkpoint_metadata(ckpt))
    check_compatible(source, network, f"Checkpoint {checkpoint}", f"the {configuration} network of {name}", rules)
    report = preview_with_rules(source, network, rules)
    report.checkpoint = str(checkpoint)
    report.source_metadata = checkpoint_metadata(ckpt)
    return report
