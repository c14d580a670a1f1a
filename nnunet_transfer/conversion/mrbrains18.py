"""MRBrainS18 (Grand Challenge on MR Brain Segmentation at MICCAI 2018): 3T brain MRI, 8 anatomical structures.

Layout of the training download (``training.zip``) after extraction::

    training/1/segm.nii.gz                 manual reference, labels 0-10, in FLAIR space
    training/1/pre/FLAIR.nii.gz            bias-field corrected (N4), 0.958 x 0.958 x 3.0 mm
    training/1/pre/reg_T1.nii.gz           3D T1 registered to the FLAIR
    training/1/pre/reg_IR.nii.gz           T1 inversion recovery registered to the FLAIR
    training/1/pre/T1.nii.gz, IR.nii.gz    unregistered: NOT on the label grid, never used
    training/1/orig/...                    the same files without bias-field correction
    training/{4,5,7,14,070,148}/...

Only the 7 training subjects carry labels (the 23 test subjects were never released). Images
come from ``pre/`` (bias corrected) and are the ``reg_`` ones, the only ones on the label grid.
Case id: the subject folder name (``070`` keeps its leading zero).
"""
from __future__ import annotations

import functools
from pathlib import Path

from nnunet_transfer.conversion.common import (Case, Conversion, Converter, Provenance, check_modalities, child,
                                               children, find_nifti, require_cases)
from nnunet_transfer.conversion.validate import remap_labels
from nnunet_transfer.errors import NnunetTransferError

# modality -> file stem in pre/ (registered to the FLAIR, i.e. to the label grid)
MODALITY_FILES = {"T1": "reg_T1", "FLAIR": "FLAIR", "IR": "reg_IR"}
STRUCTURES = ["cortical_grey_matter", "basal_ganglia", "white_matter", "white_matter_lesions",
              "cerebrospinal_fluid_extracerebral", "ventricles", "cerebellum", "brain_stem"]
# What labels 9 (infarction) and 10 (other), which the challenge leaves out of its evaluation, become.
IGNORE_MODES = ("ignore", "keep", "background")

PROVENANCE = Provenance(
    title="MRBrainS18: Grand Challenge on MR Brain Segmentation at MICCAI 2018", release="training (7 subjects)",
    url="https://mrbrains18.isi.uu.nl/",
    licence="MRBrainS18 challenge terms of use (registration on the challenge website; research use, cite the "
            "challenge)",
    citation="MRBrainS18: Grand Challenge on MR Brain Segmentation at MICCAI 2018, UMC Utrecht, "
             "https://mrbrains18.isi.uu.nl/ (Kuijf HJ et al.); evaluation framework: Mendrik AM et al. MRBrainS "
             "Challenge: Online Evaluation Framework for Brain Image Segmentation in 3T MRI Scans. Computational "
             "Intelligence and Neuroscience 2015, 813696 (2015). doi:10.1155/2015/813696")


def label_table(mode: str) -> tuple[dict[str, int], dict[int, int]]:
    """(dataset.json labels, source value -> nnU-Net value) for one ``--ignore-label`` mode.

    Raises ValueError for an unknown mode.
    """
    labels = {"background": 0, **{name: i for i, name in enumerate(STRUCTURES, start=1)}}
    mapping = {i: i for i in range(9)}
    if mode == "ignore":
        labels["ignore"] = 9  # nnU-Net: the ignore label is the highest value and is named "ignore"
        mapping.update({9: 9, 10: 9})
    elif mode == "keep":
        labels.update(infarction=9, other=10)
        mapping.update({9: 9, 10: 10})
    elif mode == "background":
        mapping.update({9: 0, 10: 0})
    else:
        raise ValueError(f"--ignore-label must be one of {IGNORE_MODES}, got {mode!r}")
    return labels, mapping


def _case(subject: Path, modalities: list[str]) -> Case:
    pre = child(subject, "pre")
    problems = []
    images = []
    for modality in modalities:
        path = find_nifti(pre, MODALITY_FILES[modality]) if pre else None
        if path is None:
            problems.append(f"no {MODALITY_FILES[modality]}.nii.gz ({modality} on the label grid) in {subject / 'pre'}")
        else:
            images.append(path)
    label = find_nifti(subject, "segm")
    if label is None:
        problems.append(f"no segm.nii.gz (the manual reference) in {subject}")
    return Case(subject.name, tuple(images), (label,) if label else (), "train", problems=tuple(problems))


class MRBrainS18Converter(Converter):
    key = "mrbrains18"
    title = "MRBrainS18 brain anatomy (T1 / FLAIR / IR, 8 structures)"
    default_name = "MRBrainS18"
    help = ("MRBrainS18 training download: training/<subject>/segm.nii.gz with pre/reg_T1, pre/FLAIR, pre/reg_IR "
            "(labels 9 infarction and 10 other become nnU-Net's ignore label by default)")

    def add_arguments(self, parser) -> None:
        parser.add_argument("--modalities", nargs="+", choices=list(MODALITY_FILES), default=["T1"],
                            metavar="MODALITY", help="channels in this order, from T1 FLAIR IR (default: T1)")
        parser.add_argument("--ignore-label", choices=IGNORE_MODES, default="ignore",
                            help="labels 9 (infarction) and 10 (other), not evaluated by the challenge: 'ignore' "
                                 "(nnU-Net ignore label 9, default), 'keep' (classes 9 and 10), 'background' (0)")

    def discover(self, source: Path, modalities: list[str] | tuple[str, ...] = ("T1",),
                 ignore_label: str = "ignore") -> Conversion:
        modalities = check_modalities(modalities, MODALITY_FILES)
        if ignore_label not in IGNORE_MODES:
            raise NnunetTransferError(f"--ignore-label must be one of {IGNORE_MODES}, got {ignore_label!r}")
        root = child(source, "training") or source
        subjects = [d for d in children(root, dirs=True) if child(d, "pre", "orig") or find_nifti(d, "segm")]
        if not subjects:
            raise NnunetTransferError(f"{root} has no subject folders (training/<subject>/segm.nii.gz with pre/); "
                                      f"point SOURCE_DIR at the extracted training.zip (see the how-to)")
        cases = require_cases((_case(d, modalities) for d in subjects), root,
                              "training/<subject>/segm.nii.gz with pre/reg_T1.nii.gz")
        labels, mapping = label_table(ignore_label)
        return Conversion(
            name=self.default_name, channel_names={str(i): m for i, m in enumerate(modalities)}, labels=labels,
            cases=cases, provenance=PROVENANCE, combine_masks=functools.partial(remap_labels, mapping=mapping),
            description="MRBrainS18 brain structure segmentation (3T, 0.958 x 0.958 x 3 mm, FLAIR space, bias "
                        f"corrected): labels 1-8 as in the challenge; 9 infarction and 10 other -> {ignore_label}",
            options={"modalities": modalities, "ignore_label": ignore_label})
