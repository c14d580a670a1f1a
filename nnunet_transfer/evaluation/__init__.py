"""Voxel, boundary, lesion-wise and instance evaluation of segmentations, challenge profiles, and the
``nnunet_transfer evaluate`` command.

``metrics``: Dice, IoU, volumes (pure numpy); ``boundary``: NSD, HD95, ASSD; ``lesions``:
connected components, their overlaps and this project's lesion detection metrics; ``instances``:
PQ / SQ / RQ and lesion-wise Dice; ``profiles``: the ATLAS R2.0, ISBI 2015 and MSSEG-2016
definitions as their scorers compute them; ``evaluate``: folders -> per-case table + summary;
``cli``: the sub-command. Import from the modules; this package imports nothing, so building the
CLI parser does not load SimpleITK and scipy.
"""
