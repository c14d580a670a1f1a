"""nnssl / OpenMind pretraining checkpoints, read into what every other checkpoint gives us.

nnssl (github.com/MIC-DKFZ/nnssl) saves ``network_weights`` (the whole pretraining network) and
``nnssl_adaptation_plan``: the architecture (``architecture_plans``: a preset name such as
``ResEncL`` with ``arch_kwargs`` None, or ``ResidualEncoderUNet`` / ``PlainConvUNet`` with its
kwargs), the pretraining plan (one configuration: spacing, patch size), the recommended
downstream patch size, the input channels and where the encoder lives (``key_to_encoder``,
``key_to_stem``, ``keys_to_in_proj``). Two forms carry it: the training checkpoint (plus
optimizer state, logging, ``init_args``, ...) and the release form of ``add_adaptation_plan.py``;
published checkpoints may add ``citations``. This module turns the plan into our checkpoint block
(nnU-Net-style ``architecture``, ``patch_size``, ``spacing``, ...) so that ``preview``,
``attach`` and ``plan-like-checkpoint`` treat it like our own checkpoints, and repairs the one
trap of SparK (S3D) checkpoints: their encoder's ``conv`` / ``norm`` keys hold the untrained
copies, only ``all_modules.0`` / ``all_modules.1`` were trained. Pure torch, no nnU-Net import.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import torch

from nnunet_transfer.errors import NnunetTransferError
from nnunet_transfer.names import MODE_NNSSL

PLAN_KEY = "nnssl_adaptation_plan"
SPARK_KEY = "spark_weights"
CITATIONS_KEY = "citations"
UNET_MODULE = "dynamic_network_architectures.architectures.unet"
OPS = {"conv_op": "torch.nn.modules.conv.Conv3d", "norm_op": "torch.nn.modules.instancenorm.InstanceNorm3d",
       "nonlin": "torch.nn.modules.activation.LeakyReLU"}
# nnssl's ResEnc-L preset (nnssl architecture_registry.get_res_enc_l; "Revisiting MAE pre-training for 3D
# medical image segmentation", arXiv 2410.23132): about 102 M parameters
RESENC_L_KWARGS: dict[str, Any] = {
    "n_stages": 6, "features_per_stage": [32, 64, 128, 256, 320, 320], "conv_op": OPS["conv_op"],
    "kernel_sizes": [[3, 3, 3]] * 6, "strides": [[1, 1, 1]] + [[2, 2, 2]] * 5, "n_blocks_per_stage": [1, 3, 4, 6, 6, 6],
    "n_conv_per_stage_decoder": [1, 1, 1, 1, 1], "conv_bias": True, "norm_op": OPS["norm_op"],
    "norm_op_kwargs": {"eps": 1e-5, "affine": True}, "dropout_op": None, "dropout_op_kwargs": None,
    "nonlin": OPS["nonlin"], "nonlin_kwargs": {"inplace": True}}
DYNAMIC_CLASSES = ("ResidualEncoderUNet", "PlainConvUNet")
REQUIRES_IMPORT = ["conv_op", "norm_op", "dropout_op", "nonlin"]
_SPARSE_PAIRS = ((re.compile(r"\.all_modules\.0\.(weight|bias)$"), ".conv."),
                 (re.compile(r"\.all_modules\.1\.(weight|bias)$"), ".norm."))


def is_nnssl(checkpoint: Mapping[str, Any]) -> bool:
    """Whether a loaded checkpoint comes from nnssl (an adaptation plan, or SparK's extra weights)."""
    return PLAN_KEY in checkpoint or SPARK_KEY in checkpoint


def _architecture(plans: Mapping[str, Any]) -> dict[str, Any]:
    """nnU-Net's ``architecture`` block for the adaptation plan's ``architecture_plans``; refuses
    architectures nnU-Net's U-Nets cannot build."""
    name = plans.get("arch_class_name")
    kwargs = plans.get("arch_kwargs")
    if name == "ResEncL":
        kwargs = RESENC_L_KWARGS
    elif name in DYNAMIC_CLASSES and isinstance(kwargs, Mapping):
        kwargs = dict(kwargs)
    else:
        what = ("a transformer (Primus), which nnU-Net's U-Net planning cannot build" if str(name).startswith("Primus")
                else "an architecture without the U-Net kwargs nnU-Net builds networks from")
        raise NnunetTransferError(
            f"The nnssl checkpoint's architecture is {name!r}, {what}. Supported: ResEncL and ResidualEncoderUNet / "
            f"PlainConvUNet with their arch_kwargs. Nothing was written.")
    cls = f"{UNET_MODULE}.{name if name in DYNAMIC_CLASSES else 'ResidualEncoderUNet'}"
    kwargs = {k: ([list(v) for v in value] if k in ("kernel_sizes", "strides") else value)
              for k, value in kwargs.items()}
    return {"network_class_name": cls, "arch_kwargs": kwargs,
            "_kw_requires_import": [k for k in REQUIRES_IMPORT if kwargs.get(k) is not None]}


def nnssl_metadata(checkpoint: Mapping[str, Any], path: str = "the checkpoint") -> dict[str, Any]:
    """Our checkpoint block (``nnunet_transfer.transfer.checkpoint.METADATA_KEY`` keys) for an nnssl
    checkpoint: ``architecture`` (nnU-Net style), ``configuration`` ``3d_fullres``, ``patch_size``
    (the recommended downstream patch), ``spacing`` (the pretraining's; None for ``noresample``),
    ``batch_size`` 2 (nnU-Net's for these networks), ``input_channels``, ``source_dataset``,
    ``mode`` ``nnssl``, ``trainer``, the encoder keys and ``citations`` (a list, empty when absent).

    Raises NnunetTransferError for a SparK training checkpoint without an adaptation plan, a
    malformed plan, or an architecture we cannot build (Primus), before anything is written.
    """
    plan = checkpoint.get(PLAN_KEY)
    if plan is None:
        raise NnunetTransferError(
            f"{path} is an nnssl SparK (S3D) training checkpoint: it has '{SPARK_KEY}' but no '{PLAN_KEY}', so "
            f"nothing says which network it holds. Run nnssl's add_adaptation_plan.py on it first (it writes the "
            f"plan and drops the SparK-only weights).")
    try:
        configuration = next(iter(plan["pretrain_plan"]["configurations"].values()))
        patch = [int(s) for s in plan["recommended_downstream_patchsize"]]
        meta = {"mode": MODE_NNSSL, "format": "nnssl", "configuration": "3d_fullres", "patch_size": patch,
                "batch_size": 2, "spacing": None if configuration.get("spacing") is None
                else [float(s) for s in configuration["spacing"]],
                "input_channels": int(plan["pretrain_num_input_channels"]), "channel_names": None,
                "source_dataset": plan["pretrain_plan"].get("dataset_name"),
                "trainer": checkpoint.get("trainer_name"),
                "nnssl_architecture": plan["architecture_plans"]["arch_class_name"],
                "key_to_encoder": plan["key_to_encoder"], "key_to_stem": plan["key_to_stem"],
                "keys_to_in_proj": list(plan["keys_to_in_proj"]),
                "citations": list(checkpoint.get(CITATIONS_KEY) or [])}
        meta["architecture"] = _architecture(plan["architecture_plans"])
    except (KeyError, TypeError, ValueError, StopIteration) as e:
        if isinstance(e, NnunetTransferError):
            raise
        raise NnunetTransferError(f"{path}: its '{PLAN_KEY}' is not an nnssl adaptation plan ({type(e).__name__}: "
                                  f"{e}).") from None
    return meta


def repair_sparse_copies(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Every ``<m>.conv.*`` / ``<m>.norm.*`` key set to its ``<m>.all_modules.0`` / ``.1`` twin.

    In a dense network the two names are one tensor; in a SparK (S3D) checkpoint's encoder they are
    two, and only ``all_modules`` was trained (nnssl's sparse conversion copies each module once per
    path). Taking ``all_modules`` is right for both."""
    out = dict(state)
    for key, value in state.items():
        for pattern, name in _SPARSE_PAIRS:
            match = pattern.search(key)
            if match:
                twin = key[: match.start()] + name + match.group(1)
                if twin in out:
                    out[twin] = value
    return out


def nnssl_state_dict(checkpoint: Mapping[str, Any], metadata: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """``network_weights`` with the SparK copies repaired and the encoder renamed to the layout of
    nnU-Net's U-Nets (``encoder.stages`` / ``encoder.stem``) when the plan's keys differ (an encoder
    wrapped under another attribute)."""
    weights = checkpoint.get("network_weights")
    if not isinstance(weights, Mapping):
        raise NnunetTransferError("The nnssl checkpoint has no 'network_weights'.")
    state = repair_sparse_copies({k: v for k, v in weights.items() if isinstance(v, torch.Tensor)})
    renames = {metadata["key_to_encoder"]: "encoder.stages", metadata["key_to_stem"]: "encoder.stem"}
    out = {}
    for key, value in state.items():
        for old, new in renames.items():
            if old != new and (key == old or key.startswith(old + ".")):
                key = new + key[len(old):]
                break
        out[key] = value
    return out
