"""nnssl / OpenMind pretraining checkpoints, read into what every other checkpoint gives us.

nnssl (github.com/MIC-DKFZ/nnssl) saves ``network_weights`` (the whole pretraining network) and
``nnssl_adaptation_plan``: the architecture (``architecture_plans``: a preset name such as
``ResEncL`` with ``arch_kwargs`` None, or ``ResidualEncoderUNet`` / ``PlainConvUNet`` with its
kwargs), the pretraining plan (one configuration: spacing, patch size), the recommended
downstream patch size, the input channels and where the encoder lives (``key_to_encoder``,
``key_to_stem``, ``keys_to_in_proj``, for transformers ``key_to_lpe``). Two forms carry it: the
training checkpoint (plus optimizer state, logging, ``init_args``, ...) and the release form of
``add_adaptation_plan.py``;
published checkpoints may add ``citations``. This module turns the plan into our checkpoint block
(nnU-Net-style ``architecture``, ``patch_size``, ``spacing``, ...) so that ``preview``,
``attach`` and ``plan-like-checkpoint`` treat it like our own checkpoints, and repairs the one
trap of SparK (S3D) checkpoints: their encoder's ``conv`` / ``norm`` keys hold the untrained
copies, only ``all_modules.0`` / ``all_modules.1`` were trained.

Primus checkpoints (``PrimusS/B/M/L``; nnssl's ``BaseEvaMAETrainer`` and the other ``*EvaTrainer``)
hold nnssl's pretraining module, not a Primus: ``EvaMAE`` (nnssl ``architectures/evaMAE_module.py``:
``down_projection`` kernel-8 patch embedding, ``eva`` encoder with ``eva.pos_embed``, an MAE
decoder ``decoder.*`` with its own ``decoder.pos_embed`` of the same shape, ``up_projection``,
``mask_token``), wrapped under ``encoder.`` by the contrastive trainers. The encoder is the plan's
``key_to_encoder`` + ``key_to_stem``, its positional embedding ``key_to_lpe``; the network for
fine-tuning is :class:`nnunet_transfer.networks.primus.TransferPrimus`, sized from the weights, with
the module's token order (``EvaMAE``: ``yxz``; nnssl's SimMIM module: ``xyz``). Pure torch, no
nnU-Net import.
"""
from __future__ import annotations

import math
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
# embed_dim, depth, heads of nnssl's Primus presets (dynamic_network_architectures primus._PRIMUS_CONFIGS)
PRIMUS_PRESETS = {"PrimusS": (396, 12, 6), "PrimusB": (792, 12, 12), "PrimusM": (864, 16, 12),
                  "PrimusL": (1056, 24, 16)}
PRIMUS_CLASS = "nnunet_transfer.networks.primus.TransferPrimus"
PRIMUS_ENCODER, PRIMUS_STEM, PRIMUS_LPE = "eva", "down_projection", "eva.pos_embed"  # TransferPrimus's names
# nnssl's pretraining modules flatten the token grid in their own order: EvaMAE as 'b (h w d) c' of a
# 'b c w h d' grid (yxz), its SimMIM module as 'b (w h d) c' (xyz)
XYZ_TRAINERS = ("SimMIM",)
# Primus fine-tuning in nnU-Net (nnUNetTrainer/primus/primus_trainers.py AbstractPrimus) and nnssl: stochastic
# depth 0.2, LayerScale init 0.1, normalised attention
PRIMUS_DROP_PATH = 0.2
PRIMUS_INIT_VALUES = 0.1
REQUIRES_IMPORT = ["conv_op", "norm_op", "dropout_op", "nonlin"]
WRAPPER_PREFIXES = ("module.", "_orig_mod.")  # DistributedDataParallel, torch.compile
_SPARSE_PAIRS = ((re.compile(r"\.all_modules\.0\.(weight|bias)$"), ".conv."),
                 (re.compile(r"\.all_modules\.1\.(weight|bias)$"), ".norm."))


def is_nnssl(checkpoint: Mapping[str, Any]) -> bool:
    """Whether a loaded checkpoint comes from nnssl (an adaptation plan, or SparK's extra weights)."""
    return PLAN_KEY in checkpoint or SPARK_KEY in checkpoint


def is_primus(metadata: Mapping[str, Any] | None) -> bool:
    """Whether a checkpoint block describes an nnssl Primus (transformer) checkpoint."""
    return bool(metadata) and str(metadata.get("nnssl_architecture")) in PRIMUS_PRESETS


def _architecture(plans: Mapping[str, Any]) -> dict[str, Any]:
    """nnU-Net's ``architecture`` block for the adaptation plan's U-Net ``architecture_plans``;
    refuses architectures nnU-Net cannot build."""
    name = plans.get("arch_class_name")
    kwargs = plans.get("arch_kwargs")
    if name == "ResEncL":
        kwargs = RESENC_L_KWARGS
    elif name in DYNAMIC_CLASSES and isinstance(kwargs, Mapping):
        kwargs = dict(kwargs)
    else:
        raise NnunetTransferError(
            f"The nnssl checkpoint's architecture is {name!r}, an architecture without the U-Net kwargs nnU-Net "
            f"builds networks from. Supported: ResEncL, {', '.join(PRIMUS_PRESETS)} and ResidualEncoderUNet / "
            f"PlainConvUNet with their arch_kwargs. Nothing was written.")
    cls = f"{UNET_MODULE}.{name if name in DYNAMIC_CLASSES else 'ResidualEncoderUNet'}"
    kwargs = {k: ([list(v) for v in value] if k in ("kernel_sizes", "strides") else value)
              for k, value in kwargs.items()}
    return {"network_class_name": cls, "arch_kwargs": kwargs,
            "_kw_requires_import": [k for k in REQUIRES_IMPORT if kwargs.get(k) is not None]}


def _token_grid(tokens: int, patch: Any, embed: list[int], path: str) -> list[int]:
    """The pretraining's token grid: its configured patch over the patch embedding when that gives
    the embedding's number of tokens, else the cube the number of tokens makes."""
    try:
        grid = [int(s) // e for s, e in zip(patch, embed)]
        if len(grid) == 3 and math.prod(grid) == tokens:
            return grid
    except (TypeError, ValueError):
        pass
    side = round(tokens ** (1 / 3))
    if side ** 3 == tokens:
        return [side] * 3
    raise NnunetTransferError(f"{path}: the positional embedding has {tokens} tokens, which neither the pretraining "
                              f"patch {patch} over the patch embedding {embed} nor a cube gives; its token grid is "
                              f"unknown.")


def _primus(plan: Mapping[str, Any], weights: Mapping[str, Any], patch: list[int], configuration: Mapping[str, Any],
            trainer: str | None, path: str) -> dict[str, Any]:
    """The fine-tuning network of an nnssl Primus checkpoint, sized from its weights: architecture
    block (:class:`TransferPrimus` at ``patch``), the pretraining's ``token_grid`` and ``token_order``."""
    name = plan["architecture_plans"]["arch_class_name"]
    encoder, lpe = plan["key_to_encoder"], plan.get("key_to_lpe")
    in_proj = next((weights[f"{k}.weight"] for k in plan["keys_to_in_proj"] if f"{k}.weight" in weights), None)
    if in_proj is None or in_proj.ndim != 5 or lpe not in weights:
        raise NnunetTransferError(f"{path}: a {name} checkpoint needs its patch embedding "
                                  f"({', '.join(plan['keys_to_in_proj'])}) and positional embedding ({lpe}) in "
                                  f"'network_weights'; they are not there.")
    embed_dim, patch_embed = int(in_proj.shape[0]), [int(k) for k in in_proj.shape[2:]]
    blocks = re.compile(rf"^{re.escape(encoder)}\.blocks\.(\d+)\.")
    depth = 1 + max((int(m.group(1)) for m in map(blocks.match, weights) if m), default=-1)
    preset = PRIMUS_PRESETS[name]
    given = plan["architecture_plans"].get("arch_kwargs") or {}
    heads = given.get("eva_numheads") if isinstance(given, Mapping) else None
    if heads is None:
        if (embed_dim, depth) != preset[:2]:
            raise NnunetTransferError(
                f"{path}: its weights are a transformer of width {embed_dim} and depth {depth}, not {name} "
                f"(width {preset[0]}, depth {preset[1]}), and its plan's arch_kwargs give no eva_numheads; the "
                f"number of attention heads cannot be read from weights.")
        heads = preset[2]
    order = "xyz" if any(t in str(trainer) for t in XYZ_TRAINERS) else "yxz"
    block0 = f"{encoder}.blocks.0."
    kwargs = {"embed_dim": embed_dim, "patch_embed_size": patch_embed, "eva_depth": depth, "eva_numheads": int(heads),
              "input_shape": list(patch), "token_order": order, "drop_path_rate": PRIMUS_DROP_PATH,
              "init_values": PRIMUS_INIT_VALUES if f"{block0}gamma_1" in weights else None,
              "scale_attn_inner": f"{block0}attn.norm.weight" in weights}
    return {"architecture": {"network_class_name": PRIMUS_CLASS, "arch_kwargs": kwargs, "_kw_requires_import": []},
            "token_grid": _token_grid(int(weights[lpe].shape[1]), configuration.get("patch_size"), patch_embed, path),
            "token_order": order}


def nnssl_metadata(checkpoint: Mapping[str, Any], path: str = "the checkpoint") -> dict[str, Any]:
    """Our checkpoint block (``nnunet_transfer.transfer.checkpoint.METADATA_KEY`` keys) for an nnssl
    checkpoint: ``architecture`` (nnU-Net style), ``configuration`` ``3d_fullres``, ``patch_size``
    (the recommended downstream patch), ``spacing`` (the pretraining's; None for ``noresample``),
    ``batch_size`` 2 (nnU-Net's for these networks), ``input_channels``, ``source_dataset``,
    ``mode`` ``nnssl``, ``trainer``, the encoder keys, ``normalization`` (the pretraining's
    schemes, None when the plan does not say) and ``citations`` (a list, empty when absent); for a
    Primus also ``token_grid`` and ``token_order`` of the pretraining (see :func:`_primus`).

    Raises NnunetTransferError for a SparK training checkpoint without an adaptation plan, a
    malformed plan, or an architecture we cannot build, before anything is written.
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
                "keys_to_in_proj": list(plan["keys_to_in_proj"]), "key_to_lpe": plan.get("key_to_lpe"),
                "normalization": configuration.get("normalization_schemes"),
                "citations": list(checkpoint.get(CITATIONS_KEY) or [])}
        if meta["nnssl_architecture"] in PRIMUS_PRESETS:
            weights = {strip_wrapper_prefixes(k): v for k, v in (checkpoint.get("network_weights") or {}).items()}
            meta.update(_primus(plan, weights, patch, configuration, meta["trainer"], path))
        else:
            meta["architecture"] = _architecture(plan["architecture_plans"])
    except (KeyError, TypeError, ValueError, StopIteration, AttributeError) as e:
        if isinstance(e, NnunetTransferError):
            raise
        raise NnunetTransferError(f"{path}: its '{PLAN_KEY}' is not an nnssl adaptation plan ({type(e).__name__}: "
                                  f"{e}).") from None
    return meta


def strip_wrapper_prefixes(key: str) -> str:
    """Remove every leading DDP / torch.compile prefix from a state-dict key."""
    while key.startswith(WRAPPER_PREFIXES):
        key = key.split(".", 1)[1]
    return key


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
    """``network_weights`` without DDP / torch.compile prefixes, the SparK copies repaired and the
    encoder renamed to the layout of the fine-tuning network (nnU-Net's U-Nets: ``encoder.stages`` /
    ``encoder.stem``; Primus: ``eva`` / ``down_projection``) when the plan's keys differ (an encoder
    wrapped under another attribute, e.g. ``encoder.eva`` of nnssl's contrastive trainers)."""
    weights = checkpoint.get("network_weights")
    if not isinstance(weights, Mapping):
        raise NnunetTransferError("The nnssl checkpoint has no 'network_weights'.")
    state = repair_sparse_copies({strip_wrapper_prefixes(k): v for k, v in weights.items()
                                  if isinstance(v, torch.Tensor)})
    renames = ({metadata["key_to_encoder"]: PRIMUS_ENCODER, metadata["key_to_stem"]: PRIMUS_STEM}
               if is_primus(metadata) else {metadata["key_to_encoder"]: "encoder.stages",
                                            metadata["key_to_stem"]: "encoder.stem"})
    out = {}
    for key, value in state.items():
        for old, new in renames.items():
            if old != new and (key == old or key.startswith(old + ".")):
                key = new + key[len(old):]
                break
        out[key] = value
    return out
