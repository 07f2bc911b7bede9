"""Data distributions p* with exact log-density, sampling and mode assignment (paper §3, Appendix C)."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import torch
from scipy.stats import norm
from torch import Tensor

from .checks import InputError, check_generator, check_int, check_positive, check_probability, check_weights

__all__ = ["GaussianMixture", "Rings", "EqualModes2D", "TwoMoons", "Pinwheel", "Checkerboard", "two_mode_mixture",
           "eight_gaussians", "four_collinear_modes", "rings", "two_moons", "pinwheel", "checkerboard",
           "coordinate_magnitude", "four_mode_mixture", "check_mode_weights", "check_dims", "FullCovarianceMixture",
           "fit_gaussian_mixture"]


@dataclass(frozen=True)
class GaussianMixture:
    """Mixture of isotropic Gaussians sum_k w_k N(mu_k, s_k^2 I).

    Modes are identified by nearest mean (the Voronoi partition of the means), which is how mode
    weights are measured throughout the book (paper Figure 4 for the zone partition).
    """

    means: Tensor  # (K, d)
    stds: Tensor  # (K,)
    weights: Tensor  # (K,)

    def __post_init__(self) -> None:
        if not all(isinstance(t, torch.Tensor) for t in (self.means, self.stds, self.weights)) or self.means.dim() != 2:
            raise InputError(f"a GaussianMixture needs tensors means (K, d), stds (K,) and weights (K,), got means "
                             f"{_shape(self.means)}, stds {_shape(self.stds)}, weights {_shape(self.weights)}")
        k, _ = self.means.shape
        if self.stds.shape != (k,) or self.weights.shape != (k,):
            raise InputError(f"means (K, d), stds (K,) and weights (K,) must agree on K, got shapes "
                             f"{_shape(self.means)}, {_shape(self.stds)}, {_shape(self.weights)}")
        check_weights("mixture weights", self.weights.tolist())
        if not (torch.isfinite(self.stds).all() and (self.stds > 0).all()):
            raise InputError(f"mixture stds must be finite and positive, got {self.stds.tolist()}")
        if not torch.isfinite(self.means).all():
            raise InputError("mixture means must be finite")

    @property
    def dim(self) -> int:
        return self.means.shape[1]

    @property
    def n_modes(self) -> int:
        return self.means.shape[0]

    def component_log_probs(self, x: Tensor) -> Tensor:
        """log w_k + log N(x; mu_k, s_k^2 I) for every component, shape (n, K)."""
        sq_dist = torch.cdist(x, self.means.to(x)) ** 2
        var = self.stds.to(x) ** 2
        log_norm = -0.5 * self.dim * torch.log(2 * math.pi * var)
        return torch.log(self.weights.to(x)) + log_norm - sq_dist / (2 * var)

    def log_prob(self, x: Tensor) -> Tensor:
        """Exact log p*(x), shape (n,)."""
        return torch.logsumexp(self.component_log_probs(x), dim=1)

    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        """n exact samples, shape (n, d)."""
        check_int("number of samples", n)
        check_generator(generator)
        labels = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        noise = torch.randn(n, self.dim, generator=generator)
        return self.means[labels] + self.stds[labels, None] * noise

    def assign_mode(self, x: Tensor) -> Tensor:
        """Index of the nearest mean for each point, shape (n,)."""
        return torch.cdist(x, self.means.to(x)).argmin(dim=1)

    def max_coordinate_variance(self) -> float:
        """Largest per-coordinate variance of p* (used to size the flow base rho, paper §C.5)."""
        second_moment = (self.weights[:, None] * (self.means**2 + self.stds[:, None] ** 2)).sum(0)
        mean = (self.weights[:, None] * self.means).sum(0)
        return float((second_moment - mean**2).max())

    def misassignment_bound(self) -> float:
        """Union bound on the probability that a sample's nearest mean is not its component's, for the worst
        component k: sum_{j != k} Φ̄(‖mu_j - mu_k‖ / (2 s_k)) (each term: crossing the bisecting hyperplane)."""
        gaps = torch.cdist(self.means, self.means).double()
        terms = norm.sf((gaps / (2 * self.stds.double()[:, None])).numpy())
        return float((terms.sum(1) - 0.5).max())  # the diagonal (gap 0) adds Φ̄(0) = 1/2

    def separation(self, n: int, generator: torch.Generator) -> dict[str, float]:
        """How far apart the modes are: the closest means' distance ("gap"), the misassignment bound and the
        measured misassignment rate on ``n`` exact samples."""
        gap = float(torch.cdist(self.means, self.means).fill_diagonal_(math.inf).min())
        return {"gap": gap, "bound": self.misassignment_bound(), "measured": self.misassignment(n, generator)}

    def misassignment(self, n: int, generator: torch.Generator, chunk: int = 100_000) -> float:
        """Share of ``n`` exact samples (component k for sample i with i mod K = k) whose nearest mean is not
        their component's."""
        check_int("number of samples", n)
        check_generator(generator)
        check_int("chunk", chunk)
        wrong = 0
        for labels in (torch.arange(n) % self.n_modes).split(chunk):
            x = self.means[labels] + self.stds[labels, None] * torch.randn(len(labels), self.dim, generator=generator)
            wrong += int((self.assign_mode(x) != labels).sum())
        return wrong / n


def _shape(value: object) -> object:
    return tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__


def two_mode_mixture(weights: Sequence[float] = (1 / 3, 2 / 3), offset: float = 1.5) -> GaussianMixture:
    """The motivating example (paper §3.1, Appendix C.2).

    p* = w_0 N(-offset·1, 0.05 I) + w_1 N(+offset·1, 0.1 I); the paper's weights 1/3, 2/3 and offset 1.5 give
    both components the same peak height. Mode 1 (index 1) is the "top right" mode of Figure 1.
    """
    check_positive("offset", offset)
    return GaussianMixture(
        means=torch.tensor([[-1.0, -1.0], [1.0, 1.0]]) * offset,
        stds=torch.tensor([0.05, 0.1]).sqrt(),
        weights=torch.tensor(check_weights("weights", weights), dtype=torch.float32),
    )


def eight_gaussians() -> GaussianMixture:
    """8 Gaussians (paper §C.4): equal weights, std 0.15, means on the unit circle at angles 2*pi*i/8.

    Not FFJORD's "8gaussians" (which uses a larger radius)."""
    angles = 2 * math.pi * torch.arange(8) / 8
    return GaussianMixture(means=torch.stack([angles.cos(), angles.sin()], dim=1),
                           stds=torch.full((8,), 0.15), weights=torch.full((8,), 1 / 8))


def check_mode_weights(weights: Sequence[float], count: int, name: str = "weights") -> tuple[float, ...]:
    """``count`` positive mode weights summing to 1 (within 1e-6); InputError naming ``name``, the values and what
    is wrong with them."""
    words = {2: "two", 3: "three", 4: "four"}
    what = f"{name} must be {words.get(count, count)} positive numbers summing to 1 (one per mode)"
    try:
        values = tuple(float(w) for w in weights)
    except (TypeError, ValueError):
        raise InputError(f"{what}, got {weights!r}") from None
    problem = (f"{len(values)} number{'' if len(values) == 1 else 's'}" if len(values) != count else
               "not all positive" if any(not math.isfinite(w) or w <= 0 for w in values) else
               f"they sum to {sum(values):.6g}" if abs(sum(values) - 1) > 1e-6 else None)
    if problem:
        raise InputError(f"{what}, got {', '.join(f'{w:g}' for w in values)}: {problem}")
    return values


def four_collinear_modes(weights: Sequence[float] = (0.1, 0.2, 0.3, 0.4)) -> GaussianMixture:
    """Extended motivating example (paper §C.3, Figures 3-5): N(mu_i, 0.05 I) with mu_i evenly spaced on the
    horizontal axis from x = -3 to x = 3, weights 0.1, 0.2, 0.3, 0.4 in the paper."""
    weights = check_mode_weights(weights, 4)
    means = torch.stack([torch.linspace(-3.0, 3.0, 4), torch.zeros(4)], dim=1)
    return GaussianMixture(means=means, stds=torch.full((4,), 0.05**0.5),
                           weights=torch.tensor(weights, dtype=torch.float32))


@dataclass(frozen=True)
class Rings:
    """Rings (paper §C.4): x = (r cos t, r sin t) with t ~ U[0, 2 pi) and r ~ sum_k w_k N(radius_k, std^2).

    ``log p(x) = log p_r(|x|) - log(2 pi |x|)`` (polar change of variables; the mass of p_r below 0,
    < 1e-11 here, is neglected). Modes are the rings, assigned by nearest radius.
    """

    radii: Tensor  # (K,)
    std: float
    weights: Tensor  # (K,)

    def __post_init__(self) -> None:
        if not isinstance(self.radii, torch.Tensor) or self.radii.dim() != 1 or not torch.isfinite(self.radii).all() \
                or not (self.radii > 0).all():
            raise InputError(f"Rings radii must be a 1-D tensor of finite positive radii, got {self.radii!r}")
        check_positive("Rings std", self.std)
        if not isinstance(self.weights, torch.Tensor) or self.weights.shape != self.radii.shape:
            raise InputError(f"Rings weights must be a tensor of one weight per ring {tuple(self.radii.shape)}, got "
                             f"{_shape(self.weights)}")
        check_weights("Rings weights", self.weights.tolist())

    @property
    def dim(self) -> int:
        return 2

    @property
    def n_modes(self) -> int:
        return len(self.radii)

    def log_prob(self, x: Tensor) -> Tensor:
        r = x.norm(dim=-1)
        log_pr = torch.logsumexp(torch.log(self.weights.to(x)) - 0.5 * ((r[:, None] - self.radii.to(x)) / self.std) ** 2
                                 - math.log(self.std * math.sqrt(2 * math.pi)), dim=1)
        return log_pr - torch.log(2 * math.pi * r)

    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        check_int("number of samples", n)
        check_generator(generator)
        labels = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        r = self.radii[labels] + self.std * torch.randn(n, generator=generator)
        t = 2 * math.pi * torch.rand(n, generator=generator)
        return torch.stack([r * t.cos(), r * t.sin()], dim=1)

    def max_coordinate_variance(self) -> float:
        """Per-coordinate variance E[r^2] / 2 (isotropic, zero mean); sizes the flow base rho."""
        return float((self.weights * (self.radii**2 + self.std**2)).sum() / 2)

    def assign_mode(self, x: Tensor) -> Tensor:
        return (x.norm(dim=-1)[:, None] - self.radii).abs().argmin(dim=1)


def rings() -> Rings:
    """Four equally weighted rings of radii 1, 2, 3, 4 and radial std 0.15 (paper §C.4)."""
    return Rings(radii=torch.tensor([1.0, 2.0, 3.0, 4.0]), std=0.15, weights=torch.full((4,), 0.25))


def coordinate_magnitude(dim: int, max_misassignment: float) -> float:
    """Per-coordinate mean magnitude m of ``four_mode_mixture`` such that the two closest means, m·sqrt(2d)
    apart, are separated enough: by the union bound over those two neighbours, P(misassigned) <=
    2 Φ̄(m sqrt(2d) / 2) equals ``max_misassignment`` (the farthest mean adds a negligible term)."""
    check_int("dim", dim, minimum=2)
    check_probability("max_misassignment", max_misassignment)
    if max_misassignment >= 0.5:
        raise InputError(f"max_misassignment must be below 0.5, got {max_misassignment!r}")
    return 2 * norm.isf(max_misassignment / 2) / math.sqrt(2 * dim)


def check_dims(dims: Sequence[int], name: str = "dims") -> tuple[int, ...]:
    """Dimensions for ``four_mode_mixture``: distinct even integers >= 2 (its sign pattern splits the coordinates in
    halves), in increasing order."""
    values = tuple(dims)
    if not values or any(not isinstance(d, int) or isinstance(d, bool) or d < 2 or d % 2 for d in values) \
            or list(values) != sorted(set(values)):
        raise InputError(f"{name} must be distinct even integers >= 2 (the sign pattern splits the coordinates in "
                         f"halves) in increasing order, got {','.join(map(str, values))}")
    return values


def four_mode_mixture(dim: int, magnitude: float,
                      weights: Sequence[float] = (0.25, 0.25, 0.25, 0.25)) -> GaussianMixture:
    """p* = sum_i w_i N(mu_i, I_d) with mu_1 = m·1, mu_2 = m·(-1..-1, 1..1), mu_3 = -mu_2, mu_4 = -mu_1
    (Appendix C.5, equal weights, with its typo mu_2 = -mu_2 read as mu_3 = -mu_2)."""
    check_int("dim", dim, minimum=2)
    if dim % 2:
        raise InputError(f"the sign pattern needs an even dimension >= 2, got {dim}")
    check_positive("magnitude", magnitude)
    weights = check_mode_weights(weights, 4)
    half = torch.cat([-torch.ones(dim // 2), torch.ones(dim // 2)])
    means = magnitude * torch.stack([torch.ones(dim), half, -half, -torch.ones(dim)])
    return GaussianMixture(means=means, stds=torch.ones(4), weights=torch.tensor(weights, dtype=torch.float32))


class EqualModes2D:
    """Base of the 2-D toy targets whose ``n_modes`` modes carry equal weight (two moons, pinwheel, checkerboard):
    ``dim`` and ``weights`` follow from ``n_modes``."""

    n_modes: int

    @property
    def dim(self) -> int:
        return 2

    @property
    def weights(self) -> Tensor:
        return torch.full((self.n_modes,), 1 / self.n_modes)


@dataclass(frozen=True)
class TwoMoons(EqualModes2D):
    """Two moons (scikit-learn's ``make_moons``, scaled and centred): each moon with probability 1/2, a uniform
    t in [0, pi], x = scale (c_m(t) - (1/2, 1/4)) + N(0, noise^2 I) with c_0(t) = (cos t, sin t) and
    c_1(t) = (1 - cos t, 1/2 - sin t); scale 2 and noise 0.2 are make_moons' noise 0.1 on the doubled board that
    FFJORD-style benchmarks use.

    Its density, (1/2) sum_m (1/pi) int_0^pi N(x; scale (c_m(t) - shift), noise^2 I) dt, has no closed form.
    ``log_prob`` is a **reference density**: that integral by the midpoint rule on ``n_nodes`` values of t per
    moon, i.e. the mixture of 2 n_nodes equal-weight Gaussians N(node, noise^2 I) on the two arcs. The nodes are
    scale·pi/n_nodes ≈ 0.025 apart along an arc, an eighth of the noise: the rule is exact to far below 1e-3 in
    log-density along the arcs and off by at most 0.01 near their ends, wherever the density exceeds 1e-4
    (tests compare it with 4096 nodes). Modes: the two moons, a point assigned to the moon of highest density.
    """

    noise: float = 0.2
    scale: float = 2.0
    n_nodes: int = 256

    def __post_init__(self) -> None:
        check_positive("noise", self.noise)
        check_positive("scale", self.scale)
        check_int("n_nodes", self.n_nodes, minimum=2)

    @property
    def n_modes(self) -> int:
        return 2

    def _arcs(self, t: Tensor, moon: Tensor) -> Tensor:
        upper = torch.stack([t.cos(), t.sin()], dim=-1)
        lower = torch.stack([1 - t.cos(), 0.5 - t.sin()], dim=-1)
        points = torch.where(moon[..., None] == 0, upper, lower)
        return self.scale * (points - torch.tensor([0.5, 0.25]))

    @property
    def nodes(self) -> Tensor:
        """(2, n_nodes, 2): the quadrature nodes of each moon's arc."""
        t = math.pi * (torch.arange(self.n_nodes) + 0.5) / self.n_nodes
        return torch.stack([self._arcs(t, torch.full_like(t, m, dtype=torch.long)) for m in (0, 1)])

    def moon_log_probs(self, x: Tensor) -> Tensor:
        """log (1/2) p_m(x) for each moon m under the reference density, shape (n, 2)."""
        nodes = self.nodes.to(x)
        log_norm = -math.log(2 * math.pi * self.noise**2) - math.log(2 * self.n_nodes)

        def per_moon(rows: Tensor) -> Tensor:
            sq = torch.cdist(rows, nodes.flatten(0, 1)) ** 2
            return torch.logsumexp((-sq / (2 * self.noise**2)).view(len(rows), 2, self.n_nodes), dim=2)
        chunks = [per_moon(x[i:i + 4096]) for i in range(0, len(x), 4096)]
        return (torch.cat(chunks) if chunks else x.new_zeros(0, 2)) + log_norm

    def log_prob(self, x: Tensor) -> Tensor:
        """The reference log-density (see the class), shape (n,)."""
        return torch.logsumexp(self.moon_log_probs(x), dim=1)

    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        check_int("number of samples", n)
        moon = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        t = math.pi * torch.rand(n, generator=generator)
        return self._arcs(t, moon) + self.noise * torch.randn(n, 2, generator=generator)

    def assign_mode(self, x: Tensor) -> Tensor:
        return self.moon_log_probs(x).argmax(dim=1)

    def max_coordinate_variance(self) -> float:
        """Largest per-coordinate variance of the reference mixture (its nodes' spread plus the noise)."""
        nodes = self.nodes.flatten(0, 1)
        return float(nodes.var(0, unbiased=False).max()) + self.noise**2


@dataclass(frozen=True)
class Pinwheel(EqualModes2D):
    """Pinwheel with an exact log-density: ``n_arms`` equally weighted arms; arm k draws
    f ~ N((1, 0), diag(radial_std^2, tangential_std^2)) and sets x = scale R(2 pi k / n_arms + rate e^{‖f‖}) f
    (R(a): the rotation by a).

    FFJORD's pinwheel (radial 0.3, tangential 0.1, 5 arms, rate 0.25, scale 2) turns f by rate·e^{f_1}; here the
    turn is driven by ‖f‖. A rotation whose angle depends only on the radius preserves area and is undone by
    turning back by the same angle (‖x‖ = scale ‖f‖), so each arm is an exact warp of a Gaussian:
    log p(x) = log sum_k (1/K) N(R(-2 pi k/K - rate e^{‖x‖/scale}) x/scale; (1, 0), Σ) - 2 log scale. With a
    tangential std of 0.1, ‖f‖ and f_1 differ by about f_2^2/2 ≈ 0.005: the arms keep FFJORD's shape. Modes: the
    arms, a point assigned to the arm of highest density.
    """

    n_arms: int = 5
    radial_std: float = 0.3
    tangential_std: float = 0.1
    rate: float = 0.25
    scale: float = 2.0

    def __post_init__(self) -> None:
        check_int("n_arms", self.n_arms, minimum=3)
        for name in ("radial_std", "tangential_std", "rate", "scale"):
            check_positive(name, getattr(self, name))

    @property
    def n_modes(self) -> int:
        return self.n_arms

    @property
    def angles(self) -> Tensor:
        return 2 * math.pi * torch.arange(self.n_arms) / self.n_arms

    def _turn(self, radius: Tensor) -> Tensor:
        return self.rate * radius.clamp(max=30.0).exp()  # far from the arms the angle no longer matters

    def arm_log_probs(self, x: Tensor) -> Tensor:
        """log (1/K) p_k(x) for each arm k, shape (n, K)."""
        u = x / self.scale
        theta = self.angles.to(x)[None] + self._turn(u.norm(dim=-1))[:, None]
        f1 = theta.cos() * u[:, :1] + theta.sin() * u[:, 1:]
        f2 = -theta.sin() * u[:, :1] + theta.cos() * u[:, 1:]
        log_n = (-0.5 * ((f1 - 1) / self.radial_std) ** 2 - 0.5 * (f2 / self.tangential_std) ** 2
                 - math.log(2 * math.pi * self.radial_std * self.tangential_std))
        return log_n - math.log(self.n_arms) - 2 * math.log(self.scale)

    def log_prob(self, x: Tensor) -> Tensor:
        """Exact log p(x), shape (n,)."""
        return torch.logsumexp(self.arm_log_probs(x), dim=1)

    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        check_int("number of samples", n)
        arm = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        f = torch.tensor([1.0, 0.0]) + torch.randn(n, 2, generator=generator) * torch.tensor(
            [self.radial_std, self.tangential_std])
        theta = self.angles[arm] + self._turn(f.norm(dim=-1))
        return self.scale * torch.stack([theta.cos() * f[:, 0] - theta.sin() * f[:, 1],
                                         theta.sin() * f[:, 0] + theta.cos() * f[:, 1]], dim=1)

    def assign_mode(self, x: Tensor) -> Tensor:
        return self.arm_log_probs(x).argmax(dim=1)

    def max_coordinate_variance(self) -> float:
        """Exact: equal arms evenly turned make p isotropic with mean 0, so each coordinate's variance is
        E‖x‖^2 / 2 = scale^2 (1 + radial_std^2 + tangential_std^2) / 2."""
        return self.scale**2 * (1 + self.radial_std**2 + self.tangential_std**2) / 2


@dataclass(frozen=True)
class Checkerboard(EqualModes2D):
    """Checkerboard (FFJORD's): uniform on the 8 dark squares of a 4 x 4 board of squares of side ``side``
    centred at 0, square (column c, row r), c, r = 0..3 from the bottom left, dark when c + r is even.

    Exact log p(x) = -log(8 side^2) on the dark squares (half-open), -inf elsewhere. Modes: the dark squares, a
    point assigned to the nearest square centre (each square lies in its own centre's cell).
    """

    side: float = 2.0

    def __post_init__(self) -> None:
        check_positive("side", self.side)

    @property
    def n_modes(self) -> int:
        return 8

    @property
    def corners(self) -> Tensor:
        """(8, 2) lower-left corners of the dark squares."""
        cells = [(c, r) for c in range(4) for r in range(4) if (c + r) % 2 == 0]
        return (torch.tensor(cells, dtype=torch.float32) - 2) * self.side

    def log_prob(self, x: Tensor) -> Tensor:
        """Exact log p(x), shape (n,) (-inf off the dark squares)."""
        offset = x[:, None, :] - self.corners.to(x)[None]
        inside = ((offset >= 0) & (offset < self.side)).all(dim=-1).any(dim=1)
        value = torch.full((len(x),), -math.log(8 * self.side**2), dtype=x.dtype, device=x.device)
        return torch.where(inside, value, torch.full_like(value, -math.inf))

    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        check_int("number of samples", n)
        square = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        return self.corners[square] + self.side * torch.rand(n, 2, generator=generator)

    def assign_mode(self, x: Tensor) -> Tensor:
        return torch.cdist(x, self.corners.to(x) + self.side / 2).argmin(dim=1)

    def max_coordinate_variance(self) -> float:
        """Exact: each coordinate is uniform on [-2 side, 2 side], variance (4 side)^2 / 12."""
        return (4 * self.side) ** 2 / 12


def two_moons() -> TwoMoons:
    """Two moons with noise 0.2 on the doubled board (reference density: 256 quadrature nodes per moon)."""
    return TwoMoons()


def pinwheel() -> Pinwheel:
    """Five arms with FFJORD's radial 0.3, tangential 0.1, rate 0.25, scale 2 (exact log-density)."""
    return Pinwheel()


def checkerboard() -> Checkerboard:
    """FFJORD's checkerboard: 8 dark squares of side 2 on [-4, 4]^2 (exact log-density)."""
    return Checkerboard()


@dataclass(frozen=True)
class FullCovarianceMixture:
    """Mixture of Gaussians with full covariances, sum_k w_k N(mu_k, Sigma_k): the clusters found in a reader's data
    (``fit_gaussian_mixture``) and the importance-sampling proposals built from them. Modes are identified by the
    most probable component (argmax_k w_k N(x; mu_k, Sigma_k))."""

    means: Tensor  # (K, d)
    covariances: Tensor  # (K, d, d)
    weights: Tensor  # (K,)

    def __post_init__(self) -> None:
        k, d = self.means.shape
        if self.covariances.shape != (k, d, d) or self.weights.shape != (k,):
            raise InputError("means (K, d), covariances (K, d, d) and weights (K,) must agree on K and d")
        check_weights("mixture weights", self.weights.tolist())
        object.__setattr__(self, "_cholesky", torch.linalg.cholesky(self.covariances))  # fails if not pos. definite

    @property
    def dim(self) -> int:
        return self.means.shape[1]

    @property
    def n_modes(self) -> int:
        return self.means.shape[0]

    def component_log_probs(self, x: Tensor) -> Tensor:
        """log w_k + log N(x; mu_k, Sigma_k) for every component, shape (n, K)."""
        chol = self._cholesky.to(x)
        centred = (x[None] - self.means.to(x)[:, None]).transpose(1, 2)  # (K, d, n)
        mahalanobis = torch.linalg.solve_triangular(chol, centred, upper=False).pow(2).sum(1).T  # (n, K)
        log_det = 2 * chol.diagonal(dim1=1, dim2=2).log().sum(1)
        return torch.log(self.weights.to(x)) - 0.5 * (mahalanobis + log_det + self.dim * math.log(2 * math.pi))

    def log_prob(self, x: Tensor) -> Tensor:
        return torch.logsumexp(self.component_log_probs(x), dim=1)

    def assign_mode(self, x: Tensor) -> Tensor:
        return self.component_log_probs(x).argmax(dim=1)

    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        check_int("number of samples", n)
        labels = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        noise = torch.randn(n, self.dim, 1, generator=generator)
        return self.means[labels] + (self._cholesky[labels] @ noise).squeeze(-1)

    def sample_with_log_prob(self, n: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        x = self.sample(n, generator)
        return x, self.log_prob(x)

    def widened(self, factor: float, broad_weight: float, broad_std: float) -> "FullCovarianceMixture":
        """A defensive importance-sampling proposal: every component's standard deviations times ``factor``, and one
        more component N(0, broad_std^2 I) of weight ``broad_weight`` (the others scaled by 1 - broad_weight)."""
        check_positive("factor", factor)
        check_probability("broad_weight", broad_weight)
        check_positive("broad_std", broad_std)
        eye = torch.eye(self.dim)[None] * broad_std**2
        return FullCovarianceMixture(torch.cat([self.means, torch.zeros(1, self.dim)]),
                                     torch.cat([self.covariances * factor**2, eye]),
                                     torch.cat([self.weights * (1 - broad_weight), torch.tensor([broad_weight])]))


def fit_gaussian_mixture(x: Tensor, max_components: int, seed: int) -> tuple[FullCovarianceMixture, dict[int, float]]:
    """Clusters of the points ``x`` (n, d): scikit-learn's Gaussian mixtures with full covariances and 1 ...
    ``max_components`` components (k-means initialisation, 3 restarts, random state ``seed``), the one of lowest BIC
    kept; components ordered by decreasing weight. Returns it and the BIC of every k."""
    from sklearn.mixture import GaussianMixture as ScikitMixture

    check_int("max_components", max_components)
    data = x.double().numpy()
    fits = {k: ScikitMixture(k, covariance_type="full", n_init=3, random_state=seed, reg_covar=1e-6).fit(data)
            for k in range(1, min(max_components, len(data) - 1) + 1)}
    bics = {k: float(fit.bic(data)) for k, fit in fits.items()}
    best = fits[min(bics, key=bics.get)]
    order = best.weights_.argsort()[::-1].copy()
    tensor = lambda a: torch.tensor(a[order], dtype=torch.float32)  # noqa: E731
    weights = tensor(best.weights_)
    return FullCovarianceMixture(tensor(best.means_), tensor(best.covariances_), weights / weights.sum()), bics
