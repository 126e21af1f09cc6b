"""The one timing rule every benchmark uses: warm up, then the median of repeated runs."""

import statistics
import time


def median_seconds(run, repeats, warmup=1):
    """Median wall-clock seconds of ``run()`` over ``repeats`` calls after ``warmup`` calls.

    ``run`` must block until its work is done (``jax.block_until_ready``), or
    asynchronous dispatch would time only the launch.
    """
    for _ in range(warmup):
        run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)
