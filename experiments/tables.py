"""Published tables that ``reproduce.py`` runs: each row an experiment, each cell a number.

A row is an experiment file (with variant) plus overrides; its published cells
are the paper's mean, standard error and number of runs, in the units
gan_jax's evaluation reports (fractions, not percentages). ``reproduce.py``
runs every row for several seeds and puts the final evaluation beside them.
"""

from typing import NamedTuple


class Published(NamedTuple):
    mean: float
    standard_error: float
    runs: int


class Row(NamedTuple):
    name: str
    config: str  # experiments/<paper>.py:<variant>
    overrides: dict
    published: dict  # metric name (as in eval_<step>.json) -> Published, or None: unpublished


class Table(NamedTuple):
    name: str
    title: str
    source: str  # Where the published numbers and the protocol come from.
    rows: tuple
    metrics: tuple  # (metric name, label, multiplier for display)
    seeds: int  # Seeds per row by default.
    figure: str  # 'mixture' (scatter over the modes) or 'none'.


def _pack(m):
    return {'train.pack': m, 'train.batch_size': 100 * m}


# PacGAN Table 1 (Lin et al. 2018), 10 trials each, mean +- standard error; read
# from fjxmlzn/PacGAN synthetic_data_experiments/results/Table1.png.
_PACGAN_TABLE1 = {
    'ring': {
        1: ((6.3, 0.5), (0.982, 0.002), (0.45, 0.09)),
        2: ((7.9, 0.1), (0.956, 0.020), (0.07, 0.03)),
        3: ((7.8, 0.1), (0.977, 0.003), (0.10, 0.02)),
        4: ((7.8, 0.1), (0.959, 0.014), (0.07, 0.02)),
    },
    'grid': {
        1: ((17.3, 0.8), (0.948, 0.007), (0.70, 0.07)),
        2: ((23.8, 0.7), (0.913, 0.008), (0.13, 0.04)),
        3: ((24.6, 0.4), (0.942, 0.004), (0.06, 0.02)),
        4: ((24.8, 0.2), (0.936, 0.006), (0.04, 0.01)),
    },
}


def _pacgan_row(mixture, m):
    modes, high_quality, kl = _PACGAN_TABLE1[mixture][m]
    return Row(
        name=f'{mixture} / {"GAN" if m == 1 else f"PacGAN{m}"}',
        config=f'experiments/pacgan.py:{mixture}',
        overrides=_pack(m),
        published={
            f'modes-{mixture}': Published(*modes, 10),
            f'high_quality-{mixture}': Published(*high_quality, 10),
            f'kl-{mixture}': Published(*kl, 10),
        },
    )


def _stacked_mnist_row(name, config, modes, kl, runs):
    return Row(
        name=name,
        config=config,
        overrides={},
        published={
            'modes-StackedMNIST': Published(*modes, runs),
            'kl-StackedMNIST': Published(*kl, runs),
        },
    )


_STACKED_MNIST_METRICS = (('modes', 'modes captured (of 1000)', 1.0), ('kl', 'reverse KL', 1.0))


def _unrolled_demo_row(name, variant):
    unpublished = dict.fromkeys(('modes-ring', 'high_quality-ring', 'kl-ring'))
    return Row(name, f'experiments/unrolled_gan.py:{variant}', {}, unpublished)


TABLES = {
    'pacgan_table1': Table(
        name='pacgan_table1',
        title='PacGAN Table 1: mode collapse on the 2-D ring (8 modes) and grid (25 modes)',
        source=(
            'Lin, Khetan, Fanti & Oh, "PacGAN: The power of two samples in generative '
            'adversarial networks", NeurIPS 2018, Table 1 (10 trials, mean +- standard '
            "error); networks, training and evaluation as the authors' code "
            '(fjxmlzn/PacGAN, synthetic_data_experiments), see experiments/pacgan.py'
        ),
        rows=tuple(_pacgan_row(mixture, m) for mixture in ('ring', 'grid') for m in (1, 2, 3, 4)),
        metrics=(
            ('modes', 'modes captured', 1.0),
            ('high_quality', 'high-quality samples (%)', 100.0),
            ('kl', 'reverse KL', 1.0),
        ),
        seeds=3,
        figure='mixture',
    ),
    # Lin et al. 2018, Table 2 (10 trials, from 26,000 samples), the VEEGAN setting.
    'pacgan_table2': Table(
        name='pacgan_table2',
        title='PacGAN Table 2: Stacked MNIST (1000 modes), the VEEGAN setting',
        source=(
            'Lin et al., PacGAN, NeurIPS 2018, Table 2 (10 trials, mean +- standard error); '
            'networks and training as fjxmlzn/PacGAN stacked_MNIST_experiments/'
            'VEEGAN_experiment, see experiments/pacgan.py:stacked_mnist'
        ),
        rows=(
            _stacked_mnist_row(
                'DCGAN',
                'experiments/pacgan.py:stacked_mnist_dcgan',
                (78.9, 6.46),
                (4.50, 0.127),
                10,
            ),
            _stacked_mnist_row(
                'PacDCGAN2', 'experiments/pacgan.py:stacked_mnist', (1000.0, 0.0), (0.06, 0.003), 10
            ),
        ),
        metrics=_STACKED_MNIST_METRICS,
        seeds=1,
        figure='none',
    ),
    # Lin et al. 2018, Table 3 (50 trials, from 25,600 samples), the Unrolled GAN
    # replication's networks with D a quarter or half of G.
    'pacgan_table3': Table(
        name='pacgan_table3',
        title='PacGAN Table 3: Stacked MNIST with a smaller D (D = 1/4 G and 1/2 G)',
        source=(
            'Lin et al., PacGAN, NeurIPS 2018, Table 3 (50 trials, mean +- standard error); '
            'networks and training as fjxmlzn/PacGAN stacked_MNIST_experiments/'
            'unrolled_GAN_experiment, see experiments/pacgan.py:stacked_mnist_d_quarter'
        ),
        rows=tuple(
            _stacked_mnist_row(
                f'D={fraction} G / {name}',
                f'experiments/pacgan.py:stacked_mnist_{variant}{suffix}',
                modes,
                kl,
                50,
            )
            for fraction, variant, rows in (
                (
                    '1/4',
                    'd_quarter',
                    (
                        ('DCGAN', '_dcgan', (78.5, 17.56), (5.21, 0.19)),
                        ('PacDCGAN2', '', (484.5, 32.99), (2.61, 0.22)),
                    ),
                ),
                (
                    '1/2',
                    'd_half',
                    (
                        ('DCGAN', '_dcgan', (487.7, 34.59), (2.24, 0.15)),
                        ('PacDCGAN2', '', (840.7, 15.92), (1.00, 0.05)),
                    ),
                ),
            )
            for name, suffix, modes, kl in rows
        ),
        metrics=_STACKED_MNIST_METRICS,
        seeds=1,
        figure='none',
    ),
    # Metz et al. 2017, Figure 1 / the authors' notebook (poolio/unrolled_gan): the unrolled
    # G (5 steps) covers the ring's modes; the plain GAN collapses and moves between them.
    # No numbers were published: the report gives ours over seeds.
    'unrolled_demo': Table(
        name='unrolled_demo',
        title='Unrolled GAN 2-D demo: unrolled (5 steps) against plain, on the ring',
        source=(
            'Metz, Poole, Pfau & Sohl-Dickstein, "Unrolled generative adversarial '
            'networks", ICLR 2017, Figure 1, and the demo notebook poolio/unrolled_gan '
            '(qualitative: no numbers published); see experiments/unrolled_gan.py:ring'
        ),
        rows=(
            _unrolled_demo_row('unrolled (5 steps)', 'ring'),
            _unrolled_demo_row('plain GAN', 'ring_plain'),
        ),
        metrics=(
            ('modes', 'modes captured', 1.0),
            ('high_quality', 'high-quality samples (%)', 100.0),
            ('kl', 'reverse KL', 1.0),
        ),
        seeds=5,
        figure='mixture',
    ),
}
