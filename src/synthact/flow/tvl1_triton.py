"""Fused Triton kernels for ``tvl1_torch`` on CUDA: one launch per inner iteration, per warp, per median.

Memory traffic is what limits TV-L1 on a GPU, so each inner iteration (estimateV, divergence,
estimateU, forward gradient, dual update) is one kernel that reads the state once and writes it
once: the new flow at a pixel's right and lower neighbours, needed for the forward gradient, is
recomputed from the old state instead of being written and read back. State ping-pongs between
two buffers; each pair's summed squared update is accumulated in a ring of three per-pair
counters (read the last, add into the next, clear the one after), so a pair whose update fell
below ``epsilon^2 * area`` stops on the device without the host waiting; ``last[b]`` says which
buffer holds pair b's newest state. Every few iterations the host drops the stopped pairs from the
launch grid (``pairs`` lists the pairs still iterating), so a batch costs what its live pairs cost.

The state may be stored in float16 (``TVL1Params.state_dtype``): the kernels load it, upcast to
float32, compute in float32 and store rounded to the buffers' dtype (Triton's store casts to the
pointer's type), so the same kernels serve both. :func:`bytes_per_pixel` is the memory traffic
each kernel must move, for the achieved-bandwidth figure of ``bench/flow_torch.py --profile``.

``TRITON_INTERPRET=1`` runs the same kernels on CPU tensors (the tests do).
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from . import counters

BLOCK = 256
CHECK_EVERY = 4  # host checks "all pairs stopped" every few iterations: a sync costs a launch or two


@triton.jit
def _unew(ct, st, pt, o, x, y, ok, W, PLANE, l_t, theta):
    """New (u1, u2) at flat offsets ``o`` (valid where ``ok``): estimateV, then u = v + theta div p."""
    ix = tl.load(ct + o, mask=ok, other=0.0)
    iy = tl.load(ct + PLANE + o, mask=ok, other=0.0)
    rho_c = tl.load(ct + 2 * PLANE + o, mask=ok, other=0.0)
    u1 = tl.load(st + o, mask=ok, other=0.0).to(tl.float32)
    u2 = tl.load(st + PLANE + o, mask=ok, other=0.0).to(tl.float32)
    grad = ix * ix + iy * iy
    rho = rho_c + (ix * u1 + iy * u2)
    lg = l_t * grad
    fi = tl.where(grad > 1.1920928955078125e-07, -rho / tl.where(grad > 0.0, grad, 1.0), 0.0)
    fi = tl.where(rho < -lg, l_t, tl.where(rho > lg, -l_t, fi))
    v1 = u1 + fi * ix
    v2 = u2 + fi * iy
    left = ok & (x > 0)
    up = ok & (y > 0)
    p11 = tl.load(pt + o, mask=ok, other=0.0).to(tl.float32)
    p12 = tl.load(pt + PLANE + o, mask=ok, other=0.0).to(tl.float32)
    p21 = tl.load(pt + 2 * PLANE + o, mask=ok, other=0.0).to(tl.float32)
    p22 = tl.load(pt + 3 * PLANE + o, mask=ok, other=0.0).to(tl.float32)
    div1 = (p11 - tl.load(pt + o - 1, mask=left, other=0.0).to(tl.float32)
            + p12 - tl.load(pt + PLANE + o - W, mask=up, other=0.0).to(tl.float32))
    div2 = (p21 - tl.load(pt + 2 * PLANE + o - 1, mask=left, other=0.0).to(tl.float32)
            + p22 - tl.load(pt + 3 * PLANE + o - W, mask=up, other=0.0).to(tl.float32))
    return v1 + theta * div1, v2 + theta * div2, u1, u2, p11, p12, p21, p22


@triton.jit
def _inner_kernel(c_ptr, u_src, p_src, dst, err_ring, pairs, last, iters, it, H, W, HW, PLANE, l_t, theta, taut,
                  eps_sum, BLOCK: tl.constexpr, COUNT: tl.constexpr):
    b = tl.load(pairs + tl.program_id(1))
    pid = tl.program_id(0)
    r_in = it % 3
    r_out = (it + 1) % 3
    r_clear = (it + 2) % 3
    B = PLANE // HW
    e_in = tl.load(err_ring + r_in * B + b)
    if e_in <= eps_sum:  # this pair has stopped: carry its error forward
        if pid == 0:
            tl.store(err_ring + r_out * B + b, e_in)
    else:
        if pid == 0:
            tl.store(err_ring + r_clear * B + b, 0.0)
            tl.store(last + b, (it + 1) % 2)
            if COUNT:  # iterations this pair executed (bench: bytes moved)
                tl.atomic_add(iters + b, 1)
        offs = pid * BLOCK + tl.arange(0, BLOCK)
        ok = offs < HW
        y = offs // W
        x = offs - y * W
        o = b * HW + offs
        ct = c_ptr
        n1, n2, u1, u2, p11, p12, p21, p22 = _unew(ct, u_src, p_src, o, x, y, ok, W, PLANE, l_t, theta)
        okr = ok & (x + 1 < W)
        okd = ok & (y + 1 < H)
        r1, r2, _a, _b, _c, _d, _e, _f = _unew(ct, u_src, p_src, o + 1, x + 1, y, okr, W, PLANE, l_t, theta)
        d1, d2, _g, _h, _i, _j, _k, _l = _unew(ct, u_src, p_src, o + W, x, y + 1, okd, W, PLANE, l_t, theta)
        u1x = tl.where(okr, r1 - n1, 0.0)
        u1y = tl.where(okd, d1 - n1, 0.0)
        u2x = tl.where(okr, r2 - n2, 0.0)
        u2y = tl.where(okd, d2 - n2, 0.0)
        ng1 = 1.0 + taut * tl.sqrt(u1x * u1x + u1y * u1y)
        ng2 = 1.0 + taut * tl.sqrt(u2x * u2x + u2y * u2y)
        tl.store(dst + o, n1, mask=ok)
        tl.store(dst + PLANE + o, n2, mask=ok)
        tl.store(dst + 2 * PLANE + o, (p11 + taut * u1x) / ng1, mask=ok)
        tl.store(dst + 3 * PLANE + o, (p12 + taut * u1y) / ng1, mask=ok)
        tl.store(dst + 4 * PLANE + o, (p21 + taut * u2x) / ng2, mask=ok)
        tl.store(dst + 5 * PLANE + o, (p22 + taut * u2y) / ng2, mask=ok)
        e1 = n1 - u1
        e2 = n2 - u2
        part = tl.sum(tl.where(ok, e1 * e1 + e2 * e2, 0.0), axis=0)
        tl.atomic_add(err_ring + r_out * B + b, part)


@triton.jit
def _median_kernel(u_src, u_dst, err_ring, pairs, iters, it, H, W, HW, PLANE, eps_sum, K: tl.constexpr,
                   BLOCK: tl.constexpr, COUNT: tl.constexpr):
    """K x K median of u1 and u2 (replicated border) for the pairs still iterating."""
    b = tl.load(pairs + tl.program_id(1))
    pid = tl.program_id(0)
    B = PLANE // HW
    if tl.load(err_ring + (it % 3) * B + b) > eps_sum:
        if COUNT:
            if pid == 0:
                tl.atomic_add(iters + B + b, 1)
        offs = pid * BLOCK + tl.arange(0, BLOCK)
        ok = offs < HW
        y = offs // W
        x = offs - y * W
        tap = tl.arange(0, 32)  # K*K taps padded to 32 with +inf, sorted; the median is at K*K // 2
        dy = tap // K - K // 2
        dx = tap % K - K // 2
        yy = tl.minimum(tl.maximum(y[:, None] + dy[None, :], 0), H - 1)
        xx = tl.minimum(tl.maximum(x[:, None] + dx[None, :], 0), W - 1)
        src = b * HW + yy * W + xx
        real = ok[:, None] & (tap[None, :] < K * K)
        pick = tap[None, :] == (K * K) // 2
        for c in tl.static_range(2):
            v = tl.load(u_src + c * PLANE + src, mask=real, other=float("inf")).to(tl.float32)
            med = tl.sum(tl.where(pick, tl.sort(v, dim=1), 0.0), axis=1)
            tl.store(u_dst + c * PLANE + b * HW + offs, med, mask=ok)


@triton.jit
def _cubic(t):
    a = -0.75
    w0 = ((a * (t + 1) - 5 * a) * (t + 1) + 8 * a) * (t + 1) - 4 * a
    w1 = ((a + 2) * t - (a + 3)) * t * t + 1
    w2 = ((a + 2) * (1 - t) - (a + 3)) * (1 - t) * (1 - t) + 1
    return w0, w1, w2, 1.0 - w0 - w1 - w2


@triton.jit
def _tap(k: tl.constexpr, w0, w1, w2, w3):
    """The weight of tap ``k`` (resolved at compile time)."""
    if k == 0:
        w = w0
    elif k == 1:
        w = w1
    elif k == 2:
        w = w2
    else:
        w = w3
    return w


@triton.jit
def _warp_kernel(i0, img, u_src, c_dst, H, W, HW, PLANE, BLOCK: tl.constexpr):
    """Bicubic remap of I1, I1x, I1y at x + u (OpenCV's 1/32 grid, zero outside), then
    ``ix, iy, rho_c`` of calcGradRho. ``img`` holds I1, I1x, I1y as three planes."""
    b = tl.program_id(1)
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    ok = offs < HW
    y = offs // W
    x = offs - y * W
    o = b * HW + offs
    u1 = tl.load(u_src + o, mask=ok, other=0.0).to(tl.float32)
    u2 = tl.load(u_src + PLANE + o, mask=ok, other=0.0).to(tl.float32)
    qx = tl.floor((x.to(tl.float32) + u1) * 32.0 + 0.5)
    qy = tl.floor((y.to(tl.float32) + u2) * 32.0 + 0.5)
    fx = tl.floor(qx / 32.0)
    fy = tl.floor(qy / 32.0)
    wx0, wx1, wx2, wx3 = _cubic((qx - fx * 32.0) / 32.0)
    wy0, wy1, wy2, wy3 = _cubic((qy - fy * 32.0) / 32.0)
    sx = fx.to(tl.int32) - 1
    sy = fy.to(tl.int32) - 1
    acc0 = tl.zeros([BLOCK], tl.float32)
    acc1 = tl.zeros([BLOCK], tl.float32)
    acc2 = tl.zeros([BLOCK], tl.float32)
    for k in tl.static_range(4):
        yk = sy + k
        wy = _tap(k, wy0, wy1, wy2, wy3)
        row0 = tl.zeros([BLOCK], tl.float32)
        row1 = tl.zeros([BLOCK], tl.float32)
        row2 = tl.zeros([BLOCK], tl.float32)
        for j in tl.static_range(4):
            xj = sx + j
            wx = _tap(j, wx0, wx1, wx2, wx3)
            m = ok & (xj >= 0) & (xj < W) & (yk >= 0) & (yk < H)
            t = b * HW + yk * W + xj
            row0 += tl.load(img + t, mask=m, other=0.0) * wx
            row1 += tl.load(img + PLANE + t, mask=m, other=0.0) * wx
            row2 += tl.load(img + 2 * PLANE + t, mask=m, other=0.0) * wx
        acc0 += row0 * wy
        acc1 += row1 * wy
        acc2 += row2 * wy
    tl.store(c_dst + o, acc1, mask=ok)
    tl.store(c_dst + PLANE + o, acc2, mask=ok)
    tl.store(c_dst + 2 * PLANE + o, acc0 - acc1 * u1 - acc2 * u2 - tl.load(i0 + o, mask=ok, other=0.0), mask=ok)


def warp_constants(i0: torch.Tensor, img: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
    """(3, B, H, W): I1wx, I1wy, rho_c for the current flow in ``state`` (6, B, H, W)."""
    _, b, h, w = img.shape
    out = torch.empty(3, b, h, w, device=img.device)
    _warp_kernel[(triton.cdiv(h * w, BLOCK), b)](i0, img, state, out, h, w, h * w, b * h * w, BLOCK=BLOCK)
    return out


def bytes_per_pixel(state_bytes: int = 4) -> dict:
    """Bytes each kernel must move per pixel of a pair it iterates, counted from its loads and stores
    (each value once: the neighbours' loads hit the cache). ``inner``: the constants I1wx, I1wy,
    rho_c (float32) and the six state planes read, the six written; ``median``: u1, u2 read and
    written."""
    return {"inner": 3 * 4 + 6 * state_bytes + 6 * state_bytes, "median": 2 * state_bytes + 2 * state_bytes}


def run_warp(consts: torch.Tensor, state: torch.Tensor, p, eps_sum: float) -> torch.Tensor:
    """All outer and inner iterations of one warp for every pair; ``state`` (6, B, H, W) is u1, u2,
    p11, p12, p21, p22 (float32 or float16 storage) and is returned updated."""
    _, b, h, w = state.shape
    hw, plane = h * w, b * h * w
    l_t, taut = p.lambda_ * p.theta, p.tau / p.theta
    counting = counters.counting()
    iters = torch.zeros(2, b, dtype=torch.int32, device=state.device)  # executed inner / median, per pair
    bufs = [state, torch.empty_like(state)]
    med = torch.empty(2, b, h, w, device=state.device, dtype=state.dtype)
    ring = torch.zeros(3, b, device=state.device)
    ring[0] = float("inf")
    last = torch.zeros(b, dtype=torch.int32, device=state.device)
    pairs = torch.arange(b, dtype=torch.int32, device=state.device)
    n = 0
    while n < p.outer * p.inner:
        grid = (triton.cdiv(hw, BLOCK), pairs.numel())
        u_src = bufs[n % 2]
        if n % p.inner == 0 and p.median > 1:
            _median_kernel[grid](bufs[n % 2], med, ring, pairs, iters, n, h, w, hw, plane, eps_sum, K=p.median,
                                 BLOCK=BLOCK, COUNT=counting)
            u_src = med
        _inner_kernel[grid](consts, u_src, bufs[n % 2][2:], bufs[(n + 1) % 2], ring, pairs, last, iters, n, h, w, hw,
                            plane, l_t, p.theta, taut, eps_sum, BLOCK=BLOCK, COUNT=counting)
        n += 1
        if n % CHECK_EVERY == 0:
            pairs = pairs[ring[n % 3][pairs.long()] > eps_sum]  # only ever shrinks within a warp
            if pairs.numel() == 0:
                break
    if counting:
        done = iters.sum(dim=1).tolist()
        counters.count("inner", done[0] * hw)
        counters.count("median", done[1] * hw)
    return torch.where((last == 0)[None, :, None, None], bufs[0], bufs[1])
