"""One normalizing-flow class, lambda^rho_T(x) = rho(T^{-1}(x)) |J_{T^{-1}}(x)| (paper §1.4), built as the
RealNVP of the 2-D and high-dimensional experiments or as the image RealNVP of §3.5 (zuko's shape: one
``Flow``, small constructors that only parameterise its couplings).

Couplings are nflows' affine couplings with a scale that can expand (``ExpandingAffineCoupling``); every
coupling net ends at zero, so T = Id and lambda = rho at initialisation. The RealNVP's couplings alternate
two half masks (``AlternatingCouplings``): they are evaluated on the two halves of the features, without
re-assembling the vector between couplings, which is what small batches pay for (tensor operations, not
arithmetic).
"""
from __future__ import annotations

import math
from typing import Any

import torch
from nflows.nn.nets import ConvResidualNet
from nflows.transforms import AffineCouplingTransform, CompositeTransform, SqueezeTransform
from torch import Tensor, nn
from torch.autograd.function import once_differentiable
from torch.nn import functional as F

from ..checks import InputError, check_density, check_generator, check_int
from .bases import DiagonalGaussian, LogitGaussian
from .init import global_rng_untouched, initialize, zero_last

__all__ = ["Flow", "RealNVP", "ImageRealNVP", "ExpandingAffineCoupling", "CouplingMLP", "AlternatingCouplings"]


class ExpandingAffineCoupling(AffineCouplingTransform):
    """Affine coupling whose scale can expand as well as contract.

    nflows 0.14 uses ``sigmoid(s + 2) + 1e-3`` (always < 1.001 in the data-to-noise direction). Here
    scale = exp(bound · tanh(s / bound)): unconstrained near 0, bounded for numerical safety, and equal
    to 1 when the coupling net outputs 0 (identity at initialisation).
    """

    log_scale_bound: float = 3.0

    def _scale_and_shift(self, transform_params: Tensor) -> tuple[Tensor, Tensor]:
        log_scale, shift = self.log_scale_and_shift(transform_params)
        return torch.exp(log_scale), shift

    def log_scale_and_shift(self, transform_params: Tensor) -> tuple[Tensor, Tensor]:
        """log scale = bound · tanh(s / bound) and shift from the coupling net's output [shift | s]."""
        k = self.num_transform_features
        shift, unconstrained = transform_params.split_with_sizes((k, transform_params.shape[1] - k), dim=1)
        bound = self.log_scale_bound
        return bound * torch.tanh(unconstrained / bound), shift


class CouplingMLP(nn.Module):
    """Coupling network: ``n_hidden_layers`` hidden layers of ``hidden`` ReLU units; last layer at zero."""

    def __init__(self, n_in: int, n_out: int, hidden: int, n_hidden_layers: int) -> None:
        super().__init__()
        sizes = [n_in] + [hidden] * n_hidden_layers
        layers: list[nn.Module] = []
        for a, b in zip(sizes[:-1], sizes[1:]):
            layers += [nn.Linear(a, b), nn.ReLU()]
        self.net = nn.Sequential(*layers, zero_last(nn.Linear(sizes[-1], n_out)))

    def forward(self, x: Tensor, context: Tensor | None = None) -> Tensor:
        # the layers' functions called directly (the module-call machinery costs more than a small layer)
        layers = self.net._modules.values()
        for layer in layers:
            x = F.linear(x, layer.weight, layer.bias) if isinstance(layer, nn.Linear) else torch.relu_(x)
        return x


class AlternatingCouplings(CompositeTransform):
    """A composition of ``ExpandingAffineCoupling`` layers whose masks alternate: coupling i transforms the
    features j with (j + i) odd, conditioned on the others (RealNVP's masks). Same parameters, state dict and
    results as the plain composition (up to floating-point rounding), evaluated on the two halves (even and odd
    features): each coupling updates one half from the other, and the vector is assembled once at the end."""

    def __init__(self, couplings: list[ExpandingAffineCoupling]) -> None:
        super().__init__(couplings)
        dim = couplings[0].features
        for i, coupling in enumerate(couplings):
            expected = torch.arange(dim)[(torch.arange(dim) + i) % 2 == 1]
            if coupling.features != dim or not torch.equal(coupling.transform_features.cpu(), expected):
                raise InputError(f"AlternatingCouplings: coupling {i} does not transform the features (j + {i}) odd")
        self.dim = dim

    def gaussian_log_prob(self, inputs: Tensor, std: Tensor) -> Tensor | None:
        """log N(T^{-1}(x); 0, std^2 I) + log|det| as one autograd node when the couplings can be fused (else
        None): the flow's log-density on a ``DiagonalGaussian`` base, for training."""
        fused = self._fused_layout()
        if fused is None or std.requires_grad:
            return None
        layout, layers = fused
        params = [t for layer in layers for t in layer._parameters.values()]  # weight, bias
        return _FusedGaussianLogProb.apply(layout, std**2, inputs, *params)

    def _fused_layout(self) -> tuple[tuple[int, float, int], list[nn.Linear]] | None:
        """(layout, linear layers) when every coupling net is a ``CouplingMLP`` of the same depth and every
        coupling has the same bound (then ``_FusedCouplings`` applies), else None; kept while the nets are."""
        nets = [coupling.transform_net for coupling in self._transforms]
        cached = self.__dict__.get("_fused")
        if cached is None or len(cached[0]) != len(nets) or any(a is not b for a, b in zip(cached[0], nets)):
            layers = [_linear_layers(net) for net in nets]
            bounds = {coupling.log_scale_bound for coupling in self._transforms}
            fused = None
            if all(layers) and len({len(ls) for ls in layers}) == 1 and len(bounds) == 1:
                fused = ((self.dim, bounds.pop(), len(layers[0])), [layer for ls in layers for layer in ls])
            cached = (nets, fused)
            self.__dict__["_fused"] = cached
        return cached[1]

    def _halves(self, inputs: Tensor) -> list[Tensor]:
        return [inputs[:, 0::2], inputs[:, 1::2]]

    def _assemble(self, halves: list[Tensor]) -> Tensor:
        return _interleave(halves, self.dim)

    def forward(self, inputs: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Data to latent: in coupling i, h_t <- h_t · scale + shift with (log scale, shift) = net(h_c)."""
        fused = self._fused_layout()
        if fused is not None:
            layout, layers = fused
            params = [t for layer in layers for t in layer._parameters.values()]  # weight, bias
            if torch.is_grad_enabled():
                return _FusedCouplings.apply(layout, inputs, *params)
            halves, _, logdet = _couplings_forward(layout, inputs, params)
            return _interleave(halves, self.dim), logdet
        halves, log_scales = self._halves(inputs), []
        for i, coupling in enumerate(self._transforms):
            t = 1 - i % 2  # coupling i transforms the odd features when i is even
            log_scale, shift = coupling.log_scale_and_shift(coupling.transform_net(halves[1 - t]))
            halves[t] = torch.addcmul(shift, halves[t], torch.exp(log_scale))
            log_scales.append(log_scale)
        return self._assemble(halves), torch.cat(log_scales, dim=1).sum(1)

    def inverse(self, inputs: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Latent to data: the couplings in reverse order, h_t <- (h_t - shift) / scale."""
        fused = None if torch.is_grad_enabled() else self._fused_layout()
        if fused is not None:  # no graph (sampling): the layers' functions directly
            layout, layers = fused
            return _couplings_inverse(layout, inputs, [t for layer in layers for t in layer._parameters.values()])
        halves, log_scales = self._halves(inputs), []
        for i in reversed(range(len(self._transforms))):
            coupling = self._transforms[i]
            t = 1 - i % 2
            log_scale, shift = coupling.log_scale_and_shift(coupling.transform_net(halves[1 - t]))
            halves[t] = (halves[t] - shift) / torch.exp(log_scale)
            log_scales.append(log_scale)
        return self._assemble(halves), -torch.cat(log_scales, dim=1).sum(1)


def _linear_layers(net: nn.Module) -> list[nn.Linear] | None:
    """The linear layers of a ``CouplingMLP`` (Linear, ReLU, ..., Linear, all with biases), else None."""
    if type(net) is not CouplingMLP:
        return None
    layers = list(net.net)
    linear = layers[0::2]
    if (not all(type(m) is nn.Linear and m.bias is not None for m in linear)
            or not all(type(m) is nn.ReLU for m in layers[1::2]) or len(layers) % 2 == 0):
        return None
    return linear


def _couplings_forward(layout: tuple[int, float, int], inputs: Tensor,
                       params: tuple[Tensor, ...]) -> tuple[list[Tensor], list[Tensor], Tensor]:
    """The couplings operator by operator, no graph: the final halves, what the backward pass needs, log det."""
    dim, bound, depth = layout
    halves = [inputs[:, 0::2], inputs[:, 1::2]]
    saved, log_scales = [], []
    for i in range(len(params) // (2 * depth)):
        t = 1 - i % 2
        h = halves[1 - t]
        weights = params[2 * depth * i: 2 * depth * (i + 1)]
        saved.append(h)
        for j in range(depth):
            h = F.linear(h, weights[2 * j], weights[2 * j + 1])
            if j < depth - 1:
                h = torch.relu_(h)
                saved.append(h)
        k = halves[t].shape[1]
        shift, unconstrained = h.split_with_sizes((k, h.shape[1] - k), dim=1)
        tanh = torch.tanh(unconstrained / bound)
        log_scale = bound * tanh
        scale = torch.exp(log_scale)
        saved += [halves[t], tanh, scale]
        halves[t] = torch.addcmul(shift, halves[t], scale)
        log_scales.append(log_scale)
    return halves, saved, torch.cat(log_scales, dim=1).sum(1)


def _couplings_inverse(layout: tuple[int, float, int], inputs: Tensor,
                       params: list[Tensor]) -> tuple[Tensor, Tensor]:
    """The couplings from latent to data, operator by operator, no graph: x and log|det dT/dz|."""
    dim, bound, depth = layout
    halves = [inputs[:, 0::2], inputs[:, 1::2]]
    log_scales = []
    for i in reversed(range(len(params) // (2 * depth))):
        t = 1 - i % 2
        h = halves[1 - t]
        weights = params[2 * depth * i: 2 * depth * (i + 1)]
        for j in range(depth):
            h = F.linear(h, weights[2 * j], weights[2 * j + 1])
            if j < depth - 1:
                h = torch.relu_(h)
        k = halves[t].shape[1]
        shift, unconstrained = h.split_with_sizes((k, h.shape[1] - k), dim=1)
        log_scale = bound * torch.tanh(unconstrained / bound)
        halves[t] = (halves[t] - shift) / torch.exp(log_scale)
        log_scales.append(log_scale)
    return _interleave(halves, dim), -torch.cat(log_scales, dim=1).sum(1)


def _couplings_backward(layout: tuple[int, float, int], params: tuple[Tensor, ...], saved: tuple[Tensor, ...],
                        grads: list[Tensor], grad_logdet: Tensor, input_grad: bool) -> tuple[list[Tensor], list]:
    """The written-out backward pass of ``_couplings_forward``: gradients of the two input halves (when
    ``input_grad``) and of every parameter, from those of the final halves and of log det."""
    _, _, depth = layout
    n_couplings = len(params) // (2 * depth)
    per = depth + 3  # saved per coupling: the inputs of its linear layers, the transformed half, tanh, scale
    grad_logdet = grad_logdet.unsqueeze(1)
    grad_params: list[Tensor | None] = [None] * len(params)
    for i in reversed(range(n_couplings)):
        t = 1 - i % 2
        acts = saved[per * i: per * i + depth]
        transformed, tanh, scale = saved[per * i + depth: per * (i + 1)]
        grad_out = grads[t]
        grads[t] = grad_out * scale
        # log scale feeds the scale (exp) and the log-determinant; d log scale / d s = 1 - tanh^2
        grad_log_scale = torch.addcmul(grad_logdet, grads[t], transformed)
        grad_unconstrained = torch.addcmul(grad_log_scale, grad_log_scale * tanh, tanh, value=-1)
        grad_h = torch.cat((grad_out, grad_unconstrained), dim=1)
        for j in reversed(range(depth)):
            index = 2 * depth * i + 2 * j
            if j < depth - 1:  # through the ReLU whose output is acts[j + 1]
                grad_h = torch.ops.aten.threshold_backward(grad_h, acts[j + 1], 0)
            grad_params[index] = grad_h.t().mm(acts[j])
            grad_params[index + 1] = grad_h.sum(0)
            if j > 0 or i > 0 or input_grad:
                grad_h = grad_h.mm(params[index])
        if i > 0 or input_grad:
            grads[1 - t] = grads[1 - t] + grad_h
    return grads, grad_params


class _FusedCouplings(torch.autograd.Function):
    """``AlternatingCouplings.forward`` of MLP couplings as one autograd node: the forward pass computes
    exactly what the operator-by-operator path computes, and the backward pass is written out (about a third of
    the tensor operations of autograd's ~70 nodes; a small batch costs per operation, not per number).
    Checked against autograd by ``torch.autograd.gradcheck`` in the tests; not twice differentiable."""

    @staticmethod
    def forward(ctx, layout: tuple[int, float, int], inputs: Tensor, *params: Tensor) -> tuple[Tensor, Tensor]:
        halves, saved, logdet = _couplings_forward(layout, inputs, params)
        ctx.layout = layout
        ctx.save_for_backward(*params, *saved)
        return _interleave(halves, layout[0]), logdet

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_z: Tensor, grad_logdet: Tensor) -> tuple:
        n_params = len(ctx.saved_tensors) // (3 * ctx.layout[2] + 3) * 2 * ctx.layout[2]
        params, saved = ctx.saved_tensors[:n_params], ctx.saved_tensors[n_params:]
        grads, grad_params = _couplings_backward(ctx.layout, params, saved, [grad_z[:, 0::2], grad_z[:, 1::2]],
                                                 grad_logdet, ctx.needs_input_grad[1])
        return (None, _interleave(grads, ctx.layout[0]) if ctx.needs_input_grad[1] else None, *grad_params)


class _FusedGaussianLogProb(torch.autograd.Function):
    """log lambda(x) = log N(z; 0, var I) + log det of the couplings, as one autograd node (the flow's
    maximum-likelihood step on a ``DiagonalGaussian`` base): as ``_FusedCouplings``, without assembling z."""

    @staticmethod
    def forward(ctx, layout: tuple[int, float, int], var: Tensor, inputs: Tensor, *params: Tensor) -> Tensor:
        halves, saved, logdet = _couplings_forward(layout, inputs, params)
        squares = torch.linalg.vecdot(halves[0], halves[0]) + torch.linalg.vecdot(halves[1], halves[1])
        ctx.layout = layout
        ctx.save_for_backward(var, *halves, *params, *saved)
        log_normaliser = 0.5 * layout[0] * torch.log(2 * math.pi * var)
        return torch.addcdiv(logdet - log_normaliser, squares, var, value=-0.5)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_log_prob: Tensor) -> tuple:
        var, even, odd, *rest = ctx.saved_tensors
        n_params = len(rest) // (3 * ctx.layout[2] + 3) * 2 * ctx.layout[2]
        coefficient = (grad_log_prob / var).neg_().unsqueeze(1)  # d log N / dz = -z / var
        grads, grad_params = _couplings_backward(ctx.layout, tuple(rest[:n_params]), tuple(rest[n_params:]),
                                                 [coefficient * even, coefficient * odd], grad_log_prob,
                                                 ctx.needs_input_grad[2])
        return (None, None, _interleave(grads, ctx.layout[0]) if ctx.needs_input_grad[2] else None, *grad_params)


def _interleave(halves: list[Tensor], dim: int) -> Tensor:
    """(n, ceil(d/2)) even features and (n, floor(d/2)) odd ones -> (n, d)."""
    even, odd = halves
    if even.shape[1] == odd.shape[1]:
        return torch.stack((even, odd), dim=2).view(len(even), dim)
    out = even.new_empty(len(even), dim)
    out[:, 0::2], out[:, 1::2] = even, odd
    return out


class Flow(nn.Module):
    """A flow lambda on flattened data (n, D), with ``base`` the density rho it equals at initialisation.

    ``transform`` maps data (viewed as ``event_shape``) to the latent space (nflows' convention) after an
    optional fixed ``preprocessing`` bijection; the latent base is ``latent`` (= ``base`` when there is no
    preprocessing). ``sizes`` records the constructor's arguments (couplings, hidden units, ...).
    """

    def __init__(self, transform: CompositeTransform, base: nn.Module, *, event_shape: tuple[int, ...],
                 latent_shape: tuple[int, ...], latent: DiagonalGaussian | None = None,
                 preprocessing: nn.Module | None = None, sizes: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.transform = transform
        self.base = base
        self.latent = latent if latent is not None else base
        self.preprocessing = preprocessing
        self.event_shape = tuple(event_shape)
        self.latent_shape = tuple(latent_shape)
        self.sizes = dict(sizes or {})

    @property
    def dim(self) -> int:
        return math.prod(self.event_shape)

    def to_latent(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """z = T^{-1}(x) flattened, and log|det dT^{-1}/dx| (preprocessing included)."""
        if self.preprocessing is None:
            z, logdet = self.transform(x.reshape(-1, *self.event_shape))
            return z.flatten(1), logdet
        x, logdet_pre = self.preprocessing(x)
        z, logdet = self.transform(x.reshape(-1, *self.event_shape))
        return z.flatten(1), logdet + logdet_pre

    def from_latent(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """x = T(z) flattened, and log|det dT/dz| (preprocessing included)."""
        y, logdet = self.transform.inverse(z.reshape(-1, *self.latent_shape))
        y = y.flatten(1)
        if self.preprocessing is None:
            return y, logdet
        x, logdet_post = self.preprocessing.inverse(y)
        return x, logdet + logdet_post

    def log_prob(self, x: Tensor) -> Tensor:
        if (self.preprocessing is None and torch.is_grad_enabled() and type(self.latent) is DiagonalGaussian
                and isinstance(self.transform, AlternatingCouplings)):
            log_prob = self.transform.gaussian_log_prob(x.reshape(-1, *self.event_shape), self.latent.std)
            if log_prob is not None:
                return log_prob
        z, logdet = self.to_latent(x)
        return self.latent.log_prob(z) + logdet

    def sample_with_log_prob(self, n: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        z, log_latent = self.latent.sample_with_log_prob(n, generator)
        x, logdet = self.from_latent(z)
        return x, log_latent - logdet

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        """n samples carrying no graph (chain starts)."""
        check_int("number of samples", n, minimum=0)
        check_generator(generator)
        return self.sample_with_log_prob(n, generator)[0]

    def n_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


def RealNVP(base: DiagonalGaussian, n_couplings: int = 4, hidden: int = 16, n_hidden_layers: int = 3, *,
            generator: torch.Generator) -> Flow:
    """RealNVP (Dinh et al. 2017) on R^d with base ``base``: ``n_couplings`` affine couplings with alternating
    half masks and MLP coupling nets (paper: 4 couplings of 3 × 16 units in 2-D, Table 6 in high dimension)."""
    for name, value in {"n_couplings": n_couplings, "hidden": hidden, "n_hidden_layers": n_hidden_layers}.items():
        check_int(f"RealNVP {name}", value)
    check_density("RealNVP base", base)
    dim = getattr(base, "dim", None)
    if not isinstance(dim, int):
        raise InputError(f"RealNVP base must have an integer dim (e.g. DiagonalGaussian(2)), got "
                         f"{type(base).__name__} with dim {dim!r}")
    if dim < 2:
        raise InputError(f"coupling flows need a dimension >= 2, got a base of dimension {dim}")
    with global_rng_untouched():
        couplings = [ExpandingAffineCoupling((torch.arange(dim) + i) % 2,
                                             lambda n_in, n_out: CouplingMLP(n_in, n_out, hidden, n_hidden_layers))
                     for i in range(n_couplings)]
    flow = Flow(AlternatingCouplings(couplings), base, event_shape=(dim,), latent_shape=(dim,),
                sizes={"n_couplings": n_couplings, "hidden": hidden, "n_hidden_layers": n_hidden_layers})
    return initialize(flow, generator)


def _channel_masks(channels: int) -> list[Tensor]:
    """Four complementary masks over the 4C squeezed channels: each mixes the pixels of a 2×2 block and the
    colour channels."""
    index = torch.arange(4 * channels)
    return [(index % 2 == 0).int(), (index % 2 == 1).int(), (index % 4 < 2).int(), (index % 4 >= 2).int()]


def ImageRealNVP(tilt: LogitGaussian, n_couplings: int = 8, hidden: int = 64, n_blocks: int = 6, *,
                 generator: torch.Generator) -> Flow:
    """RealNVP for images (paper §3.5): the fixed affine + logit layers of ``tilt``, one squeeze
    (C, H, W) -> (4C, H/2, W/2), then ``n_couplings`` affine couplings with convolutional residual nets
    (``n_blocks`` blocks of ``hidden`` channels, no batch norm so the density does not depend on train/eval
    mode) alternating four channel masks. The flow equals ``tilt`` at initialisation."""
    for name, value in {"n_couplings": n_couplings, "hidden": hidden, "n_blocks": n_blocks}.items():
        check_int(f"ImageRealNVP {name}", value)
    if not isinstance(tilt, LogitGaussian):
        raise InputError(f"ImageRealNVP tilt must be a LogitGaussian(image_shape), got {type(tilt).__name__}")
    channels, height, width = tilt.image_shape
    if height % 2 or width % 2:
        raise InputError(f"ImageRealNVP squeezes 2×2 blocks: image sides must be even, got {tilt.image_shape}")
    masks = _channel_masks(channels)

    def coupling_net(n_in: int, n_out: int) -> nn.Module:
        net = ConvResidualNet(n_in, n_out, hidden_channels=hidden, num_blocks=n_blocks)
        zero_last(net.final_layer)
        return net

    with global_rng_untouched():
        layers = [SqueezeTransform()] + [ExpandingAffineCoupling(masks[i % 4], coupling_net)
                                         for i in range(n_couplings)]
    flow = Flow(CompositeTransform(layers), tilt, event_shape=tilt.image_shape,
                latent_shape=(4 * channels, height // 2, width // 2), latent=tilt.latent,
                preprocessing=tilt.preprocessing,
                sizes={"n_couplings": n_couplings, "hidden": hidden, "n_blocks": n_blocks})
    return initialize(flow, generator)

