"""Any folder of NIfTI volumes, with or without masks, matched by file-name patterns.

Patterns are globs with a ``{case}`` placeholder, matched case-insensitively against paths
relative to a base folder: ``*`` is any characters except ``/``, ``?`` one character, ``**/``
any number of folders, ``{case}`` the case id (no ``/``)::

    --image-pattern '{case}_T1w.nii.gz'                      images directly in SOURCE_DIR
    --image-pattern '**/{case}_T1w.nii.gz'                   ... at any depth (BIDS: sub-*/anat/)
    --mask-pattern '{case}_mask.nii.gz'                      mask beside its image
    --masks ~/downloads/study/labels                         mask with the image's name in another folder
    --masks ~/downloads/study/labels --mask-pattern '{case}_seg*.nii.gz'   several files per case are combined

The image pattern's base is SOURCE_DIR; the mask pattern's base is ``--masks`` or else the
image's own folder. Files that are some case's mask are never taken as images. Without masks every
case gets the ``head`` placeholder label map (Otsu threshold of the image).
"""
from __future__ import annotations

import functools
import re
from pathlib import Path

from nnunet_transfer.conversion.common import (Case, Conversion, Converter, Provenance, require_cases, walk_files)
from nnunet_transfer.conversion.image_folder import sanitise
from nnunet_transfer.conversion.validate import binarise as union_above_zero
from nnunet_transfer.conversion.validate import remap_labels
from nnunet_transfer.errors import NnunetTransferError

DEFAULT_IMAGE_PATTERN = "{case}.nii.gz"
PROVENANCE = Provenance(
    title="a local folder of NIfTI volumes", url="",
    licence="as set by the owner of the data (not known to the converter)",
    citation="cite the source of the data")


def pattern_regex(pattern: str, case: str | None = None) -> re.Pattern:
    """A glob pattern with ``{case}`` as a regular expression over relative paths (case-insensitive).

    With ``case`` the placeholder is that literal text; without it, the named group ``case``.
    """
    out = ""
    for token in re.split(r"(\{case\}|\*\*/|\*|\?)", pattern):
        if token == "{case}":
            out += re.escape(case) if case is not None else r"(?P<case>[^/]+?)"
        elif token == "**/":
            out += r"(?:[^/]+/)*"
        elif token == "*":
            out += r"[^/]*"
        elif token == "?":
            out += r"[^/]"
        else:
            out += re.escape(token)
    return re.compile(out, re.IGNORECASE)


@functools.lru_cache(maxsize=64)
def _listing(base: Path) -> tuple[tuple[Path, str], ...]:
    """(file, path relative to ``base``) below ``base``, hidden ones skipped; cached because the mask search
    lists the same folder once per image."""
    return tuple((p, p.relative_to(base).as_posix()) for p in walk_files(base, r".+"))


def _matches(base: Path, regex: re.Pattern) -> list[Path]:
    """Files below ``base`` whose path relative to ``base`` matches ``regex``."""
    return [p for p, relative in _listing(base) if regex.fullmatch(relative)]


def parse_labels(text: str | None, masks: bool, binarise_masks: bool) -> dict[str, int]:
    """nnU-Net labels from ``--labels``: names of mask values 1, 2, ... (or 0, 1, ... when the first is
    ``background``). Raises NnunetTransferError for empty / repeated names or a mismatch with the masks."""
    if text is None:
        return {"background": 0, "foreground": 1}
    if not masks:
        raise NnunetTransferError("--labels names mask values, but no masks were asked for: add --mask-pattern "
                                  "or --masks")
    names = [n.strip() for n in text.split(",")]
    if names[0].lower() == "background":
        names = names[1:]
    if not names or any(not n for n in names) or len(set(names)) != len(names) or "background" in names:
        raise NnunetTransferError(f"--labels {text!r}: give distinct, non-empty names separated by commas, e.g. "
                                  f"'lesion' or 'background,csf,gm,wm'")
    if binarise_masks and len(names) != 1:
        raise NnunetTransferError(f"--binarise makes one foreground label, but --labels names {len(names)}: {names}")
    return {"background": 0, **{name: i for i, name in enumerate(names, start=1)}}


def _find_masks(image: Path, case: str, masks_dir: Path | None, mask_pattern: str | None, source: Path
                ) -> tuple[tuple[Path, ...], str]:
    """(mask files of one case, the sentence naming what was expected when there are none)."""
    if mask_pattern is None:  # --masks alone: the image's relative path inside the masks folder
        relative = image.relative_to(source)
        found = masks_dir / relative
        return ((found,) if found.is_file() else ()), f"{found} (same name as the image)"
    base = masks_dir if masks_dir is not None else image.parent
    wanted = mask_pattern.replace("{case}", case)
    found = tuple(p for p in _matches(base, pattern_regex(mask_pattern, case)) if p != image)
    return found, f"{base}/{wanted}"


class NiftiFolderConverter(Converter):
    key = "nifti-folder"
    title = "any folder of NIfTI volumes, with or without masks"
    default_name = "NiftiFolder"
    help = ("images and masks found by glob patterns with a {case} placeholder; without masks: unlabelled "
            "(head placeholder label maps)")

    def add_arguments(self, parser) -> None:
        parser.add_argument("--image-pattern", default=DEFAULT_IMAGE_PATTERN, metavar="GLOB",
                            help=f"image files relative to SOURCE_DIR, with {{case}} "
                                 f"(default {DEFAULT_IMAGE_PATTERN!r}; '**/' for any depth)")
        parser.add_argument("--mask-pattern", default=None, metavar="GLOB",
                            help="mask file(s) of a case, relative to --masks or else to the image's folder, with "
                                 "{case} (e.g. '{case}_mask.nii.gz')")
        parser.add_argument("--masks", default=None, metavar="DIR",
                            help="folder of the masks (without --mask-pattern: same relative path as the image)")
        parser.add_argument("--labels", default=None, metavar="NAMES",
                            help="comma-separated names of mask values 1, 2, ... (e.g. 'lesion' or "
                                 "'background,csf,gm,wm'); default 'foreground'")
        parser.add_argument("--binarise", action="store_true",
                            help="mask > 0 -> 1 (lesion masks stored as 255, float or several files per case)")
        parser.add_argument("--channel-name", default="MRI", metavar="NAME",
                            help="nnU-Net channel name (default MRI: z-score normalisation; CT: CT normalisation)")

    def discover(self, source: Path, image_pattern: str = DEFAULT_IMAGE_PATTERN, mask_pattern: str | None = None,
                 masks: str | None = None, labels: str | None = None, binarise: bool = False,
                 channel_name: str = "MRI") -> Conversion:
        for name, pattern in (("--image-pattern", image_pattern), ("--mask-pattern", mask_pattern)):
            if pattern is not None and "{case}" not in pattern:
                raise NnunetTransferError(f"{name} {pattern!r} has no {{case}} placeholder: it marks the part of the "
                                          f"file name that is the case id, e.g. '{{case}}_T1w.nii.gz'")
        masks_dir = Path(masks).expanduser() if masks is not None else None
        if masks_dir is not None and not masks_dir.is_dir():
            raise NnunetTransferError(f"--masks {masks_dir} is not a folder")
        with_masks = masks_dir is not None or mask_pattern is not None
        if binarise and not with_masks:
            raise NnunetTransferError("--binarise applies to masks, but no masks were asked for: add --mask-pattern "
                                      "or --masks")
        label_map = parse_labels(labels, with_masks, binarise)
        _listing.cache_clear()  # files may have changed since an earlier conversion in this process
        regex = pattern_regex(image_pattern)
        found = [(p, regex.fullmatch(relative)) for p, relative in _listing(source)]
        images = [(p, m.group("case")) for p, m in found if m]
        mask_files: dict[Path, tuple[tuple[Path, ...], str]] = {}
        if with_masks:
            mask_files = {p: _find_masks(p, case, masks_dir, mask_pattern, source) for p, case in images}
        taken = {m for files, _ in mask_files.values() for m in files}
        cases = []
        for image, case in images:
            if image in taken:  # e.g. x_mask.nii.gz also matches '{case}.nii.gz'
                continue
            problems: tuple[str, ...] = ()
            files, expected = mask_files.get(image, ((), ""))
            if with_masks and not files:
                problems = (f"no mask for {image}: expected {expected}",)
            cases.append(Case(sanitise(case), (image,), files, problems=problems))
        cases = require_cases(cases, source, f"files matching --image-pattern {image_pattern!r}")
        _refuse_repeats(cases)
        combine = None
        if with_masks:
            combine = union_above_zero if binarise else functools.partial(
                remap_labels, mapping={v: v for v in label_map.values()})
        return Conversion(
            name=self.default_name, channel_names={"0": channel_name}, labels=label_map, cases=cases,
            provenance=PROVENANCE, combine_masks=combine, placeholder=None if with_masks else "head",
            description=f"NIfTI volumes from {source.name} ({'with masks' if with_masks else 'unlabelled'})",
            options={"image_pattern": image_pattern, "mask_pattern": mask_pattern, "masks": masks, "labels": labels,
                     "binarise": binarise, "channel_name": channel_name})


def _refuse_repeats(cases: list[Case]) -> None:
    """Raises NnunetTransferError naming both files when two images give the same (sanitised) case id."""
    seen: dict[str, Path] = {}
    for case in cases:
        if case.case_id in seen:
            raise NnunetTransferError(f"case id {case.case_id!r} comes from both {seen[case.case_id]} and "
                                      f"{case.images[0]}: make --image-pattern's {{case}} part unique (e.g. include "
                                      f"the subject folder: '{{case}}/anat/*_T1w.nii.gz')")
        seen[case.case_id] = case.images[0]
