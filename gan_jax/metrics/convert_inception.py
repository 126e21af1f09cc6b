"""Convert pytorch-fid's Inception weights to a NumPy .npz for gan_jax.metrics.inception.

FID scores are only comparable with published ones when computed with the exact
Inception weights of TF's `inception-2015-12-05` graph. gan_jax uses pytorch-fid's
port of them, the file pytorch-fid itself downloads (its `FID_WEIGHTS_URL`):

    https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth

Download it once and convert it (needs neither torch nor JAX):

    python -m gan_jax.metrics.convert_inception \
        --pth pt_inception-2015-12-05-6726825d.pth --out fid_inception.npz

then load the result with `gan_jax.metrics.inception.load_fid_inception('fid_inception.npz')`.

The .pth is read without executing pickled code: a restricted unpickler resolves only
the few globals a state_dict uses (OrderedDict, torch's tensor and parameter rebuild
functions and storage types, all mapped to local NumPy code) and refuses any other.
Both torch.save formats are read: the zip one (torch >= 1.6: `<dir>/data.pkl` plus raw
storages `<dir>/data/<key>`) and the older legacy stream (pickles followed by the raw
storages), since the published file predates the zip format's default.

The .npz holds one array per Flax variable, named by its path ('params/Mixed_5b/
branch1x1/conv/kernel', 'batch_stats/.../bn/mean'), with conv kernels transposed from
torch's OIHW to Flax's HWIO and the classifier's from [out, in] to [in, out]; plus
`source_sha256`, the SHA-256 of the .pth, so results can name the weights they used.
"""

import argparse
import collections
import hashlib
import io
import os
import pickle
import sys
import zipfile
from typing import NamedTuple

import numpy as np

FID_WEIGHTS_URL = (
    'https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/'
    'pt_inception-2015-12-05-6726825d.pth'
)
FID_WEIGHTS_FILENAME = 'pt_inception-2015-12-05-6726825d.pth'
SHA256_KEY = 'source_sha256'

# torch's storage classes as pickled in a state_dict, by the NumPy dtype of their data.
_STORAGE_DTYPES = {
    'FloatStorage': '<f4',
    'DoubleStorage': '<f8',
    'HalfStorage': '<f2',
    'LongStorage': '<i8',
    'IntStorage': '<i4',
}
# The legacy format starts with these two pickled ints (torch/serialization.py).
_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_LEGACY_PROTOCOL = 1001


class FIDWeightsNotFoundError(FileNotFoundError):
    """The FID Inception weights are missing; the message says how to get them."""


def missing_weights_message(path: str, what: str) -> str:
    """Where to get pytorch-fid's weights and how to convert them, for `path` not found."""
    npz = path if what == 'npz' else 'fid_inception.npz'
    return (
        f'FID Inception weights not found: {path!r}.\n'
        f"Download pytorch-fid's port of TF's inception-2015-12-05 weights from\n"
        f'  {FID_WEIGHTS_URL}\n'
        'and convert them once (needs neither torch nor JAX):\n'
        f'  python -m gan_jax.metrics.convert_inception --pth {FID_WEIGHTS_FILENAME} --out {npz}'
    )


class UnsafePickleError(pickle.UnpicklingError):
    """The .pth references a global that a plain state_dict never needs."""


# NamedTuples: immutable, so a pickle's BUILD opcode cannot alter them.
class _Storage(NamedTuple):
    """A storage named in the pickle; its bytes are read after unpickling."""

    key: str
    dtype: str
    numel: int


class _PendingTensor(NamedTuple):
    """A tensor view of a storage, materialised once the storage is read."""

    storage: _Storage
    offset: int
    shape: tuple
    stride: tuple

    def materialise(self, data: np.ndarray) -> np.ndarray:
        if any(s < 0 for s in self.stride) or self.offset < 0:
            raise ValueError('negative offset or stride in tensor metadata')
        if 0 in self.shape:
            return np.zeros(self.shape, data.dtype)
        last = self.offset + sum((n - 1) * s for n, s in zip(self.shape, self.stride, strict=True))
        if last >= data.size:
            raise ValueError(
                f'tensor of shape {self.shape} runs past its storage {self.storage.key!r}'
            )
        view = np.lib.stride_tricks.as_strided(
            data[self.offset :], self.shape, [s * data.itemsize for s in self.stride]
        )
        return np.array(view)  # A copy: never alias the (read-only) storage buffer.


class _StateDictUnpickler(pickle.Unpickler):
    """Unpickles a torch state_dict with every global mapped to local NumPy code.

    `find_class` is the only way a pickle reaches Python objects, so refusing all but
    an allow-list there is what keeps arbitrary code from running.
    """

    def __init__(self, file):
        super().__init__(file)
        self.storages: dict[str, _Storage] = {}

    def find_class(self, module, name):
        if (module, name) == ('collections', 'OrderedDict'):
            return collections.OrderedDict
        if (module, name) == ('torch._utils', '_rebuild_tensor_v2'):
            return self._rebuild_tensor  # A bound method: a pickle cannot modify it.
        if (module, name) == ('torch._utils', '_rebuild_parameter'):  # state_dict(keep_vars=True)
            return self._rebuild_parameter
        if module == 'torch' and name in _STORAGE_DTYPES:
            return _STORAGE_DTYPES[name]  # An immutable str; used only as a storage type tag.
        raise UnsafePickleError(f'refusing to load global {module}.{name} from a weights file')

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == 'storage'):
            raise UnsafePickleError(f'unexpected persistent id {pid!r}')
        _, dtype, key, _location, numel, *view = pid
        if dtype not in _STORAGE_DTYPES.values() or not isinstance(numel, int):
            raise UnsafePickleError(f'unexpected storage type {dtype!r}')
        if view and view[0] is not None:
            raise ValueError('storage views (torch < 0.4 files) are not supported')
        storage = _Storage(str(key), dtype, numel)
        if self.storages.setdefault(storage.key, storage) != storage:
            raise ValueError(f'storage {storage.key!r} declared twice with different types')
        return storage

    def _rebuild_tensor(self, storage, offset, shape, stride, *_grad_hooks_metadata):
        if not (isinstance(storage, _Storage) and self.storages.get(storage.key) is storage):
            raise UnsafePickleError('tensor built on something other than a declared storage')
        return _PendingTensor(storage, int(offset), tuple(map(int, shape)), tuple(map(int, stride)))

    def _rebuild_parameter(self, tensor, *_grad_hooks):
        if not isinstance(tensor, _PendingTensor):
            raise UnsafePickleError('parameter built on something other than a tensor')
        return tensor


def _storage_array(raw: bytes, storage: _Storage) -> np.ndarray:
    data = np.frombuffer(raw, storage.dtype)
    if data.size != storage.numel:
        raise ValueError(f'storage {storage.key!r}: {data.size} elements, expected {storage.numel}')
    return data


def _read_zip(path: str):
    with zipfile.ZipFile(path) as archive:
        pickles = [n for n in archive.namelist() if n.endswith('/data.pkl') or n == 'data.pkl']
        if len(pickles) != 1:
            raise ValueError(f'{path}: expected one data.pkl in the zip, found {pickles}')
        prefix = pickles[0][: -len('data.pkl')]
        if f'{prefix}byteorder' in archive.namelist():
            if archive.read(f'{prefix}byteorder').decode().strip() != 'little':
                raise ValueError(f'{path}: only little-endian weight files are supported')
        unpickler = _StateDictUnpickler(io.BytesIO(archive.read(pickles[0])))
        obj = unpickler.load()
        arrays = {
            key: _storage_array(archive.read(f'{prefix}data/{key}'), storage)
            for key, storage in unpickler.storages.items()
        }
    return obj, arrays


def _read_legacy(path: str):
    with open(path, 'rb') as f:
        if _StateDictUnpickler(f).load() != _LEGACY_MAGIC:
            raise ValueError(f'{path}: neither a zip nor a legacy torch.save file')
        if _StateDictUnpickler(f).load() != _LEGACY_PROTOCOL:
            raise ValueError(f'{path}: unknown legacy torch.save protocol')
        sys_info = _StateDictUnpickler(f).load()
        if not (isinstance(sys_info, dict) and sys_info.get('little_endian')):
            raise ValueError(f'{path}: only little-endian weight files are supported')
        unpickler = _StateDictUnpickler(f)
        obj = unpickler.load()
        keys = _StateDictUnpickler(f).load()
        arrays = {}
        for key in keys:  # Each storage: its element count (int64), then its bytes.
            storage = unpickler.storages[str(key)]
            numel = int(np.frombuffer(f.read(8), '<i8')[0])
            arrays[storage.key] = _storage_array(
                f.read(numel * np.dtype(storage.dtype).itemsize), storage
            )
    return obj, arrays


def read_state_dict(path: str) -> dict[str, np.ndarray]:
    """Reads a torch.save'd state_dict as {name: NumPy array}, never running pickled code."""
    if not os.path.exists(path):
        raise FIDWeightsNotFoundError(missing_weights_message(path, 'pth'))
    obj, arrays = (_read_zip if zipfile.is_zipfile(path) else _read_legacy)(path)
    if not isinstance(obj, dict) or not all(
        isinstance(k, str) and isinstance(v, _PendingTensor) for k, v in obj.items()
    ):
        raise ValueError(f'{path}: not a state_dict of tensors')
    return {name: t.materialise(arrays[t.storage.key]) for name, t in obj.items()}


def flax_variables(state_dict: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Renames torchvision-style keys to Flax variable paths and transposes kernels.

    The Flax modules are named like torchvision's, so only the leaf changes:
    conv/fc `weight` -> `kernel`, BN `weight`/`bias` -> `scale`/`bias` and BN running
    statistics -> the `batch_stats` collection. `num_batches_tracked` is training-only.
    """
    out = {}
    for name, value in state_dict.items():
        *modules, leaf = name.split('.')
        scope = '/'.join(modules)
        if leaf == 'num_batches_tracked':
            continue
        if leaf == 'weight' and value.ndim == 4:  # Conv: OIHW -> HWIO.
            out[f'params/{scope}/kernel'] = value.transpose(2, 3, 1, 0)
        elif leaf == 'weight' and value.ndim == 2:  # Linear: [out, in] -> [in, out].
            out[f'params/{scope}/kernel'] = value.T
        elif leaf in ('weight', 'bias'):
            out[f'params/{scope}/{"scale" if leaf == "weight" else "bias"}'] = value
        elif leaf in ('running_mean', 'running_var'):
            out[f'batch_stats/{scope}/{leaf.removeprefix("running_")}'] = value
        else:
            raise ValueError(f'unexpected entry {name!r} in the Inception state_dict')
    return {k: np.ascontiguousarray(v, np.float32) for k, v in out.items()}


def sha256_file(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def convert(pth: str, out: str) -> str:
    """Writes `out` (.npz of Flax variables and the source's SHA-256); returns that SHA-256."""
    arrays = flax_variables(read_state_dict(pth))
    sha256 = sha256_file(pth)
    with open(out, 'wb') as f:  # A file object: np.savez would otherwise append ".npz".
        np.savez(f, **arrays, **{SHA256_KEY: np.array(sha256)})
    return sha256


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--pth', required=True, help=f"pytorch-fid's {FID_WEIGHTS_FILENAME}")
    parser.add_argument('--out', required=True, help='the .npz to write, e.g. fid_inception.npz')
    args = parser.parse_args(argv)
    try:
        sha256 = convert(args.pth, args.out)
    except FIDWeightsNotFoundError as e:
        sys.exit(str(e))
    print(f'wrote {args.out} from {args.pth} (sha256 {sha256})')


if __name__ == '__main__':
    main()
