"""Gradient projections that protect what earlier architectures learned (the math of `dinas`, model-free).

Two realisations of "update only in the space earlier architectures did not use":

* `InputProjector` (orthogonal weight modification, Zeng et al. 2019): a layer y = W x keeps a matrix
  P = (I + S / alpha)^-1, where S accumulates the correlation of inputs x that earlier architectures fed
  the layer. The gradient G (out x d) is replaced by G P, so the update dW = -lr G P changes W x by
  -lr G P x, which is ~0 for every absorbed x (exactly 0 as alpha -> 0). P is updated recursively with the
  Woodbury identity: no input history is stored, only the d x d matrix.
* `GradientBasis` (orthogonal gradient descent, Farajtabar et al. 2019): a parameter keeps an orthonormal
  basis of earlier architectures' gradient directions; a new gradient loses its component in that span.
  The basis is capped: it tracks the top principal directions of the (decayed) gradient history
  ("energy" matrix in basis coordinates), and the weakest directions are dropped when it is full.

Both forget at a configurable rate so that a long training is never frozen: `decay` shrinks the
constraint of older architectures geometrically.
"""
from __future__ import annotations

import torch


class InputProjector:
    """P = (I + S/alpha)^-1 for one layer with input dimension `dim`; S is never stored."""

    def __init__(self, dim: int, alpha: float, dtype=torch.float32, device="cpu"):
        if alpha <= 0:
            raise ValueError(f"alpha={alpha!r} must be > 0")
        self.alpha = float(alpha)
        self.matrix = torch.eye(dim, dtype=dtype, device=device)

    @property
    def dim(self) -> int:
        return self.matrix.shape[0]

    def project(self, grad: torch.Tensor) -> torch.Tensor:
        """G P for a gradient G of shape (out, dim): rows are output units, columns match the input."""
        return grad @ self.matrix

    def absorb(self, inputs: torch.Tensor) -> None:
        """Adds the mean outer product of `inputs` (m, dim) to S: P <- P - P X^T (alpha m I + X P X^T)^-1 X P."""
        x = inputs.to(self.matrix.dtype)
        m = x.shape[0]
        px = self.matrix @ x.T  # (dim, m); P is symmetric, so X P = (P X^T)^T
        gram = x @ px
        gram.diagonal().add_(self.alpha * m)
        # gram = X P X^T + alpha m I is symmetric positive definite: Cholesky, without the host sync of a raising
        # solve; if round-off ever breaks definiteness the absorption is skipped (info != 0) instead of failing.
        factor, info = torch.linalg.cholesky_ex(gram)
        gain = torch.cholesky_solve(px.T, factor)  # (m, dim)
        self.matrix -= torch.where(info == 0, px @ gain, torch.zeros((), dtype=gain.dtype, device=gain.device))
        # Round-off makes P drift from symmetry over thousands of updates; symmetry is what keeps it a projector.
        self.matrix = 0.5 * (self.matrix + self.matrix.T)

    def decay(self, factor: float) -> None:
        """I - P <- factor (I - P): the constraint of every absorbed input fades by `factor`."""
        if factor < 1.0:
            self.matrix.mul_(factor).diagonal().add_(1.0 - factor)

    def reset(self) -> None:
        self.matrix = torch.eye(self.dim, dtype=self.matrix.dtype, device=self.matrix.device)

    def nbytes(self) -> int:
        return self.matrix.numel() * self.matrix.element_size()

    def state_dict(self) -> dict:
        return {"matrix": self.matrix.clone()}

    def load_state_dict(self, state: dict) -> None:
        self.matrix = state["matrix"].to(self.matrix.device, self.matrix.dtype).clone()


class GradientBasis:
    """Orthonormal rows `basis` (k, dim), k <= capacity, spanning the strongest earlier gradient directions."""

    def __init__(self, dim: int, capacity: int, tolerance: float = 1e-3, dtype=torch.float32, device="cpu"):
        if capacity < 1:
            raise ValueError(f"capacity={capacity!r} must be >= 1")
        self.dim = dim
        self.capacity = capacity
        self.tolerance = tolerance
        self.basis = torch.zeros(0, dim, dtype=dtype, device=device)
        # Decayed sum of c c^T, c = coordinates of absorbed gradients in the basis: which directions matter most.
        self.energy = torch.zeros(0, 0, dtype=dtype, device=device)

    @property
    def size(self) -> int:
        return self.basis.shape[0]

    def project(self, grad: torch.Tensor) -> torch.Tensor:
        """grad minus its component in span(basis); any shape with `dim` elements."""
        if self.size == 0:
            return grad
        flat = grad.reshape(-1).to(self.basis.dtype)
        flat = flat - self.basis.T @ (self.basis @ flat)
        return flat.reshape(grad.shape).to(grad.dtype)

    def absorb(self, grad: torch.Tensor, decay: float = 1.0) -> None:
        g = grad.reshape(-1).to(self.basis.dtype)
        norm = float(g.norm())
        if norm == 0.0:
            return
        coords = self.basis @ g
        residual = g - self.basis.T @ coords
        energy = self.energy * decay
        r = float(residual.norm())
        if r > self.tolerance * norm:
            self.basis = torch.cat([self.basis, (residual / r)[None]])
            coords = torch.cat([coords, coords.new_tensor([r])])
            energy = torch.nn.functional.pad(energy, (0, 1, 0, 1))
        self.energy = energy + torch.outer(coords, coords)
        if self.size > self.capacity:
            self._compress()

    def _compress(self) -> None:
        # Rotate the basis onto the eigenvectors of its energy and keep the `capacity` strongest: the best
        # rank-`capacity` summary (top singular directions) of the decayed gradient history it represents.
        values, vectors = torch.linalg.eigh(self.energy)
        keep = vectors[:, -self.capacity :]
        self.basis = keep.T @ self.basis
        # Re-orthonormalise: a rotation of an orthonormal basis is orthonormal only up to round-off.
        q, _ = torch.linalg.qr(self.basis.T)
        self.basis = q.T.contiguous()
        self.energy = torch.diag(values[-self.capacity :])

    def reset(self) -> None:
        self.basis = self.basis[:0]
        self.energy = self.energy[:0, :0]

    def nbytes(self) -> int:
        return (self.basis.numel() + self.energy.numel()) * self.basis.element_size()

    def state_dict(self) -> dict:
        return {"basis": self.basis.clone(), "energy": self.energy.clone()}

    def load_state_dict(self, state: dict) -> None:
        self.basis = state["basis"].to(self.basis.device, self.basis.dtype).clone()
        self.energy = state["energy"].to(self.basis.device, self.basis.dtype).clone()


def sample_rows(x: torch.Tensor, count: int, generator: torch.Generator) -> torch.Tensor:
    """`count` rows of a linear layer's input (any leading shape), drawn without replacement."""
    rows, _ = sample_rows_with_ids(x, count, generator)
    return rows


def sample_rows_with_ids(x: torch.Tensor, count: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """`sample_rows` and the indices of the drawn rows (what a held-out draw must avoid)."""
    x = x.reshape(-1, x.shape[-1])
    pick = torch.randperm(len(x), generator=generator, device=generator.device)[:count].to(x.device)
    return x[pick], pick


def heldout_rows(x: torch.Tensor, taken: torch.Tensor, count: int, generator: torch.Generator) -> torch.Tensor:
    """Up to `count` rows of a linear layer's input that are not among the rows `taken`, drawn without replacement.

    Fewer than `count` only when the input has fewer untaken rows (a batch smaller than twice `count`)."""
    x = x.reshape(-1, x.shape[-1])
    order = torch.randperm(len(x), generator=generator, device=generator.device).to(x.device)
    free = order[~torch.isin(order, taken.to(x.device))]
    return x[free[:count]]


def _conv_grid(shape, kernel, stride, padding) -> tuple[int, int]:
    _b, _c, h, w = shape
    return (h + 2 * padding[0] - kernel[0]) // stride[0] + 1, (w + 2 * padding[1] - kernel[1]) // stride[1] + 1


def sample_conv_patches(
    x: torch.Tensor, kernel: tuple[int, int], stride: tuple[int, int], padding: tuple[int, int], count: int, generator: torch.Generator
) -> torch.Tensor:
    """`count` input patches (count, C*kh*kw) of a conv at uniformly drawn (image, output position) pairs.

    Flattened in the (C, kh, kw) order of `weight.view(out, -1)`, so W_flat @ patch is the conv output there.
    Only the drawn patches are gathered: unfolding the whole batch would cost more than the training step.
    """
    return _gather_patches(x, kernel, stride, padding, *_draw_positions(x, kernel, stride, padding, count, generator))


def sample_conv_patches_with_ids(x, kernel, stride, padding, count, generator) -> tuple[torch.Tensor, torch.Tensor]:
    """`sample_conv_patches` (the same draws) and the flat ids (image * H_out + row) * W_out + col of its positions."""
    img, row, col = _draw_positions(x, kernel, stride, padding, count, generator)
    _out_h, out_w = _conv_grid(x.shape, kernel, stride, padding)
    return _gather_patches(x, kernel, stride, padding, img, row, col), (img * _out_h + row) * out_w + col


def _draw_positions(x, kernel, stride, padding, count, generator):
    out_h, out_w = _conv_grid(x.shape, kernel, stride, padding)
    # The generator lives on the training device: no host round trip per layer and step.
    device = generator.device
    img = torch.randint(0, x.shape[0], (count,), generator=generator, device=device).to(x.device)
    row = torch.randint(0, out_h, (count,), generator=generator, device=device).to(x.device)
    col = torch.randint(0, out_w, (count,), generator=generator, device=device).to(x.device)
    return img, row, col


def heldout_conv_patches(x, kernel, stride, padding, taken: torch.Tensor, count: int, generator: torch.Generator) -> torch.Tensor:
    """Up to `count` patches at (image, position) pairs that are not among the flat ids `taken`.

    2 * count uniform candidates are drawn and those that hit a taken position dropped (a few in a million at
    the mini shape), so the result has `count` rows unless more than `count` candidates collide."""
    out_h, out_w = _conv_grid(x.shape, kernel, stride, padding)
    total = x.shape[0] * out_h * out_w
    ids = torch.randint(0, total, (2 * count,), generator=generator, device=generator.device).to(x.device)
    ids = ids[~torch.isin(ids, taken.to(x.device))][:count]
    img, rest = ids // (out_h * out_w), ids % (out_h * out_w)
    return _gather_patches(x, kernel, stride, padding, img, rest // out_w, rest % out_w)


def _gather_patches(x, kernel, stride, padding, img, out_row, out_col) -> torch.Tensor:
    b, c, h, w = x.shape
    kh, kw = kernel
    sh, sw = stride
    ph, pw = padding
    row, col = out_row * sh, out_col * sw
    count = len(img)
    # Positions in the unpadded input; those in the zero padding are gathered clamped and then zeroed, which
    # is cheaper than padding the whole batch to read `count` patches.
    ys = row[:, None] + torch.arange(kh, device=x.device)[None, :] - ph  # (count, kh)
    xs = col[:, None] + torch.arange(kw, device=x.device)[None, :] - pw  # (count, kw)
    channels = torch.arange(c, device=x.device)
    patches = x[
        img[:, None, None, None],
        channels[None, :, None, None],
        ys.clamp(0, h - 1)[:, None, :, None],
        xs.clamp(0, w - 1)[:, None, None, :],
    ]
    if ph or pw:
        inside = ((ys >= 0) & (ys < h))[:, None, :, None] & ((xs >= 0) & (xs < w))[:, None, None, :]
        patches = torch.where(inside, patches, torch.zeros((), dtype=x.dtype, device=x.device))
    return patches.reshape(count, c * kh * kw)
