"""OpenCV's ``DualTVL1OpticalFlow`` in PyTorch, batched over frame pairs, on CUDA or CPU.

Step for step the algorithm of opencv_contrib ``optflow/src/tvl1flow.cpp`` (Zach-Pock-Bischof, the
flow TSN used) with its defaults: a pyramid made by bilinear ``resize`` by ``scale_step`` (OpenCV's
sizes and sample positions, no smoothing), per scale ``warps`` warps by bicubic ``remap`` (OpenCV's
1/32-pixel grid, A = -0.75, zero outside the image), then outer iterations that start with a 5x5
median of the flow and inner primal-dual iterations, both stopped per pair as soon as the summed
squared update falls below ``epsilon^2 * area``. Each pair keeps its own stopping point inside a
batch (pairs that stopped are frozen), so a batch gives the flow of each pair alone.

On CUDA the inner iteration is one fused Triton kernel (``tvl1_triton``); on CPU it is plain torch.

``TVL1Params(state_dtype="float16")`` (``extract-flow --half-state``) stores the iteration state
(u1, u2 and the four dual planes) in half precision and keeps every operation in float32: values are
upcast on read and rounded on write, which nearly halves the fused kernel's memory traffic. The
warp constants stay float32. Its distance from OpenCV's flow is in BENCHMARKS.md.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from ..errors import BadConfig
from .counters import count, counting


@dataclass(frozen=True)
class TVL1Params:
    """OpenCV's defaults (``cv2.optflow.DualTVL1OpticalFlow_create()``)."""
    tau: float = 0.25
    lambda_: float = 0.15
    theta: float = 0.3
    nscales: int = 5
    warps: int = 5
    epsilon: float = 0.01
    inner: int = 30
    outer: int = 10
    scale_step: float = 0.8
    median: int = 5
    state_dtype: str = "float32"  # storage of u1, u2, p11..p22; arithmetic is float32 either way

    def __post_init__(self):
        if self.state_dtype not in STATE_DTYPES:
            raise BadConfig(f"TVL1Params.state_dtype {self.state_dtype!r}: choose from {', '.join(STATE_DTYPES)}")

    @property
    def torch_state_dtype(self) -> torch.dtype:
        """The torch dtype the iteration state is stored in."""
        return STATE_DTYPES[self.state_dtype]


STATE_DTYPES = {"float32": torch.float32, "float16": torch.float16}

# ------------------------------------------------------------------ OpenCV's resampling
def _round_half_even_size(n: int, scale: float) -> int:
    # cv::resize with an empty dsize: saturate_cast<int>(n * scale), i.e. round half to even.
    return int(round(n * scale))


def pyramid_sizes(h: int, w: int, p: TVL1Params) -> list[tuple[int, int]]:
    """OpenCV's pyramid level sizes for an (h, w) image, finest first."""
    sizes = [(h, w)]
    for _ in range(1, p.nscales):
        nh, nw = _round_half_even_size(sizes[-1][0], p.scale_step), _round_half_even_size(sizes[-1][1], p.scale_step)
        if nw < 16 or nh < 16:  # OpenCV drops the scales below 16 pixels
            break
        sizes.append((nh, nw))
    return sizes


def linear_matrix(n_in: int, n_out: int, src_per_dst: float, device) -> torch.Tensor:
    """(n_out, n_in) weights of OpenCV's INTER_LINEAR along one axis (clamped at the borders)."""
    d = torch.arange(n_out, dtype=torch.float64)
    f = ((d + 0.5) * src_per_dst - 0.5).float().double()  # OpenCV computes fx in double, stores float
    s = torch.floor(f)
    frac = f - s
    s = s.long()
    low = s < 0
    high = s >= n_in - 1
    frac[low | high] = 0.0
    s = torch.where(low, torch.zeros_like(s), torch.where(high, torch.full_like(s, n_in - 1), s))
    m = torch.zeros(n_out, n_in, dtype=torch.float64)
    rows = torch.arange(n_out)
    m[rows, s] += 1.0 - frac
    m[rows, torch.clamp(s + 1, max=n_in - 1)] += frac
    return m.float().to(device)


def resize_linear(img: torch.Tensor, size: tuple[int, int], src_per_dst: tuple[float, float]) -> torch.Tensor:
    """Bilinear resize of (B, H, W) as OpenCV does it: two interpolation matrices."""
    h, w = img.shape[-2:]
    my = linear_matrix(h, size[0], src_per_dst[0], img.device)
    mx = linear_matrix(w, size[1], src_per_dst[1], img.device)
    return my @ img @ mx.T


def centered_gradient(img: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """x and y central differences of (B, H, W) images, as OpenCV's TV-L1 takes them."""
    # OpenCV's border rows/columns use one-sided halves, which is a replicated border.
    pad = F.pad(img[:, None], (1, 1, 1, 1), mode="replicate")[:, 0]
    dx = 0.5 * (pad[:, 1:-1, 2:] - pad[:, 1:-1, :-2])
    dy = 0.5 * (pad[:, 2:, 1:-1] - pad[:, :-2, 1:-1])
    return dx, dy


def _cubic_weights(t: torch.Tensor) -> list[torch.Tensor]:
    a = -0.75
    w0 = ((a * (t + 1) - 5 * a) * (t + 1) + 8 * a) * (t + 1) - 4 * a
    w1 = ((a + 2) * t - (a + 3)) * t * t + 1
    w2 = ((a + 2) * (1 - t) - (a + 3)) * (1 - t) * (1 - t) + 1
    return [w0, w1, w2, 1.0 - w0 - w1 - w2]


def remap_cubic(images: list[torch.Tensor], u1: torch.Tensor, u2: torch.Tensor) -> list[torch.Tensor]:
    """``cv::remap(img, x + u1, y + u2, INTER_CUBIC)`` for each (B, H, W) image, border value 0."""
    b, h, w = u1.shape
    ys = torch.arange(h, device=u1.device, dtype=u1.dtype)[:, None]
    xs = torch.arange(w, device=u1.device, dtype=u1.dtype)[None, :]
    # OpenCV turns float maps into integer + 1/32 fractions with cvRound.
    qx = torch.round((xs + u1) * 32).long()
    qy = torch.round((ys + u2) * 32).long()
    ix, iy = torch.div(qx, 32, rounding_mode="floor"), torch.div(qy, 32, rounding_mode="floor")
    wx = _cubic_weights((qx - ix * 32).to(u1.dtype) / 32)
    wy = _cubic_weights((qy - iy * 32).to(u1.dtype) / 32)
    base = (torch.arange(b, device=u1.device) * (h * w))[:, None, None]
    flat = [im.reshape(-1) for im in images]
    out = [torch.zeros_like(u1) for _ in images]
    for k in range(4):
        y = iy + (k - 1)
        yok = (y >= 0) & (y < h)
        row = [torch.zeros_like(u1) for _ in images]
        for j in range(4):
            x = ix + (j - 1)
            ok = yok & (x >= 0) & (x < w)
            idx = (base + y.clamp(0, h - 1) * w + x.clamp(0, w - 1)).reshape(-1)
            for r, f in zip(row, flat, strict=True):
                r += torch.where(ok, f[idx].view(b, h, w), 0.0) * wx[j]
        for o, r in zip(out, row, strict=True):
            o += r * wy[k]
    return out


def median_blur(u: torch.Tensor, k: int) -> torch.Tensor:
    """``cv::medianBlur`` on float (B, H, W): k x k median, replicated border."""
    r = k // 2
    pad = F.pad(u[:, None], (r, r, r, r), mode="replicate")
    patches = F.unfold(pad, k)  # (B, k*k, H*W)
    return patches.median(dim=1).values.view_as(u)


# ------------------------------------------------------------------ one inner iteration (torch)
def inner_step(c: torch.Tensor, u1, u2, p11, p12, p21, p22, l_t: float, theta: float, taut: float):
    """estimateV, divergence, estimateU, forwardGradient, estimateDualVariables, given ``c``
    (3, B, H, W: I1wx, I1wy, rho_c); returns the new (u1, u2, p11, p12, p21, p22) and each pair's
    summed squared update of u."""
    ix, iy, rho_c = c[0], c[1], c[2]
    grad = ix * ix + iy * iy
    rho = rho_c + (ix * u1 + iy * u2)
    lg = l_t * grad
    fi = torch.where(grad > torch.finfo(torch.float32).eps, -rho / grad.clamp_min(1e-30), 0.0)
    fi = torch.where(rho < -lg, l_t, torch.where(rho > lg, -l_t, fi))
    v1, v2 = u1 + fi * ix, u2 + fi * iy
    div1 = p11 - F.pad(p11[:, :, :-1], (1, 0)) + p12 - F.pad(p12[:, :-1, :], (0, 0, 1, 0))
    div2 = p21 - F.pad(p21[:, :, :-1], (1, 0)) + p22 - F.pad(p22[:, :-1, :], (0, 0, 1, 0))
    n1, n2 = v1 + theta * div1, v2 + theta * div2
    err = ((n1 - u1) ** 2 + (n2 - u2) ** 2).sum(dim=(1, 2))
    u1x = F.pad(n1[:, :, 1:] - n1[:, :, :-1], (0, 1))
    u1y = F.pad(n1[:, 1:, :] - n1[:, :-1, :], (0, 0, 0, 1))
    u2x = F.pad(n2[:, :, 1:] - n2[:, :, :-1], (0, 1))
    u2y = F.pad(n2[:, 1:, :] - n2[:, :-1, :], (0, 0, 0, 1))
    ng1 = 1.0 + taut * torch.hypot(u1x, u1y)
    ng2 = 1.0 + taut * torch.hypot(u2x, u2y)
    return (n1, n2, (p11 + taut * u1x) / ng1, (p12 + taut * u1y) / ng1, (p21 + taut * u2x) / ng2,
            (p22 + taut * u2y) / ng2), err


def _run_warp_torch(c: torch.Tensor, state: torch.Tensor, p: TVL1Params, eps_sum: float) -> torch.Tensor:
    l_t, taut = p.lambda_ * p.theta, p.tau / p.theta
    dtype = state.dtype
    # held in float32; with a float16 state every value written is rounded to float16 (exactly what
    # storing it in float16 and upcasting on read gives)
    rnd = (lambda t: t.to(dtype).float()) if dtype != torch.float32 else (lambda t: t)
    # the six planes u1, u2, p11, p12, p21, p22, each (B, H, W)
    parts: tuple[torch.Tensor, ...] = tuple(state.float())
    active = torch.ones(parts[0].shape[0], dtype=torch.bool, device=parts[0].device)
    hw = parts[0].shape[1] * parts[0].shape[2]
    for _ in range(p.outer):
        if not bool(active.any()):
            break
        if p.median > 1:
            t0 = time.perf_counter() if counting() else 0.0
            m = active[:, None, None]
            parts = (torch.where(m, median_blur(parts[0], p.median), parts[0]),
                     torch.where(m, median_blur(parts[1], p.median), parts[1])) + parts[2:]
            if counting():
                count("median", int(active.sum()) * hw)
                count("median_s", time.perf_counter() - t0)
        for _ in range(p.inner):
            if not bool(active.any()):
                break
            t0 = time.perf_counter() if counting() else 0.0
            u1, u2, p11, p12, p21, p22 = parts
            new, err = inner_step(c, u1, u2, p11, p12, p21, p22, l_t, p.theta, taut)
            m = active[:, None, None]
            parts = tuple(torch.where(m, rnd(n), o) for n, o in zip(new, parts, strict=True))
            if counting():
                count("inner", int(active.sum()) * hw)
                count("inner_s", time.perf_counter() - t0)
            active = active & (err > eps_sum)
    return torch.stack(parts).to(dtype)


def warp_constants(i0: torch.Tensor, img: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
    """(3, B, H, W): I1wx, I1wy and rho_c (calcGradRho) after warping I1, I1x, I1y (``img``) by the flow."""
    u1, u2 = state[0].float(), state[1].float()
    i1w, ix, iy = remap_cubic(list(img), u1, u2)
    return torch.stack([ix, iy, i1w - ix * u1 - iy * u2 - i0])


def tvl1(i0: torch.Tensor, i1: torch.Tensor, params: TVL1Params = TVL1Params(),
         fused: bool | None = None) -> torch.Tensor:
    """Flow from ``i0`` to ``i1`` ((B, H, W) grey levels 0..255, any float or uint8 dtype), (B, H, W, 2)
    float32 in pixels. ``fused``: use the Triton kernels (default: on CUDA). ``params.state_dtype``:
    how the iteration state is stored (arithmetic is float32)."""
    if i0.shape != i1.shape or i0.dim() != 3:
        raise BadConfig(f"tvl1: need two (B, H, W) batches of the same shape, got {tuple(i0.shape)} and "
                        f"{tuple(i1.shape)}")
    fused = i0.is_cuda if fused is None else fused
    make_constants: Callable[..., torch.Tensor]
    run_warp: Callable[..., torch.Tensor]
    if fused:
        from . import tvl1_triton
        make_constants, run_warp = tvl1_triton.warp_constants, tvl1_triton.run_warp
    else:
        make_constants, run_warp = warp_constants, _run_warp_torch
    p = params
    sizes = pyramid_sizes(i0.shape[-2], i0.shape[-1], p)
    i0s, i1s = [i0.float()], [i1.float()]
    for s in range(1, len(sizes)):
        step = (1 / p.scale_step, 1 / p.scale_step)
        i0s.append(resize_linear(i0s[-1], sizes[s], step))
        i1s.append(resize_linear(i1s[-1], sizes[s], step))
    b = i0.shape[0]
    u = torch.zeros(2, b, *sizes[-1], device=i0.device)
    for s in range(len(sizes) - 1, -1, -1):
        h, w = sizes[s]
        img = torch.stack([i1s[s], *centered_gradient(i1s[s])]).contiguous()
        i0c = i0s[s].contiguous()
        sdt = p.torch_state_dtype
        state = torch.cat([u.to(sdt), torch.zeros(4, b, h, w, device=u.device, dtype=sdt)]).contiguous()
        eps_sum = p.epsilon * p.epsilon * h * w
        for _ in range(p.warps):
            state = run_warp(make_constants(i0c, img, state), state, p, eps_sum)
        u = state[:2].float()
        if s > 0:
            hn, wn = sizes[s - 1]
            # dsize given: OpenCV samples at the size ratio, then the flow is scaled by 1/scale_step
            u = resize_linear(u.reshape(2 * b, h, w), (hn, wn), (h / hn, w / wn)).view(2, b, hn, wn)
            u = u * (1 / p.scale_step)
    return u.permute(1, 2, 3, 0).contiguous()


def quantise(flow: torch.Tensor, bound: float) -> torch.Tensor:
    """TSN encoding on the device, the same numbers as ``contract.encode_flow``: (..., 2) -> uint8."""
    return torch.round(255.0 * (flow.clamp(-bound, bound) + bound) / (2.0 * bound)).to(torch.uint8)
