"""Time a full transfer into the demo's default 3d_fullres network (2 mm MNI data), load included.

Goal (issue: weight transfer): < 2 s on a 2-core CPU for the whole transfer: safe checkpoint
loading, key matching, 2D->3D inflation / channel adaptation where needed, copying, report.
Three cases: a 3D checkpoint of the same network, a 2D RGB checkpoint of the network's 2d_twin
(inflation + input channels), and an nnssl ResEnc-L checkpoint (about 102 M parameters, nnssl's
release format) into a 2-channel ResEnc-L target with the channels mapped by name, through the
trainers' own entry point (``transfer_from_checkpoint``: load, adaptation plan, SparK repair,
checks, matching, report). A fourth: an nnssl Primus-M checkpoint (nnssl's pretraining module
``EvaMAE`` with its MAE decoder, release format, pretrained on 160^3 patches) into a 2-channel
Primus-M at a 192 x 160 x 160 patch (patch embedding adapted, positional embedding resampled from
20^3 to 24 x 20 x 20 tokens). Run: python benchmarks/transfer_time.py
"""
from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.nnssl_primus: nnssl's module, rebuilt
from common import demo_study, nnunet_tree, save_results  # noqa: E402


def build(cfg: dict, in_channels: int, classes: int, patch_size=None):
    from nnunet_transfer.networks.build import build_network
    return build_network(cfg["architecture"], patch_size or cfg.get("patch_size"), in_channels, classes)


def main(repeats: int = 5) -> dict:
    results = measure(repeats)
    save_results("transfer_time", results)
    return results


def measure(repeats: int = 5) -> dict:
    """Median / max transfer time of each case (a fresh nnU-Net tree); nothing saved."""
    import torch

    from nnunet_transfer.planning.plans_file import load_plans, resolved_configuration
    from nnunet_transfer.transfer.checkpoint import extract_state_dict, load_checkpoint
    from nnunet_transfer.transfer.compat import check_compatible
    from nnunet_transfer.transfer.load import transfer_with_rules
    from nnunet_transfer.transfer.rules import TransferRules

    root = nnunet_tree()
    names = demo_study(2.0, 4, ["anatomy"], ["3d_fullres"], twin=True)
    plans = load_plans(names["anatomy"], "BenchPlans")
    cfg3, cfg2 = resolved_configuration(plans, "3d_fullres"), resolved_configuration(plans, "2d_twin")
    sources = {"3d same network": build(cfg3, 1, 4), "2d_twin RGB (inflate + channels)": build(cfg2, 3, 2)}
    results = {"patch_size_3d": cfg3["patch_size"],
               "parameters_3d": sum(p.numel() for p in build(cfg3, 1, 4).parameters())}
    for label, net in sources.items():
        path = root / f"{label.split()[0]}.pth"
        torch.save({"network_weights": net.state_dict()}, path)
        times = []
        for _ in range(repeats):
            target = build(cfg3, 1, 4)  # not timed: nnU-Net builds the network anyway
            start = time.perf_counter()
            source = extract_state_dict(load_checkpoint(path))
            rules = TransferRules()
            check_compatible(source, target, rules=rules)
            report = transfer_with_rules(source, target, rules)
            times.append(time.perf_counter() - start)
        results[label] = {"median_s": round(statistics.median(times), 3), "max_s": round(max(times), 3),
                          "counts": report.counts(), "checkpoint_mb": round(path.stat().st_size / 2 ** 20, 1)}
    results["nnssl ResEnc-L into 2 channels (channel map)"] = resenc_l(root, repeats)
    results["nnssl Primus-M into 2 channels (new token grid)"] = primus_m(root, repeats)
    return results


def primus_m(root: Path, repeats: int) -> dict:
    """nnssl's Primus-M MAE checkpoint (preset sizes, arch_kwargs None) into a 2-channel Primus-M
    at another patch size."""
    import torch

    from nnunet_transfer.transfer.checkpoint import checkpoint_metadata, load_checkpoint
    from nnunet_transfer.transfer.driver import transfer_from_checkpoint
    from nnunet_transfer.transfer.rules import TransferRules
    from tests.nnssl_primus import NnsslEvaMAE, nnssl_primus_checkpoint

    path = root / "primus_m_nnssl.pth"
    module = NnsslEvaMAE((160, 160, 160), embed_dim=864, depth=16, heads=12, decoder_depth=2)
    nnssl_primus_checkpoint(path, (160, 160, 160), (192, 160, 160), module=module)
    checkpoint = load_checkpoint(path)
    checkpoint["nnssl_adaptation_plan"]["architecture_plans"]["arch_kwargs"] = None  # nnssl's PrimusM preset
    torch.save(checkpoint, path)
    arch = checkpoint_metadata(load_checkpoint(path))["architecture"]
    times = []
    for _ in range(repeats):
        target = build({"architecture": arch}, 2, 2, (192, 160, 160))  # not timed: nnU-Net builds it anyway
        start = time.perf_counter()
        report = transfer_from_checkpoint(path, target, TransferRules())
        times.append(time.perf_counter() - start)
    return {"median_s": round(statistics.median(times), 3), "max_s": round(max(times), 3), "counts": report.counts(),
            "parameters_pretraining_module": sum(p.numel() for p in module.parameters()),
            "parameters_target": sum(p.numel() for p in target.parameters()),
            "checkpoint_mb": round(path.stat().st_size / 2 ** 20, 1)}


def resenc_l(root: Path, repeats: int) -> dict:
    """nnssl's ResEnc-L preset (``arch_kwargs`` None in its plan) into the same network with 2 input
    channels, T1 from the checkpoint's channel 0, FLAIR zero."""
    import torch

    from nnunet_transfer.transfer.driver import transfer_from_checkpoint
    from nnunet_transfer.transfer.nnssl import nnssl_metadata
    from nnunet_transfer.transfer.rules import TransferRules

    plan = {"architecture_plans": {"arch_class_name": "ResEncL", "arch_kwargs": None},
            "pretrain_plan": {"dataset_name": "Dataset745_OpenMind",
                              "configurations": {"onemmiso": {"spacing": [1, 1, 1], "patch_size": [160] * 3}}},
            "pretrain_num_input_channels": 1, "recommended_downstream_patchsize": [160, 160, 160],
            "key_to_encoder": "encoder.stages", "key_to_stem": "encoder.stem",
            "keys_to_in_proj": ["encoder.stem.convs.0.conv", "encoder.stem.convs.0.all_modules.0"]}
    arch = nnssl_metadata({"nnssl_adaptation_plan": plan})["architecture"]
    source = build({"architecture": arch}, 1, 1)
    path = root / "resenc_l_nnssl.pth"
    torch.save({"network_weights": source.state_dict(), "init_args": {"device": torch.device("cpu")},
                "trainer_name": "BaseMAETrainer", "nnssl_adaptation_plan": plan}, path)
    rules = TransferRules(channel_map={"T1": "0"})
    target_json = {"channel_names": {"0": "FLAIR", "1": "T1"}, "labels": {"background": 0, "lesion": 1}}
    times = []
    for _ in range(repeats):
        target = build({"architecture": arch}, 2, 2)  # not timed: nnU-Net builds the network anyway
        start = time.perf_counter()
        report = transfer_from_checkpoint(path, target, rules, target_json=target_json)
        times.append(time.perf_counter() - start)
    return {"median_s": round(statistics.median(times), 3), "max_s": round(max(times), 3), "counts": report.counts(),
            "parameters": sum(p.numel() for p in source.parameters()),
            "checkpoint_mb": round(path.stat().st_size / 2 ** 20, 1)}


if __name__ == "__main__":
    main()
