"""Small statistics shared by the comparison tools (numpy-free, so any tool can import it)."""
import math


def wilson(k, n, z=1.96):
    """95 % interval of a proportion k / n; unlike p ± 2 SE it stays inside [0, 1] near 100 %."""
    p = k / n
    mid = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return mid - half, mid + half


def mcnemar(b, c):
    """Two-sided exact p of b faces right only in one model and c only in the other, when neither
    model is better (each discordant face a fair coin)."""
    n = b + c
    if n == 0:
        return 1.0
    return min(1.0, 2 * sum(math.comb(n, k) for k in range(min(b, c) + 1)) / 2**n)


def logistic(X, y, w, reg, theta=None, iters=100, tol=1e-9):
    """Weighted L2-regularised logistic regression by Newton's method: minimises
    sum w * log-loss + sum reg * theta^2 / 2 over the columns of X (an intercept is a column of
    ones with reg 0), from theta if given (a warm start)."""
    import numpy as np

    theta = np.zeros(X.shape[1]) if theta is None else theta.copy()
    for _ in range(iters):
        p = 1 / (1 + np.exp(-X @ theta))
        grad = X.T @ (w * (p - y)) + reg * theta
        hess = (X * (w * p * (1 - p))[:, None]).T @ X + np.diag(reg)
        step = np.linalg.solve(hess, grad)
        theta -= step
        if np.abs(step).max() < tol:
            break
    return theta
