import torch
import torch.nn.functional as F

from harness.strategies.dinas.projection import GradientBasis, InputProjector, sample_conv_patches, sample_rows


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_projected_update_leaves_absorbed_inputs_outputs_unchanged():
    g = _gen()
    weight = torch.randn(5, 12, generator=g, dtype=torch.float64)
    earlier = torch.randn(6, 12, generator=g, dtype=torch.float64)
    projector = InputProjector(12, alpha=1e-8, dtype=torch.float64)
    projector.absorb(earlier[:3])
    projector.absorb(earlier[3:])
    grad = torch.randn(5, 12, generator=g, dtype=torch.float64)
    updated = weight - 0.5 * projector.project(grad)
    assert torch.allclose(earlier @ updated.T, earlier @ weight.T, atol=1e-6)
    # ...while the update is free in the directions no earlier input used.
    _, _, v = torch.linalg.svd(earlier)
    free = v[6:]  # orthonormal complement of span(earlier)
    assert torch.allclose(free @ projector.matrix, free, atol=1e-6)
    assert not torch.allclose(updated, weight)


def test_recursive_update_equals_closed_form():
    g = _gen(1)
    a, b = torch.randn(4, 7, generator=g, dtype=torch.float64), torch.randn(9, 7, generator=g, dtype=torch.float64)
    alpha = 0.5
    projector = InputProjector(7, alpha=alpha, dtype=torch.float64)
    projector.absorb(a)
    projector.absorb(b)
    correlation = a.T @ a / len(a) + b.T @ b / len(b)
    closed = torch.linalg.inv(torch.eye(7, dtype=torch.float64) + correlation / alpha)
    assert torch.allclose(projector.matrix, closed, atol=1e-10)


def test_decay_shrinks_the_constraint_geometrically():
    projector = InputProjector(5, alpha=0.1, dtype=torch.float64)
    projector.absorb(torch.randn(3, 5, generator=_gen(2), dtype=torch.float64))
    constraint = torch.eye(5, dtype=torch.float64) - projector.matrix
    projector.decay(0.25)
    assert torch.allclose(torch.eye(5, dtype=torch.float64) - projector.matrix, 0.25 * constraint, atol=1e-12)
    projector.reset()
    assert torch.equal(projector.matrix, torch.eye(5, dtype=torch.float64))


def test_gradient_basis_removes_stored_directions():
    g = _gen(3)
    stored = [torch.randn(3, 4, generator=g, dtype=torch.float64) for _ in range(3)]
    basis = GradientBasis(12, capacity=8, dtype=torch.float64)
    for s in stored:
        basis.absorb(s)
    assert basis.size == 3
    assert torch.allclose(basis.basis @ basis.basis.T, torch.eye(3, dtype=torch.float64), atol=1e-10)
    new = torch.randn(3, 4, generator=g, dtype=torch.float64)
    projected = basis.project(new)
    for s in stored:
        assert abs(float((projected * s).sum())) < 1e-10
    # The projection only removes: what is left of `new` is its part orthogonal to the stored span.
    assert float(basis.project(new - projected).norm()) < 1e-10


def test_capped_basis_keeps_the_strongest_directions():
    g = _gen(4)
    strong = torch.randn(10, generator=g, dtype=torch.float64)
    basis = GradientBasis(10, capacity=2, dtype=torch.float64)
    for _ in range(5):
        basis.absorb(strong * 10)
        basis.absorb(torch.randn(10, generator=g, dtype=torch.float64) * 0.01)
        basis.absorb(torch.randn(10, generator=g, dtype=torch.float64) * 0.01)
    assert basis.size == 2
    assert torch.allclose(basis.basis @ basis.basis.T, torch.eye(2, dtype=torch.float64), atol=1e-8)
    assert float(basis.project(strong).norm()) < 1e-3 * float(strong.norm())


def test_sampled_patches_reproduce_conv_outputs():
    g = _gen(5)
    x = torch.randn(2, 3, 7, 7, generator=g, dtype=torch.float64)
    conv = torch.nn.Conv2d(3, 4, 3, stride=2, padding=1, bias=False).double().requires_grad_(False)
    out = F.conv2d(x, conv.weight, stride=2, padding=1)  # (2, 4, 4, 4)
    patches = sample_conv_patches(x, conv.kernel_size, conv.stride, conv.padding, 16, _gen(6))
    assert patches.shape == (16, 27)
    responses = patches @ conv.weight.reshape(4, -1).T  # (16, 4)
    candidates = out.permute(0, 2, 3, 1).reshape(-1, 4)  # every (image, position)
    distance = torch.cdist(responses, candidates).min(dim=1).values
    assert float(distance.max()) < 1e-5


def test_absorb_never_raises_and_skips_a_non_definite_system():
    """absorb solves by Cholesky without a host sync; if the system is not positive definite (here forced by
    a corrupted P) the absorption is skipped instead of raising or writing NaNs."""
    projector = InputProjector(4, alpha=1e-3, dtype=torch.float64)
    projector.matrix = -torch.eye(4, dtype=torch.float64)
    projector.absorb(torch.randn(3, 4, generator=_gen(7), dtype=torch.float64))
    assert torch.equal(projector.matrix, -torch.eye(4, dtype=torch.float64))


def test_row_sampling_is_a_function_of_the_generator_seed():
    x = torch.randn(2, 3, 6, 6, generator=_gen(8))
    a = sample_conv_patches(x, (3, 3), (1, 1), (1, 1), 10, torch.Generator(device=x.device).manual_seed(3))
    b = sample_conv_patches(x, (3, 3), (1, 1), (1, 1), 10, torch.Generator(device=x.device).manual_seed(3))
    assert torch.equal(a, b)
    rows = torch.randn(5, 4, 7, generator=_gen(9))
    picked = sample_rows(rows, 6, _gen(10))
    assert picked.shape == (6, 7) and torch.equal(picked, sample_rows(rows, 6, _gen(10)))
    assert len({tuple(r.tolist()) for r in picked}) == 6  # drawn without replacement


def test_held_out_patches_avoid_the_drawn_positions_and_ids_name_them():
    from harness.strategies.dinas.projection import heldout_conv_patches, heldout_rows, sample_conv_patches_with_ids, sample_rows_with_ids

    # Every (image, position) has its own value in channel 0's centre pixel, so a patch names its position.
    x = torch.arange(2 * 5 * 5, dtype=torch.float64).reshape(2, 1, 5, 5)
    geometry = ((3, 3), (1, 1), (1, 1))
    drawn, ids = sample_conv_patches_with_ids(x, *geometry, 20, _gen(11))
    assert torch.equal(drawn, sample_conv_patches(x, *geometry, 20, _gen(11)))  # the same draws as absorption's
    assert torch.equal(drawn[:, 4], ids.to(torch.float64))  # the centre pixel is the flat id at stride 1
    other = heldout_conv_patches(x, *geometry, ids, 20, _gen(12))
    assert len(other) > 0 and not torch.isin(other[:, 4], ids.to(torch.float64)).any()
    rows = torch.arange(12, dtype=torch.float64)[:, None].repeat(1, 3)
    picked, pick = sample_rows_with_ids(rows, 8, _gen(13))
    rest = heldout_rows(rows, pick, 8, _gen(14))
    assert len(rest) == 4 and not torch.isin(rest[:, 0], picked[:, 0]).any()  # only 4 rows were left untaken
