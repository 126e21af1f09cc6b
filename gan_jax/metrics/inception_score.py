"""Inception Score (Salimans et al. 2016): exp E_x KL(p(y|x) || p(y)), per split of the samples.

Takes classifier *logits* (pre-softmax scores), not probabilities, and applies the softmax
itself in float64, as torch-fidelity does. Working in log space keeps every term finite:
a logit far below the others gives p = 0 and log p finite, never 0 * log 0, and the
marginal log p(y) is a log-mean-exp of finite values even for classes no sample predicts.
"""

import numpy as np


def _logsumexp(x: np.ndarray, axis: int) -> np.ndarray:
    """log sum exp along `axis` (kept, size 1), shifted by the max so exp cannot overflow."""
    top = x.max(axis=axis, keepdims=True)
    return top + np.log(np.exp(x - top).sum(axis=axis, keepdims=True))


def inception_score(logits, *, splits: int = 10) -> tuple[float, float]:
    """(mean, std) of the per-split scores for logits [N, K].

    As the original code: split i holds rows [i*N // splits, (i+1)*N // splits), in the
    given order (shuffle beforehand if the order is not random); p(y) is the split's mean
    prediction; std is np.std over splits (ddof=0).
    """
    logits = np.asarray(logits, np.float64)
    if logits.ndim != 2:
        raise ValueError(f'expected logits of shape [N, K], got {logits.shape}')
    n = len(logits)
    if not 1 <= splits <= n:
        raise ValueError(f'splits must be in [1, {n}], got {splits}')
    log_p = logits - _logsumexp(logits, axis=1)
    scores = []
    for i in range(splits):
        part = log_p[i * n // splits : (i + 1) * n // splits]
        log_marginal = _logsumexp(part, axis=0) - np.log(len(part))
        kl = (np.exp(part) * (part - log_marginal)).sum(axis=1)
        scores.append(np.exp(kl.mean()))
    return float(np.mean(scores)), float(np.std(scores))
