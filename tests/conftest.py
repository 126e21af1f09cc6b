"""Shared fixtures: the real datasets in the shared data folder (skipped when absent), a small
tmpfs (skipped where it cannot be mounted)."""

import os
import pathlib
import subprocess

import pytest

REPO = pathlib.Path(__file__).resolve().parent.parent


@pytest.fixture(scope='session')
def shared_data_dir() -> pathlib.Path:
    """The shared real-data folder: env GAN_JAX_SHARED_DATA, default <repo>/../shared/data."""
    return pathlib.Path(os.environ.get('GAN_JAX_SHARED_DATA', REPO.parent / 'shared' / 'data'))


@pytest.fixture(scope='session')
def prepared_tfds_mnist(shared_data_dir, tmp_path_factory) -> str:
    """A TFDS data_dir holding MNIST prepared offline from the shared files, once per session.

    Set GAN_JAX_TFDS_CACHE to a folder to keep the prepared dataset across sessions.
    """
    source_dir = shared_data_dir / 'mnist'
    if not source_dir.is_dir():
        pytest.skip(f'real MNIST files not found in {source_dir} (set GAN_JAX_SHARED_DATA)')
    import tensorflow_datasets as tfds  # Only sessions that use real data pay for these imports.

    from gan_jax.data.prepare_tfds import prepare_offline

    data_dir = os.environ.get('GAN_JAX_TFDS_CACHE') or str(tmp_path_factory.mktemp('tfds'))
    if not tfds.builder('mnist', data_dir=data_dir, file_format='array_record').is_prepared():
        prepare_offline('mnist', source_dir, data_dir)
    return data_dir


@pytest.fixture
def small_tmpfs(tmp_path):
    """A 4 MiB tmpfs, so a disk really fills up; skipped where it cannot be mounted (it
    needs root, or CAP_SYS_ADMIN in a container)."""
    mount_point = tmp_path / 'tmpfs'
    mount_point.mkdir()
    if os.geteuid() != 0:
        pytest.skip('mounting a tmpfs needs root')
    run = subprocess.run(
        ['mount', '-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', str(mount_point)],
        capture_output=True,
        text=True,
    )
    if run.returncode:
        pytest.skip(f'cannot mount a tmpfs: {run.stderr.strip()}')
    yield mount_point
    subprocess.run(['umount', '--lazy', str(mount_point)], check=True)
