"""Sample grids, metrics.jsonl, TensorBoard events and the progress bar."""

import io
import json

import numpy as np
from tensorboard.backend.event_processing.event_file_loader import LegacyEventFileLoader

from gan_jax import logging as log_lib


def test_image_grid_places_images_row_major():
    images = np.stack([np.full((2, 3, 1), 10 + i, np.uint8) for i in range(5)])
    grid = log_lib.image_grid(images, ncols=3, pad=1, pad_value=0)
    assert grid.shape == (2 * 3 + 1, 3 * 4 + 1, 1)
    # Cell (row, col) starts at (1 + 3 * row, 1 + 4 * col).
    assert grid[1, 1, 0] == 10 and grid[1, 5, 0] == 11 and grid[4, 1, 0] == 13
    assert grid[5, 7, 0] == 14 and grid[4, 9, 0] == 0  # The sixth cell is empty.
    assert grid[0, :, 0].max() == 0 and grid[:, 4, 0].max() == 0  # Padding.


def test_metric_writer_writes_jsonl_and_events(tmp_path):
    writer = log_lib.MetricWriter(str(tmp_path))
    writer.write_scalars(10, {'d_loss': np.float32(1.5)})
    writer.write_image(10, 'samples', np.zeros((4, 6, 3), np.uint8))
    writer.close()
    lines = (tmp_path / 'metrics.jsonl').read_text().splitlines()
    assert [json.loads(l) for l in lines] == [{'step': 10, 'd_loss': 1.5}]
    [events_file] = (tmp_path / 'tensorboard').iterdir()
    values = [
        v for event in LegacyEventFileLoader(str(events_file)).Load() for v in event.summary.value
    ]
    assert values[0].tag == 'd_loss' and values[0].simple_value == 1.5
    assert values[1].tag == 'samples' and values[1].image.width == 6


def test_a_resumed_run_appends_to_metrics_jsonl(tmp_path):
    for step in (10, 20):  # Two stretches of one run, the second after a resume.
        writer = log_lib.MetricWriter(str(tmp_path))
        writer.write_scalars(step, {'d_loss': float(step)})
        writer.close()
    lines = (tmp_path / 'metrics.jsonl').read_text().splitlines()
    assert [json.loads(l) for l in lines] == [
        {'step': 10, 'd_loss': 10.0},
        {'step': 20, 'd_loss': 20.0},
    ]
    assert len(list((tmp_path / 'tensorboard').iterdir())) == 2  # A new events file beside.


def test_disabled_writer_writes_nothing(tmp_path):
    log_lib.MetricWriter(str(tmp_path), enabled=False).write_scalars(1, {'a': 1.0})
    assert list(tmp_path.iterdir()) == []


def test_progress_bar_reports_rates_and_eta():
    stream = io.StringIO()
    bar = log_lib.ProgressBar(total_steps=100, batch_size=64, stream=stream)
    bar.update(10, {'d_loss': 1.0})
    bar._last = (10, bar._last[1] - 2.0)  # Pretend the next 10 steps take 2 s.
    bar.update(20, {'d_loss': 0.5, 'g_loss': 2.0})
    line = stream.getvalue().splitlines()[-1]
    assert bar.steps_per_sec is not None and 4.9 < bar.steps_per_sec < 5.1
    assert 'step 20/100' in line and 'img/s' in line and 'ETA 0m16s' in line
    assert 'd_loss 0.5000' in line and 'g_loss 2.0000' in line
