"""DiffAugment and ADA: exact geometry, formulas against numpy, draw distributions,
per-example keys, gradients and the p heuristic."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax import augment

POLICY = ('color', 'translation', 'cutout')
# A few shared shapes, so that each jitted function compiles once or twice.
BATCH = 32
RGB = (BATCH, 8, 8, 3)
GREY = (BATCH, 8, 8, 1)
OP_SHAPE = (64, 16, 16, 1)  # DiffAugment ops on their own.
# Jitted once, with p traced, for the tests of the whole pipeline.
ada_jit = jax.jit(augment.ada_augment)
AUGMENTERS = {
    'diffaugment': lambda x, keys: augment.diffaugment(x, keys, POLICY),
    'ada': lambda x, keys: ada_jit(x, keys, jnp.float32(1.0)),
}
# Statistical checks allow 5.5 standard errors: a false failure has probability < 1e-7.
Z = 5.5
N_DRAWS = 20000


def _keys(n, seed=0):
    return jax.random.split(jax.random.key(seed), n)


def _images(shape, seed=0):
    """numpy, not jax.random: nothing to compile per shape."""
    return np.random.default_rng(seed).uniform(-1.0, 1.0, shape).astype(np.float32)


def _shifted(image, dy, dx):
    """numpy reference: content moved down dy, right dx, zero fill."""
    out = np.zeros_like(image)
    height, width = image.shape[:2]
    src = image[max(0, -dy) : height - max(0, dy), max(0, -dx) : width - max(0, dx)]
    out[max(0, dy) : max(0, dy) + src.shape[0], max(0, dx) : max(0, dx) + src.shape[1]] = src
    return out


# --- DiffAugment -----------------------------------------------------------------


def test_empty_policy_is_identity():
    x = _images(RGB)
    np.testing.assert_array_equal(augment.diffaugment(x, _keys(BATCH), ()), x)


def test_check_policy_names_the_bad_op_and_the_valid_ones():
    augment.check_policy(POLICY)
    with pytest.raises(ValueError, match=r"'colour'.*color, translation, cutout, flip"):
        augment.check_policy(('translation', 'colour'))
    with pytest.raises(ValueError, match='string'):
        augment.check_policy('color,translation')


def test_colour_helpers_match_numpy():
    x = _images(RGB)
    delta = np.linspace(-0.5, 0.5, BATCH, dtype=np.float32)
    factor = np.linspace(0.0, 2.0, BATCH, dtype=np.float32)
    brightness, saturation, contrast = jax.jit(
        lambda x, d, f: (
            augment.shift_brightness(x, d),
            augment.scale_saturation(x, f),
            augment.scale_contrast(x, f),
        )
    )(x, delta, factor)
    b = factor[:, None, None, None]
    np.testing.assert_allclose(brightness, x + delta[:, None, None, None], atol=1e-6)
    pixel_mean = x.mean(axis=3, keepdims=True)
    np.testing.assert_allclose(saturation, pixel_mean + b * (x - pixel_mean), atol=1e-6)
    image_mean = x.mean(axis=(1, 2, 3), keepdims=True)
    np.testing.assert_allclose(contrast, image_mean + b * (x - image_mean), atol=1e-6)


def test_translate_is_a_zero_filled_roll():
    x = _images(OP_SHAPE)
    fixed = [(0, 0), (3, -2), (-5, 7), (1, 1), (16, 0), (0, -16), (-15, 15)]
    shifts = np.concatenate([fixed, np.random.default_rng(0).integers(-9, 10, (57, 2))])
    out = np.asarray(augment.translate(x, jnp.asarray(shifts)))
    for image, result, (dy, dx) in zip(x, out, shifts):
        np.testing.assert_array_equal(result, _shifted(image, dy, dx))


def test_random_translation_shifts_by_at_most_an_eighth():
    x = _images(OP_SHAPE)
    out = np.asarray(augment.DIFFAUGMENT_OPS['translation'](x, _keys(64)))
    shifts = []
    for image, result in zip(x, out):
        found = [
            (dy, dx)
            for dy in range(-2, 3)
            for dx in range(-2, 3)
            if np.array_equal(result, _shifted(image, dy, dx))
        ]
        assert len(found) == 1  # Within [-2, 2]^2 (16 / 8 = 2), and unambiguous.
        shifts.append(found[0])
    shifts = np.array(shifts)
    # P(no |shift| = 2 on an axis in 64 draws) = 0.6^64 < 1e-14.
    assert np.abs(shifts).max(axis=0).tolist() == [2, 2]
    assert len({tuple(s) for s in shifts}) > 5


def test_random_flip_mirrors_about_half_of_the_images():
    x = _images(OP_SHAPE)
    out = np.asarray(augment.DIFFAUGMENT_OPS['flip'](x, _keys(len(x))))
    flipped = np.array([np.array_equal(o, i[:, ::-1]) for o, i in zip(out, x)])
    kept = np.array([np.array_equal(o, i) for o, i in zip(out, x)])
    assert np.all(flipped ^ kept)  # Every image is exactly one of the two.
    # 64 fair coins: between 12 and 52 heads except with probability < 1e-6.
    assert 12 <= flipped.sum() <= 52


def test_cutout_zeroes_the_expected_square():
    cases = [  # (centre, rows, cols) of the 8 x 8 square in a 16 x 16 image.
        ((8, 8), (4, 12), (4, 12)),  # Interior: the full square.
        ((5, 10), (1, 9), (6, 14)),
        ((0, 0), (0, 4), (0, 4)),  # Clipped at the borders.
        ((16, 3), (12, 16), (0, 7)),
    ]
    x = _images(OP_SHAPE) + 2.0  # No zeros of its own.
    centres = np.zeros((OP_SHAPE[0], 2), np.int32)
    centres[: len(cases)] = [centre for centre, _, _ in cases]
    out = np.asarray(augment.cutout(x, jnp.asarray(centres)))
    for image, result, (_, rows, cols) in zip(x, out, cases):
        expected = image.copy()
        expected[rows[0] : rows[1], cols[0] : cols[1]] = 0.0
        np.testing.assert_array_equal(result, expected)


def test_random_cutout_is_a_half_size_square_clipped_at_borders():
    out = np.asarray(augment.DIFFAUGMENT_OPS['cutout'](jnp.ones(OP_SHAPE), _keys(64)))
    areas, bounds = [], []
    for image in out[..., 0]:
        rows, cols = np.nonzero(image == 0.0)
        top, bottom, left, right = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
        assert rows.size == (bottom - top) * (right - left)  # One filled rectangle.
        assert rows.size == 64 or min(top, left) == 0 or max(bottom, right) == 16
        assert bottom - top <= 8 and right - left <= 8
        areas.append(rows.size)
        bounds.append((top, bottom, left, right))
    # A full square has probability (9/17)^2 per draw: P(none or all in 64) < 1e-9.
    assert 64 in areas and min(areas) < 64
    # Centres span the image: each border is reached with probability 5/17 per
    # draw, so P(some border never reached in 64 draws) < 1e-9.
    top, bottom, left, right = np.array(bounds).T
    assert (top.min(), bottom.max(), left.min(), right.max()) == (0, 16, 0, 16)


def test_random_colour_factors_lie_in_the_papers_ranges():
    # On grey images saturation is a no-op, so out = (x - m) c + m + b: recover b and c.
    x = _images(OP_SHAPE)
    out = np.asarray(augment.DIFFAUGMENT_OPS['color'](x, _keys(64)))
    brightness = out.mean(axis=(1, 2, 3)) - x.mean(axis=(1, 2, 3))
    contrast = out.std(axis=(1, 2, 3)) / x.std(axis=(1, 2, 3))
    # Each bound is approached within 0.2 of the range: P(not in 64 draws) = 0.8^64 < 1e-6.
    assert -0.5 <= brightness.min() < -0.3 and 0.3 < brightness.max() <= 0.5
    assert 0.5 - 1e-6 <= contrast.min() < 0.7 and 1.3 < contrast.max() <= 1.5 + 1e-6


# --- ADA: resampling and colour matrices -------------------------------------------


def _resample(images, matrix):
    """The same matrix for every image of the batch."""
    matrices = jnp.broadcast_to(jnp.asarray(matrix, jnp.float32), (images.shape[0], 3, 3))
    return np.asarray(augment.resample(images, matrices))


def test_resample_identity_returns_the_input():
    x = _images(RGB)
    np.testing.assert_allclose(_resample(x, np.eye(3)), x, atol=1e-6)


def test_resample_flip_and_quarter_turn_are_pixel_copies():
    x = _images(RGB)
    np.testing.assert_allclose(_resample(x, np.diag([-1.0, 1.0, 1.0])), x[:, :, ::-1], atol=1e-6)
    quarter = [[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]
    np.testing.assert_allclose(_resample(x, quarter), np.rot90(x, k=1, axes=(1, 2)), atol=1e-6)


def test_resample_integer_translation_reflects_at_the_border():
    x = _images(RGB)
    dy, dx = 2, -3  # Content moves down 2 and left 3: out(x) = in(x - t).
    matrix = [[1.0, 0.0, -dx], [0.0, 1.0, -dy], [0.0, 0.0, 1.0]]
    padded = np.pad(x, ((0, 0), (4, 4), (4, 4), (0, 0)), mode='reflect')
    expected = padded[:, 4 - dy : 12 - dy, 4 - dx : 12 - dx]
    np.testing.assert_allclose(_resample(x, matrix), expected, atol=1e-6)


def test_resample_fractional_translation_is_bilinear():
    x = _images(RGB)
    matrix = [[1.0, 0.0, -0.25], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
    left = np.pad(x, ((0, 0), (0, 0), (1, 0), (0, 0)), mode='reflect')[:, :, :8]  # in[j - 1]
    np.testing.assert_allclose(_resample(x, matrix), 0.75 * x + 0.25 * left, atol=1e-6)


def test_apply_color_matrix_matches_numpy():
    rng = np.random.default_rng(0)
    color = np.concatenate(
        [rng.normal(size=(BATCH, 3, 4)), np.tile([[[0, 0, 0, 1.0]]], (BATCH, 1, 1))], axis=1
    ).astype(np.float32)
    rgb = _images(RGB)
    expected = np.einsum('bij,bhwj->bhwi', color[:, :3, :3], rgb) + color[:, None, None, :3, 3]
    np.testing.assert_allclose(augment.apply_color_matrix(rgb, color), expected, atol=1e-5)
    # Grey: the mean of the three output rows applied to (g, g, g).
    grey = rgb[..., :1]
    rows = color[:, :3].mean(axis=1)
    expected = grey * rows[:, None, None, None, :3].sum(-1) + rows[:, None, None, None, 3]
    np.testing.assert_allclose(augment.apply_color_matrix(grey, color), expected, atol=1e-5)


# --- ADA: the pipeline -----------------------------------------------------------


@pytest.mark.parametrize('channels', [1, 3])
def test_ada_p_zero_is_the_identity_exactly(channels):
    x = _images((BATCH, 8, 8, channels))
    g_inv, color = augment.ada_matrices(_keys(BATCH), 0.0, 8, 8, channels)
    np.testing.assert_array_equal(g_inv, np.broadcast_to(np.eye(3), (BATCH, 3, 3)))
    np.testing.assert_array_equal(color, np.broadcast_to(np.eye(4), (BATCH, 4, 4)))
    np.testing.assert_array_equal(augment.ada_augment(x, _keys(BATCH), 0.0), x)


BLIT_RESULTS = {  # The possible results of each blit op on one image.
    'xflip': lambda image: [image, image[:, ::-1]],
    'rotate90': lambda image: [np.rot90(image, k) for k in range(4)],
}


@pytest.mark.parametrize('op', BLIT_RESULTS)
def test_ada_blit_ops_at_p_one_copy_pixels(op):
    x = _images(RGB)
    out = np.asarray(augment.ada_augment(x, _keys(BATCH), 1.0, ops=(op,)))
    chosen = []
    for image, result in zip(x, out):
        candidates = BLIT_RESULTS[op](image)
        matches = [k for k, c in enumerate(candidates) if np.allclose(result, c, atol=1e-6)]
        assert len(matches) == 1
        chosen.append(matches[0])
    assert set(chosen) == set(range(len(candidates)))  # All occur in 32 draws.


def test_grey_luma_flip_negates():
    x = _images(GREY)
    out = np.asarray(augment.ada_augment(x, _keys(BATCH), 1.0, ops=('lumaflip',)))
    flipped = np.all(np.isclose(out, -x, atol=1e-6), axis=(1, 2, 3))
    kept = np.all(out == x, axis=(1, 2, 3))
    assert np.all(flipped | kept) and flipped.any() and kept.any()


def test_unknown_ada_op_is_rejected():
    with pytest.raises(ValueError, match=r"'cutout'.*xflip"):
        augment.ada_augment(_images(RGB), _keys(BATCH), 0.5, ops=('xflip', 'cutout'))


def _not_identity(matrices):
    return np.any(matrices != np.eye(matrices.shape[-1]), axis=(1, 2))


@pytest.mark.parametrize(
    'op, p, expected',
    [
        ('brightness', 0.3, 0.3),
        ('scale', 0.3, 0.3),
        ('xfrac', 0.8, 0.8),
        ('rotate', 0.3, 0.3),  # Pre or post rotation, each with 1 - sqrt(1 - p).
        ('rotate', 0.9, 0.9),
        ('xflip', 0.6, 0.3),  # Half of the selected images keep their orientation.
        ('lumaflip', 0.6, 0.3),
        ('rotate90', 0.4, 0.3),  # A quarter of the selected draw zero turns.
        ('hue', 0.3, 0.3),
    ],
)
def test_fraction_of_examples_that_change(op, p, expected):
    g_inv, color = augment.ada_matrices(_keys(N_DRAWS), jnp.float32(p), 8, 16, ops=(op,))
    changed = _not_identity(g_inv) | _not_identity(color)
    tolerance = Z * np.sqrt(expected * (1 - expected) / N_DRAWS)
    assert abs(changed.mean() - expected) < tolerance


def _hue_angle(color):
    cos = (color[:, 0, 0] - 1 / 3) * 1.5
    sin = (color[:, 1, 0] - color[:, 0, 1]) * np.sqrt(3) / 2
    return np.arctan2(sin, cos)


# (op, parameter recovered from the matrices at p = 1, its mean and standard deviation)
# for 8 x 16 (H x W) images.
DISTRIBUTIONS = [
    ('scale', lambda g, c: -np.log2(g[:, 0, 0]), 0.0, 0.2),
    ('aniso', lambda g, c: np.log2(g[:, 1, 1]), 0.0, 0.2),
    ('xfrac', lambda g, c: -g[:, 0, 2] / 16, 0.0, 0.125),
    ('xfrac', lambda g, c: -g[:, 1, 2] / 8, 0.0, 0.125),
    ('rotate', lambda g, c: np.arctan2(g[:, 1, 0], g[:, 0, 0]), 0.0, np.pi / np.sqrt(3)),
    ('brightness', lambda g, c: c[:, 0, 3], 0.0, 0.2),
    ('contrast', lambda g, c: np.log2(c[:, 0, 0]), 0.0, 0.5),
    ('hue', lambda g, c: _hue_angle(c), 0.0, np.pi / np.sqrt(3)),
    ('saturation', lambda g, c: np.log2((c[:, 0, 0] - 1 / 3) * 1.5), 0.0, 1.0),
]


@pytest.mark.parametrize(
    'op, parameter, mean, std', DISTRIBUTIONS, ids=[op for op, *_ in DISTRIBUTIONS]
)
def test_parameter_distributions_match_the_official_pipeline(op, parameter, mean, std):
    g_inv, color = augment.ada_matrices(_keys(N_DRAWS), 1.0, 8, 16, ops=(op,))
    values = parameter(np.asarray(g_inv, np.float64), np.asarray(color, np.float64))
    # The standard error of a sample std is std / sqrt(2n) for normal draws and
    # smaller for uniform ones.
    assert abs(values.mean() - mean) < Z * std / np.sqrt(N_DRAWS)
    assert abs(values.std() - std) < Z * std / np.sqrt(2 * N_DRAWS)


def test_integer_translation_is_whole_pixels_up_to_an_eighth():
    g_inv, _ = augment.ada_matrices(_keys(N_DRAWS), 1.0, 8, 16, ops=('xint',))
    tx, ty = -np.asarray(g_inv[:, 0, 2]), -np.asarray(g_inv[:, 1, 2])
    # round(U(-2, 2)) for W = 16: -2 and 2 with 1/8, -1, 0, 1 with 1/4.
    values, counts = np.unique(tx, return_counts=True)
    np.testing.assert_array_equal(values, [-2, -1, 0, 1, 2])
    expected = np.array([1, 2, 2, 2, 1]) / 8
    tolerance = Z * np.sqrt(expected * (1 - expected) / N_DRAWS)
    assert np.all(np.abs(counts / N_DRAWS - expected) < tolerance)
    np.testing.assert_array_equal(np.unique(ty), [-1, 0, 1])  # H = 8.


@pytest.mark.parametrize('op', ['hue', 'saturation'])
def test_hue_and_saturation_keep_luma(op):
    luma = np.array([1.0, 1.0, 1.0]) / np.sqrt(3.0)
    _, color = augment.ada_matrices(_keys(N_DRAWS), 1.0, 8, 16, ops=(op,))
    linear = np.asarray(color[:, :3, :3], np.float64)
    np.testing.assert_allclose(linear @ luma, np.broadcast_to(luma, (N_DRAWS, 3)), atol=1e-6)
    np.testing.assert_allclose(color[:, :3, 3], 0.0)
    if op == 'hue':  # A rotation about the luma axis.
        np.testing.assert_allclose(
            linear.transpose(0, 2, 1) @ linear,
            np.broadcast_to(np.eye(3), (N_DRAWS, 3, 3)),
            atol=1e-6,
        )
        np.testing.assert_allclose(np.linalg.det(linear), 1.0, atol=1e-6)


@pytest.mark.parametrize('name', AUGMENTERS)
def test_per_example_keys(name):
    fn = AUGMENTERS[name]
    x = _images(RGB)
    keys = _keys(BATCH)
    out = np.asarray(fn(x, keys))
    np.testing.assert_array_equal(out, fn(x, keys))  # Same keys, same result.
    # An example's result depends on its image and key only: not on its position ...
    order = np.random.default_rng(0).permutation(BATCH)
    np.testing.assert_allclose(fn(x[order], keys[order]), out[order], atol=1e-6)
    # ... nor on the other examples.
    others = _images(RGB, seed=7)
    others[0] = x[0]
    np.testing.assert_allclose(fn(others, keys)[0], out[0], atol=1e-6)
    same = jnp.broadcast_to(x[:1], x.shape)  # One image, different keys: different results.
    results = np.asarray(fn(same, keys)).reshape(BATCH, -1)
    assert all(
        not np.allclose(results[i], results[j]) for i in range(BATCH) for j in range(i + 1, BATCH)
    )


@pytest.mark.parametrize('name', AUGMENTERS)
def test_gradients_reach_the_images(name):
    # Not jitted: the gradient then reuses the compiled pieces of the forward pass.
    fn = {
        'diffaugment': AUGMENTERS['diffaugment'],
        'ada': lambda x, keys: augment.ada_augment(x, keys, 1.0),
    }[name]
    x = _images(RGB)
    weights = _images(RGB, seed=1)
    grads = np.asarray(jax.grad(lambda images: jnp.sum(fn(images, _keys(BATCH)) * weights))(x))
    assert np.all(np.isfinite(grads))
    assert np.all(np.abs(grads).sum(axis=(1, 2, 3)) > 0.0)  # Every example gets a gradient.


def test_jit_with_traced_p():
    x = _images(RGB)
    keys = _keys(BATCH)
    np.testing.assert_array_equal(ada_jit(x, keys, jnp.float32(0.0)), x)
    np.testing.assert_allclose(
        ada_jit(x, keys, jnp.float32(0.7)), augment.ada_augment(x, keys, 0.7), atol=1e-5
    )
    policy_jit = jax.jit(augment.diffaugment, static_argnames='policy')
    np.testing.assert_allclose(
        policy_jit(x, keys, policy=POLICY), augment.diffaugment(x, keys, POLICY), atol=1e-6
    )


# --- ADA: the p heuristic --------------------------------------------------------


@pytest.mark.parametrize(
    'p, sign_sum, expected',
    [
        (0.5, 70.0, 0.5 + 256 / 500_000),  # r_t = 0.7 > 0.6: D overfits, p rises.
        (0.5, 20.0, 0.5 - 256 / 500_000),  # r_t = 0.2 < 0.6: p falls.
        (0.5, -90.0, 0.5 - 256 / 500_000),
        (0.5, 60.0, 0.5),  # r_t = target: p stays.
        (0.0, -100.0, 0.0),  # Clipped at 0 ...
        (0.9999, 100.0, 1.0),  # ... and at 1.
    ],
)
def test_ada_update_p(p, sign_sum, expected):
    new_p = augment.ada_update_p(
        jnp.float32(p), jnp.float32(sign_sum), jnp.float32(100.0), batch_images=256
    )
    np.testing.assert_allclose(new_p, expected, rtol=0, atol=1e-7)


def test_ada_update_p_speed_and_target_under_jit():
    update = jax.jit(
        lambda p, s, n: augment.ada_update_p(
            p, s, n, batch_images=64 * 4, target=0.5, speed_kimg=100.0
        )
    )
    np.testing.assert_allclose(
        update(jnp.float32(0.2), 55.0, 100.0), 0.2 + 256 / 100_000, rtol=0, atol=1e-7
    )
    np.testing.assert_allclose(
        update(jnp.float32(0.2), 45.0, 100.0), 0.2 - 256 / 100_000, rtol=0, atol=1e-7
    )
