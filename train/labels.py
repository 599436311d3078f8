"""Class names through a label encoder: the notebook trained on codes 0…k−1, the service answers the names.

XGBoost wants labels 0…k−1, so notebooks encode them (`label_encoder = LabelEncoder().fit(y)`, then
`y_train = label_encoder.transform(...)`). When the notebook leaves such an encoder (the `label_encoder`
variable, `--label-encoder-var`), training decodes the model's classes and both splits' labels with it: the
card, the metrics, the API, the UI and the monitoring all speak of "yes" and "no", never of 0 and 1.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from train.errors import ModelCheckFailed


def decode_labels(encoder: Any, name: str, classes: Any, *labels: Any) -> tuple[list[str], list[np.ndarray]]:
    """The model's class names and the splits' labels, decoded by `encoder`; refused when it does not fit them."""
    if not (hasattr(encoder, "classes_") and hasattr(encoder, "inverse_transform")):
        raise ModelCheckFailed(
            f"`{name}` is a {type(encoder).__name__}, not a fitted label encoder (a LabelEncoder fitted on the "
            "labels, with classes_ and inverse_transform)."
        )
    known = len(encoder.classes_)
    try:
        names = [str(name) for name in encoder.inverse_transform(np.asarray(classes))]
        decoded = [np.asarray(encoder.inverse_transform(np.asarray(split))) for split in labels]
    except (ValueError, TypeError, IndexError) as error:
        raise ModelCheckFailed(
            f"`{name}` cannot decode the model's classes {list(classes)[:10]} and the labels ({error}); the labels "
            f"must be its codes 0 to {known - 1}, e.g. y_train = {name}.transform(y_train)."
        ) from None
    return names, decoded
