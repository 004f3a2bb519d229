import pytest
import torch

from harness.strategies.differentiable.hypergradient import ift_hypergradient, neumann_inverse_hvp


def _spd(n: int, low: float, high: float, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(n, n, generator=g, dtype=torch.float64))
    return q @ torch.diag(torch.linspace(low, high, n, dtype=torch.float64)) @ q.T


def test_neumann_series_approximates_inverse_hessian_vector_product():
    h = _spd(6, 0.5, 2.0, seed=0)
    v = torch.randn(6, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    exact = torch.linalg.solve(h, v)
    gamma = 0.4  # gamma * eigenvalues in [0.2, 0.8]: the series contracts by 0.8 per term
    errors = []
    for terms in (2, 10, 80):
        (approx,) = neumann_inverse_hvp(lambda u: [h @ u[0]], [v], gamma, terms)
        errors.append(float((approx - exact).norm() / exact.norm()))
    assert errors[0] > errors[1] > errors[2]
    assert errors[2] < 1e-6


def test_neumann_partial_sums_are_the_truncated_series():
    h = _spd(4, 0.3, 1.5, seed=2)
    v = torch.randn(4, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    gamma = 0.5
    (k0,) = neumann_inverse_hvp(lambda u: [h @ u[0]], [v], gamma, 0)
    (k2,) = neumann_inverse_hvp(lambda u: [h @ u[0]], [v], gamma, 2)
    m = torch.eye(4, dtype=torch.float64) - gamma * h
    assert torch.allclose(k0, gamma * v)
    assert torch.allclose(k2, gamma * (v + m @ v + m @ m @ v))


def _ridge_problem(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x_tr, x_val = torch.randn(40, 5, generator=g, dtype=torch.float64), torch.randn(30, 5, generator=g, dtype=torch.float64)
    w_true = torch.randn(5, generator=g, dtype=torch.float64)
    y_tr = x_tr @ w_true + 0.5 * torch.randn(40, generator=g, dtype=torch.float64)
    y_val = x_val @ w_true + 0.5 * torch.randn(30, generator=g, dtype=torch.float64)
    return x_tr, y_tr, x_val, y_val


@pytest.mark.parametrize("weight_decay", [0.0, 0.3])
def test_ift_hypergradient_matches_closed_form_ridge_regression(weight_decay):
    """Inner: ridge with penalty exp(lam) (plus optimiser weight decay); outer: validation MSE + 0.1 lam^2."""
    x_tr, y_tr, x_val, y_val = _ridge_problem()
    n = len(y_tr)

    def solution(lam):
        a = x_tr.T @ x_tr / n + (torch.exp(lam) + weight_decay) * torch.eye(5, dtype=torch.float64)
        return torch.linalg.solve(a, x_tr.T @ y_tr / n)

    def outer(w, lam):
        return 0.5 * ((x_val @ w - y_val) ** 2).mean() + 0.1 * lam**2  # lam also enters directly

    lam = torch.tensor(-1.0, dtype=torch.float64, requires_grad=True)
    (exact,) = torch.autograd.grad(outer(solution(lam), lam), [lam])

    w = solution(lam).detach().requires_grad_(True)
    hessian = x_tr.T @ x_tr / n + (torch.exp(lam.detach()) + weight_decay) * torch.eye(5, dtype=torch.float64)
    gamma = 1.0 / float(torch.linalg.eigvalsh(hessian).max())
    (ift,) = ift_hypergradient(
        train_loss=lambda: 0.5 * ((x_tr @ w - y_tr) ** 2).mean() + 0.5 * torch.exp(lam) * (w**2).sum(),
        val_loss=lambda: outer(w, lam),
        weights=[w],
        hyper=[lam],
        gamma=gamma,
        terms=2000,
        weight_decay=weight_decay,
    )
    assert torch.allclose(ift, exact, rtol=1e-6, atol=1e-9), (ift, exact)


def test_ift_hypergradient_without_neumann_terms_is_direct_minus_gamma_mixed_term():
    x_tr, y_tr, x_val, y_val = _ridge_problem(1)
    lam = torch.tensor(0.2, dtype=torch.float64, requires_grad=True)
    w = torch.randn(5, dtype=torch.float64, generator=torch.Generator().manual_seed(5)).requires_grad_(True)
    gamma = 0.1
    (k0,) = ift_hypergradient(
        lambda: 0.5 * torch.exp(lam) * (w**2).sum() + ((x_tr @ w - y_tr) ** 2).mean(),
        lambda: ((x_val @ w - y_val) ** 2).mean(),
        [w], [lam], gamma, 0,
    )
    # d2 L_train / d lam d w = exp(lam) w, so the K = 0 estimate is -gamma exp(lam) w . dL_val/dw.
    grad_val = 2 * x_val.T @ (x_val @ w - y_val) / len(y_val)
    expected = -gamma * torch.exp(lam) * (w * grad_val).sum()
    assert torch.allclose(k0, expected.detach())
