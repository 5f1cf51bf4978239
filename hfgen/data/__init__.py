"""Datasets for every family: each source returns a `datasets.Dataset` with an `image` column (and `label`)."""

from .sources import DATASET_NAMES, ImageDataInfo, describe_images, load_image_dataset
from .transforms import image_transform, images_to_tensor

__all__ = [
    "DATASET_NAMES",
    "ImageDataInfo",
    "describe_images",
    "image_transform",
    "images_to_tensor",
    "load_image_dataset",
]
