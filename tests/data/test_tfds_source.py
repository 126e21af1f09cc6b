import numpy as np

from gan_jax.data import get_source


def test_real_mnist(data_config, prepared_tfds_mnist):
    config = data_config(source='tfds', tfds_name='mnist', tfds_data_dir=prepared_tfds_mnist)
    train = get_source(config, resolution=28)
    assert len(train) == 60000 and train.num_classes == 10
    examples = [train[i] for i in range(0, 60000, 300)]
    assert train.image_shape == examples[0]['image'].shape == (28, 28, 1)
    assert all(e['image'].dtype == np.uint8 and e['label'].dtype == np.int32 for e in examples)
    assert {int(e['label']) for e in examples} == set(range(10))
    assert max(int(e['image'].max()) for e in examples) == 255


def test_real_mnist_test_split_resized(data_config, prepared_tfds_mnist):
    config = data_config(source='tfds', tfds_name='mnist', tfds_data_dir=prepared_tfds_mnist)
    test = get_source(config, resolution=32, split='test')
    assert len(test) == 10000
    assert test.image_shape == test[0]['image'].shape == (32, 32, 1)
