"""The columns every image source hands the families: `image` (a `datasets.Image`) and, when the data has classes,
`label` (a `datasets.ClassLabel`) - whatever a dataset on the Hub calls them."""

from __future__ import annotations

import datasets


def normalise_columns(dataset: datasets.Dataset, name: str) -> datasets.Dataset:
    """Rename the first Image column to `image` and the first ClassLabel column to `label`; drop the rest."""
    features = dataset.features
    image_columns = [c for c, f in features.items() if isinstance(f, datasets.Image)]
    if not image_columns:
        raise ValueError(
            f"Dataset {name!r} has no image column (columns: {', '.join(features)}): "
            "use a dataset whose features include datasets.Image()."
        )
    label_columns = [c for c, f in features.items() if isinstance(f, datasets.ClassLabel)]
    keep = {image_columns[0]: "image"} | ({label_columns[0]: "label"} if label_columns else {})
    dataset = dataset.remove_columns([c for c in features if c not in keep])
    return dataset.rename_columns({old: new for old, new in keep.items() if old != new})
