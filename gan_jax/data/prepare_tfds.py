"""Prepares a TFDS dataset from its original download files, for machines without internet.

TFDS skips downloading a file that already sits in its download folder under the name it would
have given it (beside an `.INFO` file), so the dataset can be prepared with no network:

    python -m gan_jax.data.prepare_tfds --name mnist --source_dir ../shared/data/mnist
"""

import argparse
import hashlib
import pathlib
import tempfile

import tensorflow_datasets as tfds
from tensorflow_datasets.core.download import resource


def prepare_offline(name: str, source_dir, data_dir=None) -> pathlib.Path:
    """Prepares `name` as array_record in `data_dir` from the original files in `source_dir`.

    `source_dir` holds the files under their published names (e.g. `train-images-idx3-ubyte.gz`
    for mnist). Returns the TFDS data_dir root that now holds the dataset.
    """
    builder = tfds.builder(name, data_dir=data_dir, file_format='array_record')
    source_dir = pathlib.Path(source_dir)
    url_infos = builder.url_infos or {}
    expected = sorted(info.filename for info in url_infos.values())
    missing = [f for f in expected if not (source_dir / f).is_file()]
    if not url_infos or missing:
        raise FileNotFoundError(
            f'Cannot prepare TFDS dataset {name!r} offline from {source_dir}: missing '
            f'{missing or "the list of download files in TFDS"}; expected the original '
            f'files {expected}.'
        )
    root = pathlib.Path(builder.data_dir_root)
    root.mkdir(parents=True, exist_ok=True)
    # The copies are only needed while preparing, so they go in a folder removed afterwards.
    with tempfile.TemporaryDirectory(dir=root, prefix='downloads-') as download_dir:
        for url, info in url_infos.items():
            target = pathlib.Path(download_dir, resource.get_dl_fname(url, info.checksum))
            _copy_verified(source_dir / info.filename, target, info.checksum)
            target.with_name(target.name + '.INFO').write_text('{}')
        builder.download_and_prepare(download_dir=download_dir)
    return root


def _copy_verified(source: pathlib.Path, target: pathlib.Path, sha256: str) -> None:
    """Copies `source` to `target`, failing if it is not the file TFDS registered.

    TFDS does not re-check files it finds already downloaded, so a wrong file would otherwise
    fail obscurely during extraction or, worse, prepare a wrong dataset.
    """
    digest = hashlib.sha256()
    with open(source, 'rb') as src, open(target, 'wb') as dst:
        while chunk := src.read(1 << 20):
            digest.update(chunk)
            dst.write(chunk)
    if digest.hexdigest() != sha256:
        raise ValueError(
            f'{source} is not the original file TFDS expects: sha256 {digest.hexdigest()}, '
            f'expected {sha256}.'
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--name', required=True, help='TFDS name, e.g. mnist or fashion_mnist')
    parser.add_argument('--source_dir', required=True, help='folder with the original files')
    parser.add_argument('--data_dir', default=None, help="TFDS data_dir (default: TFDS's own)")
    args = parser.parse_args()
    root = prepare_offline(args.name, args.source_dir, args.data_dir)
    print(f'Prepared {args.name} in {root}')


if __name__ == '__main__':
    main()
