"""Run outputs: metrics.jsonl, TensorBoard events, sample-grid PNGs and a progress bar.

TensorBoard event files are written with the ``tensorboard`` package's record
writer over a plain file: its EventFileWriter would import TensorFlow when it is
installed, which costs seconds and memory in every run. Only process 0 writes
(``enabled=False`` elsewhere).
"""

import io
import json
import math
import os
import socket
import sys
import time

import numpy as np
from PIL import Image
from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.summary.writer.record_writer import RecordWriter


def image_grid(images, ncols=None, pad=2, pad_value=128):
    """Tiles uint8 NHWC images into one HWC image, ``ncols`` per row (default: square).

    Cells are separated by ``pad`` pixels of ``pad_value`` (grey), so that dark
    image borders do not merge into stripes.
    """
    n, h, w, c = images.shape
    ncols = ncols or math.ceil(math.sqrt(n))
    nrows = math.ceil(n / ncols)
    grid = np.full((nrows * (h + pad) + pad, ncols * (w + pad) + pad, c), pad_value, np.uint8)
    for i, image in enumerate(images):
        r, col = divmod(i, ncols)
        top, left = pad + r * (h + pad), pad + col * (w + pad)
        grid[top : top + h, left : left + w] = image
    return grid


def scatter_image(points, extent, size=256):
    """2-D samples [N, 2] as a white size x size image with a black pixel per sample.

    The view is the square [-extent, extent]^2 (y up), fixed for a run so that
    grids from different steps compare; samples outside it are dropped.
    """
    image = np.full((size, size, 1), 255, np.uint8)
    cells = np.floor((np.asarray(points) + extent) / (2 * extent) * size).astype(int)
    inside = np.all((cells >= 0) & (cells < size), axis=1)
    x, y = cells[inside].T
    image[size - 1 - y, x] = 0
    return image


def _png_bytes(image):
    buffer = io.BytesIO()
    Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(buffer, 'PNG')
    return buffer.getvalue()


def save_png(path, image):
    """One uint8 HWC image as a PNG (grey for one channel), making its folder if needed."""
    os.makedirs(os.path.dirname(path) or '.', exist_ok=True)
    with open(path, 'wb') as f:
        f.write(_png_bytes(image))


class MetricWriter:
    """Appends scalars to ``metrics.jsonl`` and writes scalars and images to TensorBoard."""

    def __init__(self, workdir, enabled=True):
        self.enabled = enabled
        if not enabled:
            return
        self._jsonl = open(os.path.join(workdir, 'metrics.jsonl'), 'a')
        events_dir = os.path.join(workdir, 'tensorboard')
        os.makedirs(events_dir, exist_ok=True)
        # TensorBoard's naming; a resumed run appends a new file beside the old ones.
        name = f'events.out.tfevents.{time.time():.6f}.{socket.gethostname()}.{os.getpid()}'
        self._events = RecordWriter(open(os.path.join(events_dir, name), 'wb'))
        self._write_event(event_pb2.Event(wall_time=time.time(), file_version='brain.Event:2'))

    def _write_event(self, event):
        self._events.write(event.SerializeToString())

    def _add(self, step, values):
        self._write_event(
            event_pb2.Event(
                wall_time=time.time(), step=int(step), summary=summary_pb2.Summary(value=values)
            )
        )

    def write_scalars(self, step, scalars):
        if not self.enabled:
            return
        scalars = {k: float(v) for k, v in scalars.items()}
        self._jsonl.write(json.dumps({'step': int(step), **scalars}) + '\n')
        self._jsonl.flush()
        self._add(
            step, [summary_pb2.Summary.Value(tag=k, simple_value=v) for k, v in scalars.items()]
        )

    def write_image(self, step, tag, image):
        """``image``: uint8 HWC."""
        if not self.enabled:
            return
        h, w, c = image.shape
        encoded = summary_pb2.Summary.Image(
            height=h, width=w, colorspace=c, encoded_image_string=_png_bytes(image)
        )
        self._add(step, [summary_pb2.Summary.Value(tag=tag, image=encoded)])

    def close(self):
        if self.enabled:
            self._jsonl.close()
            self._events.close()


def _duration(seconds):
    seconds = int(seconds)
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f'{h}h{m:02d}m{s:02d}s' if h else f'{m}m{s:02d}s'


class ProgressBar:
    """One status line: step (or another ``unit``), it/s, img/s, ETA and the latest losses.

    Rates are measured between consecutive updates, so they exclude compilation
    once the first update has been shown.
    """

    def __init__(self, total_steps, batch_size, enabled=True, stream=sys.stderr, unit='step'):
        self.total_steps, self.batch_size, self.unit = total_steps, batch_size, unit
        self.enabled, self.stream = enabled, stream
        self._last = None  # (step, time) of the previous update.
        self.steps_per_sec = None

    def update(self, step, scalars):
        now = time.perf_counter()
        if self._last is not None and step > self._last[0]:
            self.steps_per_sec = (step - self._last[0]) / (now - self._last[1])
        self._last = (step, now)
        if not self.enabled:
            return
        parts = [f'{self.unit} {step}/{self.total_steps}']
        if self.steps_per_sec:
            remaining = (self.total_steps - step) / self.steps_per_sec
            parts += [
                f'{self.steps_per_sec:.2f} it/s',
                f'{self.steps_per_sec * self.batch_size:.1f} img/s',
                f'ETA {_duration(remaining)}',
            ]
        parts += [f'{k} {v:.4f}' for k, v in sorted(scalars.items())]
        end = '\r' if self.stream.isatty() and step < self.total_steps else '\n'
        print(' | '.join(parts), end=end, file=self.stream, flush=True)
