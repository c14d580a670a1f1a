"""Natural-image demo data from pictures bundled with scikit-image and scikit-learn (offline).

Three sources: crops labelled by the picture they come from (classification), composites of
scikit-image's horse silhouette, a real binary mask, filled with one picture's texture over
another's (segmentation, label 1 = horse), and unlabeled crops of any picture
(self-supervised). All outputs are uint8 RGB arrays of shape (size, size, 3).
"""
from __future__ import annotations

import functools

import numpy as np
from skimage import data as skimage_data
from skimage.transform import rescale, resize
from sklearn.datasets import load_sample_images

from nnunet_transfer.errors import NnunetTransferError

# Classification classes: one per colour photograph. Each loads from files shipped inside the
# installed package (no download); the origins are listed in ``IMAGE_ORIGINS``.
CLASS_IMAGES = ("astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field", "immunohistochemistry",
                "china", "flower")
# Grey textures only used as unlabeled data and as horse / background fillers.
TEXTURE_IMAGES = ("brick", "grass", "gravel", "camera", "coins", "moon")
IMAGE_ORIGINS = {
    "astronaut": "scikit-image data: Eileen Collins, NASA Great Images database, public domain",
    "chelsea": "scikit-image data: Chelsea the cat, CC0 by Stefan van der Walt",
    "coffee": "scikit-image data: coffee cup, CC0 by Rachel Michetti, courtesy of Pikolo Espresso Bar",
    "rocket": "scikit-image data: DSCOVR launch on Falcon 9, SpaceX, public domain",
    "hubble_deep_field": "scikit-image data: Hubble eXtreme Deep Field, NASA, public domain",
    "immunohistochemistry": "scikit-image data: IHC staining, Center for Microscopy And Molecular Imaging, "
                            "no known copyright restrictions",
    "china": "scikit-learn sample image china.jpg, CC BY 2.0, danielbuechele (Flickr)",
    "flower": "scikit-learn sample image flower.jpg, CC BY 2.0, vultilion (Flickr)",
    "brick": "scikit-image data: brick wall, CC0Textures, CC0",
    "grass": "scikit-image data: grass, DeviantArt linolafett, CC0",
    "gravel": "scikit-image data: gravel, CC0Textures, CC0",
    "camera": "scikit-image data: cameraman, CC0 by Lav Varshney",
    "coins": "scikit-image data: Greek coins from Pompeii, Brooklyn Museum Collection, no known restrictions",
    "moon": "scikit-image data: surface of the moon, no known copyright restrictions",
    "horse": "scikit-image data: horse silhouette, openclipart, CC0 by Andreas Preuss (marauder)",
}


@functools.cache
def load_image(name: str) -> np.ndarray:
    """Return the bundled picture ``name`` as uint8 RGB (H, W, 3); read-only, cached.

    Raises NnunetTransferError for a name not in ``CLASS_IMAGES`` or ``TEXTURE_IMAGES``.
    """
    if name in ("china", "flower"):
        bunch = load_sample_images()
        image = bunch.images[[f.replace("\\", "/").rsplit("/", 1)[-1] for f in bunch.filenames].index(f"{name}.jpg")]
    elif name in CLASS_IMAGES or name in TEXTURE_IMAGES:
        image = getattr(skimage_data, name)()
    else:
        raise NnunetTransferError(f"unknown demo picture {name!r}; use one of {CLASS_IMAGES + TEXTURE_IMAGES}")
    image = np.asarray(image)
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    image = np.ascontiguousarray(image[..., :3], dtype=np.uint8)
    image.setflags(write=False)
    return image


@functools.lru_cache(maxsize=1)
def horse_mask() -> np.ndarray:
    """scikit-image's horse silhouette as bool (True = horse), cropped to the horse (read-only)."""
    mask = ~np.asarray(skimage_data.horse(), bool)  # stored as a black horse on white
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    mask = np.ascontiguousarray(mask[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1])
    mask.setflags(write=False)
    return mask


def _check_size(size: int) -> int:
    """Validate the crop edge in pixels (8 to 512)."""
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or not 8 <= int(size) <= 512:
        raise NnunetTransferError(f"natural image size must be an integer from 8 to 512 pixels, got {size!r}")
    return int(size)


def random_crop(image: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """A random square crop of ``image`` resized to ``size`` x ``size`` (uint8 RGB).

    The crop edge is drawn log-uniformly between 35 % and 100 % of the picture's short side
    (random scale), its position uniformly, and it is flipped left-right with probability 0.5.
    """
    size = _check_size(size)
    height, width = image.shape[:2]
    short = min(height, width)
    edge = round(np.exp(rng.uniform(np.log(0.35 * short), np.log(short))))
    edge = int(np.clip(edge, min(size // 2, short), short))
    top = int(rng.integers(0, height - edge + 1))
    left = int(rng.integers(0, width - edge + 1))
    crop = image[top:top + edge, left:left + edge]
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    resized = resize(crop, (size, size), order=1, anti_aliasing=edge > size, preserve_range=True)
    return np.clip(np.rint(resized), 0, 255).astype(np.uint8)


def classification_crop(rng: np.random.Generator, size: int = 64) -> tuple[np.ndarray, int]:
    """A crop of a random class picture and its class index into ``CLASS_IMAGES``."""
    label = int(rng.integers(len(CLASS_IMAGES)))
    return random_crop(load_image(CLASS_IMAGES[label]), size, rng), label


def unlabeled_crop(rng: np.random.Generator, size: int = 64) -> np.ndarray:
    """A crop of any bundled picture (colour or grey texture), without a label."""
    names = CLASS_IMAGES + TEXTURE_IMAGES
    return random_crop(load_image(names[int(rng.integers(len(names)))]), size, rng)


def horse_scene(rng: np.random.Generator, size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """A horse-shaped region of one picture pasted over a crop of another.

    The silhouette is scaled to 40-90 % of the image width, flipped with probability 0.5 and
    placed at random, wholly inside the image. Out: (uint8 RGB image, uint8 mask 1 = horse).
    """
    size = _check_size(size)
    names = CLASS_IMAGES + TEXTURE_IMAGES
    inside, outside = rng.choice(len(names), size=2, replace=False)
    background = random_crop(load_image(names[int(outside)]), size, rng)
    texture = random_crop(load_image(names[int(inside)]), size, rng)
    silhouette = horse_mask()
    scale = rng.uniform(0.4, 0.9) * size / max(silhouette.shape)
    shape = rescale(silhouette.astype(np.float32), scale, order=1, anti_aliasing=True) >= 0.5
    if rng.random() < 0.5:
        shape = shape[:, ::-1]
    mask = np.zeros((size, size), np.uint8)
    top = int(rng.integers(0, size - shape.shape[0] + 1))
    left = int(rng.integers(0, size - shape.shape[1] + 1))
    mask[top:top + shape.shape[0], left:left + shape.shape[1]] = shape
    # A contrast shift keeps the horse visible when both pictures have similar colours.
    shift = rng.uniform(-40.0, 40.0)
    horse = np.clip(texture.astype(np.float32) + shift, 0, 255).astype(np.uint8)
    image = np.where(mask[..., None] == 1, horse, background)
    return image, mask
