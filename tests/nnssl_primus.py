"""nnssl's Primus pretraining module and checkpoints, rebuilt for tests from reading nnssl
(``architectures/evaMAE_module.py``, ``training/nnsslTrainer/masked_image_modeling/BaseEvaMAETrainer.py``,
``utilities/add_adaptation_plan.py``): the same submodules from dynamic_network_architectures under
the same attribute names, the same token order, the same checkpoint dictionaries. nnssl itself is
not installed here."""
from __future__ import annotations

from pathlib import Path

import torch
from dynamic_network_architectures.building_blocks.eva import Eva
from dynamic_network_architectures.building_blocks.patch_encode_decode import PatchDecode, PatchEmbed
from torch import nn

# a Primus small enough for CPU tests; its plan says PrimusM and carries the sizes in arch_kwargs
TINY = {"embed_dim": 48, "depth": 2, "heads": 2, "decoder_depth": 1}


class NnsslEvaMAE(nn.Module):
    """nnssl's ``EvaMAE``: patch embedding ``down_projection``, EVA encoder ``eva``, reconstruction
    head ``up_projection``, EVA decoder ``decoder``, learnt ``mask_token``. Tokens are flattened as
    nnssl does, ``b c w h d -> b (h w d) c`` (second grid axis slowest)."""

    def __init__(self, patch_size, embed_dim=TINY["embed_dim"], depth=TINY["depth"], heads=TINY["heads"],
                 decoder_depth=TINY["decoder_depth"], patch_embed=(8, 8, 8), input_channels=1, mask_ratio=0.0):
        super().__init__()
        grid = tuple(s // p for s, p in zip(patch_size, patch_embed))
        eva = dict(embed_dim=embed_dim, num_heads=heads, ref_feat_shape=grid, use_rot_pos_emb=True,
                   use_abs_pos_emb=True, mlp_ratio=4 * 2 / 3, init_values=0.1, scale_attn_inner=True)
        self.down_projection = PatchEmbed(patch_embed, input_channels, embed_dim)
        self.eva = Eva(depth=depth, patch_drop_rate=mask_ratio, **eva)
        self.up_projection = PatchDecode(patch_embed, embed_dim, input_channels)
        self.decoder = Eva(depth=decoder_depth, patch_drop_rate=0.0, **eva)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, embed_dim))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The encoder's tokens on their grid, ``(b, c, x, y, z)`` (no masking: mask_ratio 0, eval)."""
        grid = self.down_projection(x)
        b, c, nx, ny, nz = grid.shape
        tokens = grid.permute(0, 3, 2, 4, 1).reshape(b, ny * nx * nz, c)  # (h w d) order of nnssl
        tokens, _ = self.eva(tokens)
        return tokens.reshape(b, ny, nx, nz, c).permute(0, 4, 2, 1, 3)


def randomised(module: nn.Module, seed: int = 5, scale: float = 0.05) -> nn.Module:
    torch.manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn_like(p) * scale)
    return module


def adaptation_plan(pretrain_patch, downstream_patch, arch="PrimusM", prefix="", sizes=TINY, spacing=(1, 1, 1)) -> dict:
    """The plan as nnssl's AdaptationPlan.serialize() writes it for an Eva trainer (``prefix``
    ``encoder.`` for the contrastive ones), after torch.load (tuples kept)."""
    arch_kwargs = None if sizes is None else {"embed_dim": sizes["embed_dim"], "eva_depth": sizes["depth"],
                                              "eva_numheads": sizes["heads"]}
    return {"architecture_plans": {"arch_class_name": arch, "arch_kwargs": arch_kwargs,
                                   "arch_kwargs_requiring_import": None},
            "pretrain_plan": {"dataset_name": "Dataset745_OpenMind", "plans_name": "nnsslPlans",
                              "original_median_spacing_after_transp": [1, 1, 1],
                              "image_reader_writer": "NibabelReaderWriter", "transpose_forward": [0, 1, 2],
                              "transpose_backward": [0, 1, 2], "experiment_planner_used": "ExperimentPlanner",
                              "configurations": {"onemmiso": {
                                  "data_identifier": "nnsslPlans_onemmiso", "preprocessor_name": "DefaultPreprocessor",
                                  "spacing_style": "onemmiso", "normalization_schemes": ["ZScoreNormalization"],
                                  "use_mask_for_norm": [False], "spacing": list(spacing),
                                  "patch_size": tuple(pretrain_patch)}}},
            "pretrain_num_input_channels": 1, "recommended_downstream_patchsize": tuple(downstream_patch),
            "key_to_encoder": f"{prefix}eva", "key_to_stem": f"{prefix}down_projection",
            "keys_to_in_proj": (f"{prefix}down_projection.proj",), "key_to_lpe": f"{prefix}eva.pos_embed"}


def nnssl_primus_checkpoint(path: Path, pretrain_patch=(32, 32, 32), downstream_patch=(48, 48, 48),
                            training_form: bool = False, trainer: str = "BaseEvaMAETrainer", seed: int = 5,
                            module: nn.Module | None = None, spacing=(1, 1, 1)) -> nn.Module:
    """Write a Primus checkpoint as nnssl does: the training form (``save_checkpoint`` of its
    trainers) or the release form (``add_adaptation_plan.py``: optimizer / logging state dropped,
    adaptation plan added, ``trainer_name`` and ``init_args`` kept), with a citation. The
    pretraining module is an ``NnsslEvaMAE`` at ``pretrain_patch`` (random weights, or ``module``),
    pretrained at ``spacing`` (OpenMind's 1 mm; tests on coarse demo data say theirs);
    contrastive trainers' (``SimCLREvaTrainer``, ``VoCoEvaTrainer``) wrap it under ``encoder.``.
    Returns the module."""
    module = module or randomised(NnsslEvaMAE(pretrain_patch), seed)
    prefix = "encoder." if any(t in trainer for t in ("SimCLR", "VoCo", "SwinUNETR")) else ""
    weights = {f"{prefix}{k}": v for k, v in module.state_dict().items()}
    content = {"network_weights": weights, "trainer_name": trainer,
               "init_args": {"configuration_name": "onemmiso", "fold": 0, "device": torch.device("cpu"),
                             "pretrain_json": {"collection": ["/data/sub-001_T1w.nii.gz"]}},
               "nnssl_adaptation_plan": adaptation_plan(pretrain_patch, downstream_patch, prefix=prefix,
                                                        spacing=spacing),
               "citations": [{"type": "pretraining", "name": "synthetic Primus",
                              "apa_citations": ["A test (2026)."]}]}
    if training_form:
        content.update(optimizer_state={"state": {}, "param_groups": []}, grad_scaler_state=None,
                       logging={"train_losses": [1.0]}, _best_ema=None, current_epoch=1000)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(content, path)
    return module
