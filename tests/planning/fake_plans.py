"""Hand-written nnU-Net plans for the planning tests."""


def cfg(patch, features, norm="ZScoreNormalization", spacing=None, batch=2):
    """One configuration: patch, batch, spacing, normalisation and a PlainConvUNet with ``features``."""
    return {"data_identifier": "P_x", "patch_size": patch, "batch_size": batch,
            "spacing": spacing or [1.0] * len(patch),
            "normalization_schemes": [norm], "use_mask_for_norm": [False],
            "architecture": {"network_class_name": "PlainConvUNet", "arch_kwargs": {"features_per_stage": features}}}


def plans(name, configs):
    """Plans ``P`` of dataset ``name`` with ``configs``."""
    return {"dataset_name": name, "plans_name": "P", "configurations": configs}
