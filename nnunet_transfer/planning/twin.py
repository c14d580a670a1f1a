"""The 2D twin of a 3D plan: the network a 2D source pretrains so that a 3D target can inflate it."""
from __future__ import annotations

from copy import deepcopy

from nnunet_transfer.errors import NnunetTransferError

TWIN_CONFIGURATION = "2d_twin"
_OPS_3D_TO_2D = {"Conv3d": "Conv2d", "ConvTranspose3d": "ConvTranspose2d", "InstanceNorm3d": "InstanceNorm2d",
                 "BatchNorm3d": "BatchNorm2d", "Dropout3d": "Dropout2d"}


def _op_2d(name):
    if not isinstance(name, str):
        return name
    module, _, cls = name.rpartition(".")
    if cls in _OPS_3D_TO_2D:
        return f"{module}.{_OPS_3D_TO_2D[cls]}" if module else _OPS_3D_TO_2D[cls]
    return name


def twin_2d(configuration_3d: dict, batch_size: int) -> dict:
    """A 2D configuration with the same stages, features per stage, in-plane kernels and strides
    as ``configuration_3d`` (a resolved 3D configuration dict), the in-plane patch size and
    ``batch_size``. Only ``architecture``, ``patch_size`` and ``batch_size`` are returned: they are
    what shared plans copy. Raises NnunetTransferError if the configuration is not 3D.
    """
    if len(configuration_3d.get("patch_size", ())) != 3:
        raise NnunetTransferError("The 2D twin needs a 3D configuration (3d_fullres).")
    arch = deepcopy(configuration_3d["architecture"])
    kwargs = arch["arch_kwargs"]
    for key in ("conv_op", "norm_op", "dropout_op"):
        if key in kwargs:
            kwargs[key] = _op_2d(kwargs[key])
    for key in ("kernel_sizes", "strides"):
        kwargs[key] = [list(k)[1:] if isinstance(k, (list, tuple)) else k for k in kwargs[key]]
    return {"architecture": arch, "patch_size": list(configuration_3d["patch_size"])[1:],
            "batch_size": int(batch_size), "twin_of": "3d_fullres"}
