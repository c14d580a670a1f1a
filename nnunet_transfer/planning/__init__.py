"""Shared plans: one architecture, patch size and batch size for every dataset of a study (``plan``),
targets planned like a checkpoint (``plan-like-checkpoint``), the 2D twin of a 3D plan, attaching a
checkpoint to a target's plans (``attach``) and previewing the transfer (``preview``). Calls
nnU-Net's own fingerprinting, planning and preprocessing; never imports the trainers."""
