import numpy as np
import pytest
from PIL import Image

from gan_jax.data import get_source


def _save(path, array, **save_args):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, **save_args)


@pytest.fixture
def class_folder(tmp_path):
    """cats/ (label 0) and dogs/ (label 1), odd sizes, RGB and grey, PNG and JPEG."""
    rng = np.random.default_rng(0)
    wide = np.zeros((10, 30, 3), np.uint8)
    wide[:, 10:20] = (0, 255, 0)
    wide[:, :10] = wide[:, 20:] = (255, 0, 0)
    _save(tmp_path / 'cats' / 'a_wide.png', wide)
    _save(tmp_path / 'cats' / 'b_grey.jpg', rng.integers(0, 256, (17, 23), dtype=np.uint8))
    _save(tmp_path / 'dogs' / 'c.jpeg', rng.integers(0, 256, (40, 31, 3), dtype=np.uint8))
    _save(tmp_path / 'dogs' / 'deeper' / 'd.PNG', rng.integers(0, 256, (9, 9), dtype=np.uint8))
    (tmp_path / 'dogs' / 'notes.txt').write_text('not an image')
    return tmp_path


def test_class_subfolders_give_labels(data_config, class_folder):
    source = get_source(data_config(source='folder', path=str(class_folder)), resolution=10)
    assert len(source) == 4 and source.num_classes == 2
    assert [int(source[i]['label']) for i in range(4)] == [0, 0, 1, 1]
    for i in range(4):
        assert source[i]['image'].shape == source.image_shape == (10, 10, 3)
        assert source[i]['image'].dtype == np.uint8


def test_center_crop_removes_side_borders(data_config, class_folder):
    source = get_source(data_config(source='folder', path=str(class_folder)), resolution=10)
    image = source[0]['image']  # cats/a_wide.png: red | green | red
    assert (image == (0, 255, 0)).all()


def test_grey_channel_option(data_config, class_folder):
    source = get_source(
        data_config(source='folder', path=str(class_folder), channels=1), resolution=7
    )
    assert source.image_shape == source[2]['image'].shape == (7, 7, 1)


def test_images_at_top_level_are_unlabelled(data_config, tmp_path):
    _save(tmp_path / 'x.png', np.zeros((5, 5, 3), np.uint8))
    _save(tmp_path / 'sub' / 'y.png', np.zeros((5, 5, 3), np.uint8))
    source = get_source(data_config(source='folder', path=str(tmp_path)), resolution=4)
    assert source.num_classes is None
    assert [int(source[i]['label']) for i in range(2)] == [0, 0]


def test_empty_folder_error(data_config, tmp_path):
    (tmp_path / 'readme.txt').write_text('no images')
    with pytest.raises(FileNotFoundError, match=r'No images \(\.png, \.jpg, \.jpeg\) under'):
        get_source(data_config(source='folder', path=str(tmp_path)), resolution=4)


def test_missing_folder_error(data_config, tmp_path):
    missing = str(tmp_path / 'nowhere')
    with pytest.raises(FileNotFoundError, match='nowhere'):
        get_source(data_config(source='folder', path=missing), resolution=4)
