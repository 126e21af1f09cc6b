"""FID Inception: the safe .pth converter, the weights loader and parity with pytorch-fid.

The parity tests build pytorch-fid's own model (requirements-parity.txt) with seeded
random weights, convert them through the .pth reader and compare outputs. They skip
where torch / pytorch-fid are not installed; the converter's refusal of unsafe
pickles, the missing-weights error and the preprocessing range run everywhere.

Largest differences measured (max |jax - torch| / max |torch|, batch of 2, CPU):
  32x32 input:   pool 3.7e-7, logits 6.5e-7
  299x299 input: pool 4.1e-7, logits 7.2e-7
"""

import functools
import importlib
import os
import pickle
import zipfile

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax.metrics import convert_inception
from gan_jax.metrics.inception import fid_inception_apply, load_fid_inception, preprocess

TOLERANCE = 1e-4  # On max |jax - torch| / max |torch|, per output.


@functools.cache
def _declare_torchvision_ops(torch):
    """Declares the two ops torchvision's import registers fake kernels for.

    PyPI's torchvision 0.28.0 is built against the CUDA torch 2.13.0: beside the CPU
    wheel its C extension does not load, and `import torchvision` then fails with
    "operator torchvision::nms does not exist". pytorch-fid needs only torchvision's
    pure-Python Inception blocks, so declaring the schemas is enough. Cached so the
    returned library, which owns the declarations, stays alive.
    """
    library = torch.library.Library('torchvision', 'DEF')
    for op in ('nms', 'qnms'):
        library.define(f'{op}(Tensor dets, Tensor scores, float iou_threshold) -> Tensor')
    return library


def _pytorch_fid_inception():
    """pytorch_fid.inception, or a skip where torch, torchvision or pytorch-fid is missing."""
    torch = pytest.importorskip('torch')
    pytest.importorskip('pytorch_fid')
    try:
        importlib.import_module('torchvision')
    except ImportError:
        pytest.skip('torchvision (needed by pytorch-fid) is not installed')
    except RuntimeError as e:
        if 'torchvision::' not in str(e):
            raise
        _declare_torchvision_ops(torch)
        importlib.import_module('torchvision')
    return importlib.import_module('pytorch_fid.inception')


def _randomise(torch, model, seed=0):
    """Seeded weights that keep activations O(1-10): He-normal kernels, BN scales in
    [0.5, 1.5), small biases, nonzero running means and positive running variances."""
    generator = torch.Generator().manual_seed(seed)
    normal = lambda shape, std: torch.randn(shape, generator=generator) * std  # noqa: E731
    uniform = lambda shape: torch.rand(shape, generator=generator) + 0.5  # noqa: E731
    with torch.no_grad():
        for name, value in model.state_dict().items():
            if name.endswith('.weight') and value.ndim > 1:
                value.copy_(normal(value.shape, (2.0 / value[0].numel()) ** 0.5))
            elif name.endswith(('.bias', '.running_mean')):
                value.copy_(normal(value.shape, 0.1))
            elif name.endswith(('.weight', '.running_var')):
                value.copy_(uniform(value.shape))


@pytest.fixture(scope='module')
def reference(tmp_path_factory):
    """pytorch-fid's InceptionV3 wrapper and its full Inception net (sharing layers),
    with random weights saved as a zip-format .pth."""
    fid = _pytorch_fid_inception()
    import torch

    # fid_inception_v3() downloads the real weights; instead capture the net it builds
    # and hand it its own state_dict, so nothing is fetched and no code is stubbed out.
    built = []
    build_inception = fid._inception_v3

    def capture(*args, **kwargs):
        built.append(build_inception(*args, **kwargs))
        return built[-1]

    patch = pytest.MonkeyPatch()
    patch.setattr(fid, '_inception_v3', capture)
    patch.setattr(fid, 'load_state_dict_from_url', lambda *args, **kwargs: built[-1].state_dict())
    try:
        wrapper = fid.InceptionV3(
            [3], resize_input=True, normalize_input=True, use_fid_inception=True
        )
    finally:
        patch.undo()
    net = built[-1]
    _randomise(torch, net)
    pth = tmp_path_factory.mktemp('inception') / 'random_fid_inception.pth'
    torch.save(net.state_dict(), pth)
    return torch, wrapper.eval(), net.eval(), pth


@pytest.mark.parametrize(
    'zip_format, keep_vars', [(True, False), (False, True)], ids=['zip', 'legacy-parameters']
)
def test_reader_returns_the_saved_tensors(reference, tmp_path, zip_format, keep_vars):
    torch, _, net, _ = reference
    pth = tmp_path / 'weights.pth'
    torch.save(net.state_dict(keep_vars=keep_vars), pth, _use_new_zipfile_serialization=zip_format)
    arrays = convert_inception.read_state_dict(str(pth))
    expected = {k: v.numpy() for k, v in net.state_dict().items()}
    assert arrays.keys() == expected.keys()
    for name, value in expected.items():
        assert arrays[name].dtype == value.dtype and np.array_equal(arrays[name], value), name
    variables = convert_inception.flax_variables(arrays)
    np.testing.assert_array_equal(  # OIHW -> HWIO
        variables['params/Mixed_6b/branch7x7_2/conv/kernel'],
        expected['Mixed_6b.branch7x7_2.conv.weight'].transpose(2, 3, 1, 0),
    )
    np.testing.assert_array_equal(
        variables['batch_stats/Mixed_7c/branch_pool/bn/var'],
        expected['Mixed_7c.branch_pool.bn.running_var'],
    )


@pytest.fixture(scope='module')
def converted(reference, tmp_path_factory):
    """The random weights converted by the command-line entry point, then loaded."""
    pth = reference[3]
    out = tmp_path_factory.mktemp('npz') / 'fid_inception.npz'
    convert_inception.main(['--pth', str(pth), '--out', str(out)])
    return out, load_fid_inception(str(out))


@pytest.mark.slow
def test_parity_with_pytorch_fid(reference, converted):
    torch, wrapper, net, pth = reference
    _, (variables, sha256) = converted
    assert sha256 == convert_inception.sha256_file(str(pth))
    apply = jax.jit(fid_inception_apply)
    rng = np.random.default_rng(0)
    for size in (32, 299):
        images = rng.integers(0, 256, (2, size, size, 3), dtype=np.uint8)
        with torch.no_grad():  # pytorch-fid takes NCHW in [0, 1]; the net ends avgpool -> fc.
            pool = wrapper(torch.from_numpy(images).permute(0, 3, 1, 2) / 255.0)[0].flatten(1)
            expected = {
                'pool': pool.numpy(),
                'logits': net.fc(pool).numpy(),
                # The Inception Score's input: pool3 times the weights, no bias.
                'logits_unbiased': (pool @ net.fc.weight.T).numpy(),
            }
            assert float(net.fc.bias.abs().max()) > 1e-3  # So the two differ.
        got = apply(variables, jnp.asarray(images))
        for key, want in expected.items():
            assert got[key].shape == want.shape
            error = np.abs(np.asarray(got[key]) - want).max() / np.abs(want).max()
            assert error < TOLERANCE, f'{size}x{size} {key}: relative error {error:.2e}'


@pytest.mark.parametrize('shape', [(32, 32), (299, 299), (64, 48), (500, 400)])
def test_preprocess_matches_torch_bilinear(shape):
    _pytorch_fid_inception()
    import torch
    import torch.nn.functional as F

    images = np.random.default_rng(1).integers(0, 256, (2, *shape, 3), dtype=np.uint8)
    x = torch.from_numpy(images).permute(0, 3, 1, 2) / 255.0
    want = 2 * F.interpolate(x, size=(299, 299), mode='bilinear', align_corners=False) - 1
    got = np.asarray(preprocess(jnp.asarray(images)))
    np.testing.assert_allclose(got, want.permute(0, 2, 3, 1).numpy(), rtol=0, atol=1e-6)


def test_loader_rejects_other_variables(converted, tmp_path):
    npz, _ = converted
    with np.load(npz) as data:
        arrays = {k: data[k] for k in data.files if k != 'params/fc/bias'}
    broken = tmp_path / 'broken.npz'
    np.savez(broken, **arrays)
    with pytest.raises(ValueError, match='missing .*params/fc/bias'):
        load_fid_inception(str(broken))


def test_preprocess_range_and_dtype():
    images = jnp.array([[[[0, 255, 128]]]], jnp.uint8).repeat(299, 1).repeat(299, 2)
    x = preprocess(images)
    assert x.shape == (1, 299, 299, 3) and x.dtype == jnp.float32
    np.testing.assert_allclose(x[0, 0, 0], [-1.0, 1.0, 2 * 128 / 255 - 1], atol=1e-6)
    with pytest.raises(TypeError, match='uint8'):
        preprocess(images.astype(jnp.float32))


class _RunsShell:
    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


def test_reader_refuses_pickled_code(tmp_path):
    marker = tmp_path / 'pwned'
    pth = tmp_path / 'evil.pth'
    with zipfile.ZipFile(pth, 'w') as archive:
        archive.writestr('evil/data.pkl', pickle.dumps({'w': _RunsShell(f'touch {marker}')}))
    with pytest.raises(convert_inception.UnsafePickleError, match='system'):
        convert_inception.read_state_dict(str(pth))
    legacy = tmp_path / 'evil_legacy.pth'
    legacy.write_bytes(pickle.dumps(_RunsShell(f'touch {marker}')))
    with pytest.raises(convert_inception.UnsafePickleError, match='system'):
        convert_inception.read_state_dict(str(legacy))
    assert not marker.exists()


def test_missing_weights_say_where_to_get_them(tmp_path):
    for load in (load_fid_inception, convert_inception.read_state_dict):
        with pytest.raises(FileNotFoundError) as info:
            load(str(tmp_path / 'absent'))
        assert isinstance(info.value, convert_inception.FIDWeightsNotFoundError)
        assert convert_inception.FID_WEIGHTS_URL in str(info.value)
        assert 'python -m gan_jax.metrics.convert_inception --pth' in str(info.value)


def test_the_inception_score_reads_the_unbiased_logits(converted):
    from gan_jax.metrics import extractors

    path, (variables, _) = converted
    extractor = extractors.get_extractor('inception', inception_weights=str(path))
    images = jnp.asarray(np.random.default_rng(1).integers(0, 256, (2, 32, 32, 3), np.uint8))
    got = extractor.apply(extractor.variables, images)
    full = fid_inception_apply(variables, images)
    np.testing.assert_array_equal(got['logits'], full['logits_unbiased'])
    assert 'without the bias' in extractor.logits
