"""Fixtures for the data tests: configs and a source whose label is the example's index."""

import ml_collections
import numpy as np
import pytest

from gan_jax.data.source import ArraySource


@pytest.fixture
def data_config():
    """Builds a `data` ConfigDict with the fields get_source reads; keywords override them."""

    def make(**fields):
        config = dict(
            source='digits',
            tfds_name=None,
            path=None,
            tfds_data_dir=None,
            download=False,
            channels=None,
            skip_corrupt=False,
            on_device=False,
            reshuffle_each_epoch=True,
        )
        return ml_collections.ConfigDict({**config, **fields})

    return make


@pytest.fixture
def indexed_source():
    """12 examples whose label and pixels are their index, so the stream order is visible."""
    images = np.broadcast_to(np.arange(12, dtype=np.uint8)[:, None, None, None], (12, 2, 2, 1))
    return ArraySource(
        images, np.arange(12), name='indexed', resolution=2, channels=1, num_classes=12
    )
