"""gan_jax: GAN research in JAX/Flax. See README.md for the map of the package.

``gan_jax.load_run(workdir, step='best')`` loads a run for use (gan_jax/runs.py); it is
imported on first use, so importing one module of the package does not import them all.
"""

__all__ = ['load_run']


def __getattr__(name):
    if name == 'load_run':
        from gan_jax.runs import load_run

        return load_run
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
