"""Input data: image sources and synthetic benchmarks, the process-independent training
stream, device prefetching."""

from gan_jax.data.mixtures import MIXTURES, Mixture, MixtureSource
from gan_jax.data.pipeline import make_train_iterator
from gan_jax.data.prefetch import DevicePrefetcher, device_prefetch
from gan_jax.data.source import ImageSource, SourceInfo
from gan_jax.data.sources import SOURCES, get_source, source_info
from gan_jax.data.stacked_mnist import StackedMnistSource
from gan_jax.data.tfds_source import DatasetUnavailableError

__all__ = [
    'MIXTURES',
    'SOURCES',
    'DatasetUnavailableError',
    'DevicePrefetcher',
    'ImageSource',
    'SourceInfo',
    'Mixture',
    'MixtureSource',
    'StackedMnistSource',
    'device_prefetch',
    'get_source',
    'make_train_iterator',
    'source_info',
]
