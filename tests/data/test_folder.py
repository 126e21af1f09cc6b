import io

import numpy as np
import pytest
from PIL import Image

from gan_jax.data import folder, get_source, make_train_iterator
from gan_jax.data.folder import CorruptImageError
from tests import helpers


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


def test_unreadable_files_stop_the_source_naming_them(data_config, tmp_path):
    bad = helpers.corrupt_folder(tmp_path)
    with pytest.raises(CorruptImageError) as error:
        get_source(data_config(source='folder', path=str(tmp_path)), resolution=8)
    message = str(error.value)
    assert message.startswith(f'2 of 6 image files under {tmp_path} cannot be read:')
    assert all(str(path) in message for path in bad)
    assert 'data.skip_corrupt=True' in message
    assert 'good_' not in message


def test_skip_corrupt_leaves_them_out_and_logs_them(data_config, tmp_path, caplog):
    bad = helpers.corrupt_folder(tmp_path)
    config = data_config(source='folder', path=str(tmp_path), skip_corrupt=True)
    source = get_source(config, resolution=8)
    assert len(source) == 4 and source.skipped == bad
    for i in range(4):  # good_00 ... good_03, in order.
        expected = np.asarray(
            Image.open(io.BytesIO(helpers.png_bytes(i))).resize((8, 8), Image.LANCZOS)
        )
        np.testing.assert_array_equal(source[i]['image'], expected)
    (record,) = [r for r in caplog.records if 'data.skip_corrupt=True' in r.getMessage()]
    assert record.levelname == 'WARNING'
    assert f'Skipped 2 of 6 image files under {tmp_path}' in record.getMessage()
    assert all(str(path) in record.getMessage() for path in bad)


def test_only_the_first_few_unreadable_files_are_named(data_config, tmp_path):
    for i in range(folder.NAMED_CORRUPT + 3):
        (tmp_path / f'bad_{i:02d}.jpg').write_bytes(b'\xff\xd8 no more')
    (tmp_path / 'good.png').write_bytes(helpers.png_bytes(0))
    with pytest.raises(CorruptImageError) as error:
        get_source(data_config(source='folder', path=str(tmp_path)), resolution=8)
    message = str(error.value)
    assert 'bad_04.jpg' in message and 'bad_05.jpg' not in message
    assert message.rstrip().splitlines()[-2] == '  ... and 3 more'


def test_skipping_every_file_leaves_nothing_and_says_so(data_config, tmp_path):
    (tmp_path / 'caption.png').write_text('a caption, not pixels')
    config = data_config(source='folder', path=str(tmp_path), skip_corrupt=True)
    with pytest.raises(CorruptImageError) as error:
        get_source(config, resolution=8)
    message = str(error.value)
    assert message.startswith(f'None of the 1 image files under {tmp_path} can be read')
    assert f'{tmp_path / "caption.png"}: ' in message


def test_a_jpeg_cut_inside_its_pixels_fails_when_read_naming_it(data_config, tmp_path):
    # PIL's verify reads a JPEG's markers, not its pixel data: this one passes the start-up
    # check, and the pipeline's error names it.
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), np.uint8)).save(
        buffer, format='JPEG'
    )
    (tmp_path / 'cut.jpg').write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    source = get_source(data_config(source='folder', path=str(tmp_path)), resolution=8)
    iterator = make_train_iterator(
        source, global_batch=1, batches_per_step=1, seed=0, num_threads=1
    )
    with pytest.raises(Exception, match=f'{tmp_path / "cut.jpg"} cannot be decoded'):
        next(iterator)
