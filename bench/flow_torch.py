"""tvl1-torch against OpenCV's TV-L1, in one run: speed (pairs/s on the device against OpenCV per CPU
core), agreement (endpoint error between the two, on real and rendered pairs), error against the
renderer's ground truth, the encoded JPEGs, and ``extract-flow --method tvl1-torch`` end to end.

    # 1. where bpy and the fixtures are (renders the synthetic pairs, reads the real ones):
    SYNTHACT_FIXTURES=../shared/data .venv/bin/python bench/flow_torch.py --save-inputs pairs.npz
    # 2. on the machine to measure (CPU or CUDA):
    python bench/flow_torch.py --inputs pairs.npz --device cuda --batches 64,256,512
    # issue 16: extract-flow end to end from a fresh process (start-up included), where the time
    # went, then the kernels' rate at the same batch for the ratio:
    python bench/flow_torch.py --inputs pairs.npz --device cuda --batches 512 --clips 1000 \
        --frames-per-clip 17 --e2e-only --breakdown --kernel-rate
    # the float16 iteration state (EPE against OpenCV) and the fused kernels' achieved bandwidth:
    python bench/flow_torch.py --inputs pairs.npz --state-dtypes float32,float16 --profile --clips 0

The inputs are 340x256 grey frames as extract-flow reads them; speed batches repeat the real pairs.
``--size 96x72 --limit 4`` shrinks them (smoke runs on a CPU).
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from synthact import contract as C
from synthact.flow import counters
from synthact.flow.tvl1_torch import TVL1Params, quantise, tvl1

sys.path.insert(0, str(Path(__file__).parent))
from flow import _time, real_pairs, synthetic  # noqa: E402 - bench/flow.py's pairs and OpenCV timing


def save_inputs(out: Path, n: int) -> None:
    fixtures = Path(os.environ["SYNTHACT_FIXTURES"])
    real = real_pairs(fixtures, n)
    with tempfile.TemporaryDirectory() as tmp:
        syn, truth = synthetic(n, Path(tmp) / "gt")
    np.savez_compressed(out, real=np.array(real), synthetic=np.array(syn),
                        gt=np.array([t[0] for t in truth]).astype(np.float16), mask=np.array([t[1] for t in truth]))
    print(f"saved {len(real)} real and {len(syn)} rendered pairs to {out}")


def epe(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None) -> float:
    e = np.sqrt(((a - b) ** 2).sum(-1))
    return float(e[mask].mean() if mask is not None else e.mean())


def torch_flow(pairs: np.ndarray, device, batch: int, params: TVL1Params = TVL1Params()) -> np.ndarray:
    t = torch.from_numpy(pairs).to(device)
    return torch.cat([tvl1(t[s:s + batch, 0], t[s:s + batch, 1], params)
                      for s in range(0, len(t), batch)]).cpu().numpy()


def speed(pairs: np.ndarray, device, batch: int, repeat: int, params: TVL1Params = TVL1Params()) -> float:
    idx = np.arange(batch) % len(pairs)
    t = torch.from_numpy(pairs[idx]).to(device)
    tvl1(t[:, 0], t[:, 1], params)  # compile and warm
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(repeat):
        tvl1(t[:, 0], t[:, 1], params)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return batch * repeat / (time.perf_counter() - t0)


def jpeg_agreement(ours: np.ndarray, ref: list, device) -> tuple[float, float]:
    """Encoded flow images through each path's writer, decoded: share of pixels equal, within one level."""
    q = quantise(torch.from_numpy(ours).to(device), C.FLOW_BOUND).cpu().numpy()
    mine = [cv2.imdecode(np.frombuffer(C.encode_jpeg(q[i, :, :, c]), np.uint8), cv2.IMREAD_GRAYSCALE)
            for i in range(len(q)) for c in range(2)]
    theirs = [cv2.imdecode(np.frombuffer(C.encode_jpeg(img), np.uint8), cv2.IMREAD_GRAYSCALE)
              for f in ref for img in C.encode_flow(f)]
    d = np.abs(np.stack(mine).astype(int) - np.stack(theirs).astype(int))
    return float((d == 0).mean()), float((d <= 1).mean())


PEAK_BANDWIDTH = (("H200", 4.8e12), ("H100 PCIe", 2.0e12), ("H100", 3.35e12))  # bytes/s; H100 SXM (HBM3)


def peak_bandwidth(device) -> tuple[str, float | None]:
    """The device's name and its peak memory bandwidth where known (bytes/s)."""
    if device.type != "cuda":
        return f"CPU ({platform.processor() or platform.machine()})", None
    name = torch.cuda.get_device_properties(device).name
    return name, next((bw for key, bw in PEAK_BANDWIDTH if key in name), None)


def bandwidth_rows(pairs: np.ndarray, device, batch: int, dtypes: list[str]) -> None:
    """Achieved memory bandwidth of the inner iteration (and the median) on one batch: the bytes each
    must move (tvl1_triton.bytes_per_pixel) x the pixel-iterations it executed / its time. CUDA: the
    fused kernels' device time from the profiler. CPU: the plain torch inner steps' wall time (not
    the fused kernel; the same bytes model)."""
    from synthact.flow.tvl1_triton import bytes_per_pixel
    name, peak = peak_bandwidth(device)
    t = torch.from_numpy(pairs[np.arange(batch) % len(pairs)]).to(device)
    for dt in dtypes:
        p = TVL1Params(state_dtype=dt)
        tvl1(t[:1, 0], t[:1, 1], p)  # compile
        counters.COUNTERS = {}
        try:
            if device.type == "cuda":
                torch.cuda.synchronize()
                with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
                    tvl1(t[:, 0], t[:, 1], p)
                    torch.cuda.synchronize()
                dev_us = {k: sum(e.device_time_total for e in prof.key_averages() if k in e.key)
                          for k in ("_inner_kernel", "_median_kernel")}
                secs = {"inner": dev_us["_inner_kernel"] / 1e6, "median": dev_us["_median_kernel"] / 1e6}
                what = f"{name}, fused Triton kernels, device time"
            else:
                tvl1(t[:, 0], t[:, 1], p)
                secs = {k: counters.COUNTERS.get(f"{k}_s", 0.0) for k in ("inner", "median")}
                what = f"{name}, CPU: plain torch inner steps (not the fused kernel), wall time"
            counts = dict(counters.COUNTERS)
        finally:
            counters.COUNTERS = None
        bpp = bytes_per_pixel(2 if dt == "float16" else 4)
        for k in ("inner", "median"):
            moved = counts.get(k, 0) * bpp[k]
            rate = moved / secs[k] if secs[k] else 0.0
            vs = f"{rate / peak:.3f} of peak {peak / 1e12:.2f} TB/s" if peak else "unknown peak"
            print(f"| achieved bandwidth, {'inner iteration' if k == 'inner' else 'median'}, state {dt}, batch "
                  f"{batch} ({what}; {bpp[k]} B/px x {counts.get(k, 0) / 1e6:.1f} M px-iterations in {secs[k]:.3f} s) "
                  f"| {rate / 1e9:.3g} GB/s ({vs}) |", flush=True)


def end_to_end(pairs: np.ndarray, device: str, batch: int, clips: int, frames_per_clip: int = 65,
               decode_on_device: bool = False, breakdown=None, params: TVL1Params = TVL1Params()) -> float:
    """extract-flow's tvl1-torch path on a root of ``clips`` clips made of the real frames; returns
    pairs/s from the first read to the last file committed (worker start-up included). Each clip
    plays one video's frames forwards and backwards, so every pair is two consecutive frames: a
    pair of unrelated frames never converges and would cost TV-L1 its maximum iterations."""
    from synthact.flow.torch_extract import run_torch_flow
    videos = []
    for k in range(len(pairs)):
        if k == 0 or not np.array_equal(pairs[k, 0], pairs[k - 1, 1]):
            videos.append([pairs[k, 0]])
        videos[-1].append(pairs[k, 1])
    encoded = [[C.encode_jpeg(f) for f in v + v[-2:0:-1]] for v in videos]  # each distinct frame once
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for c in range(clips):
            bounce = encoded[c % len(videos)]
            d = C.clip_dir(root, f"real/c{c:04d}")
            d.mkdir(parents=True)
            for k in range(frames_per_clip):
                (d / C.img_name(k + 1)).write_bytes(bounce[(c + k) % len(bounce)])
        fails = []
        t0 = time.perf_counter()
        n = run_torch_flow(root, list(C.iter_clips(root)), device, batch, lambda r: None,
                           lambda c, e: fails.append(e), params=params, decode_on_device=decode_on_device,
                           breakdown=breakdown)
        assert not fails, fails
        return n / (time.perf_counter() - t0)


def shrink(frames: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(N, 2, H, W) frames resized to ``size`` (w, h), for smoke runs."""
    return np.stack([[cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in pair] for pair in frames])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--save-inputs", type=Path)
    ap.add_argument("--pairs", type=int, default=12)
    ap.add_argument("--inputs", type=Path)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--batches", default=[64, 256], type=lambda s: [int(x) for x in s.split(",")])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--clips", type=int, default=32, help="clips for the extract-flow row (0: skip)")
    ap.add_argument("--frames-per-clip", type=int, default=65, help="frames of each extract-flow clip")
    ap.add_argument("--e2e-only", action="store_true", help="only the extract-flow rows (and OpenCV's rate)")
    ap.add_argument("--breakdown", action="store_true", help="extract-flow rows: where the time went, per phase")
    ap.add_argument("--kernel-rate", action="store_true",
                    help="with --e2e-only: then the kernels' rate at the same batch, and end to end / kernels")
    ap.add_argument("--no-device-decode", action="store_true", help="extract-flow rows: skip the nvjpeg row")
    ap.add_argument("--state-dtypes", default=["float32"], type=lambda s: s.split(","),
                    help="iteration state storage to measure (EPE, speed, bandwidth): float32,float16")
    ap.add_argument("--profile", action="store_true",
                    help="also print the device time per kernel for one batch and the achieved bandwidth")
    ap.add_argument("--size", type=lambda s: tuple(int(x) for x in s.split("x")), help="WxH: shrink the inputs")
    ap.add_argument("--limit", type=int, help="use only the first N real and N rendered pairs")
    a = ap.parse_args()
    if a.save_inputs:
        return save_inputs(a.save_inputs, a.pairs)
    data = np.load(a.inputs)
    real, syn, gt, mask = data["real"], data["synthetic"], data["gt"].astype(np.float32), data["mask"]
    if a.limit:
        real, syn, gt, mask = real[:a.limit], syn[:a.limit], gt[:a.limit], mask[:a.limit]
    if a.size:
        h0, w0 = real.shape[2:]
        real, syn = shrink(real, a.size), shrink(syn, a.size)
        gt = np.stack([cv2.resize(g, a.size, interpolation=cv2.INTER_NEAREST) for g in gt])
        gt *= np.array([a.size[0] / w0, a.size[1] / h0], np.float32)
        mask = np.stack([cv2.resize(m.astype(np.uint8), a.size, interpolation=cv2.INTER_NEAREST) > 0 for m in mask])
    device = torch.device(a.device)
    # --e2e-only: CUDA is first touched inside the timed window (start-up included); named at the end
    name = a.device if a.e2e_only else peak_bandwidth(device)[0]
    print(f"# tvl1-torch bench: {name}, {os.cpu_count()} cores, torch {torch.__version__}, OpenCV {cv2.__version__}, "
          f"{real.shape[3]}x{real.shape[2]}, {len(real)} real + {len(syn)} rendered pairs", flush=True)
    if a.e2e_only:
        cv_rate = _time("tvl1", real)[0]
        print(f"| OpenCV tvl1, 1 CPU core (pairs/s) | {cv_rate:.2f} |", flush=True)
        e2e_rows(a, real, cv_rate)
        print(f"# device: {peak_bandwidth(device)[0]}")
        return
    cv_rate, ref_real = _time("tvl1", real)
    ref_syn = _time("tvl1", syn)[1]
    print("| measure | value |\n|---|---|")
    for dt in a.state_dtypes:
        p = TVL1Params(state_dtype=dt)
        tag = "" if dt == "float32" else f" (state {dt})"
        ours_real = torch_flow(real, device, 64, p)
        ours_syn = torch_flow(syn, device, 64, p)
        same, near = jpeg_agreement(ours_real, ref_real, device)
        print(f"| EPE tvl1-torch{tag} vs OpenCV tvl1, real pairs (px) | "
              f"{np.mean([epe(x, y) for x, y in zip(ours_real, ref_real, strict=True)]):.4f} |")
        print(f"| EPE tvl1-torch{tag} vs OpenCV tvl1, rendered pairs (px) | "
              f"{np.mean([epe(x, y) for x, y in zip(ours_syn, ref_syn, strict=True)]):.4f} |")
        if dt == a.state_dtypes[0]:
            print(f"| EPE vs Blender ground truth on body pixels, OpenCV tvl1 (px) | "
                  f"{np.mean([epe(f, g, m) for f, g, m in zip(ref_syn, gt, mask, strict=True)]):.4f} |")
        print(f"| EPE vs Blender ground truth on body pixels, tvl1-torch{tag} (px) | "
              f"{np.mean([epe(f, g, m) for f, g, m in zip(ours_syn, gt, mask, strict=True)]):.4f} |")
        print(f"| flow JPEGs of real pairs{tag}, decoded: share of pixels equal / within 1 level | "
              f"{same:.4f} / {near:.4f} |", flush=True)
    print(f"| OpenCV tvl1, 1 CPU core (pairs/s) | {cv_rate:.2f} |", flush=True)
    for dt in a.state_dtypes:
        for b in a.batches:
            rate = speed(real, device, b, a.repeat, TVL1Params(state_dtype=dt))
            tag = "" if dt == "float32" else f", state {dt}"
            print(f"| tvl1-torch on {a.device}, batch {b}{tag} (pairs/s) | {rate:.1f} "
                  f"({rate / cv_rate:.2f}x one core) |", flush=True)
    if a.profile:
        t = torch.from_numpy(real[np.arange(max(a.batches)) % len(real)]).to(device)
        with torch.profiler.profile() as prof:
            tvl1(t[:, 0], t[:, 1])
            torch.cuda.synchronize() if device.type == "cuda" else None
        sort = "cuda_time_total" if device.type == "cuda" else "cpu_time_total"
        print(prof.key_averages().table(sort_by=sort, row_limit=10, max_name_column_width=40), flush=True)
        bandwidth_rows(real, device, max(a.batches), a.state_dtypes)
    e2e_rows(a, real, cv_rate)


def e2e_rows(a, real: np.ndarray, cv_rate: float) -> None:
    if not a.clips:
        return
    from synthact.flow.torch_extract import READERS, WRITERS, Breakdown
    batch = max(a.batches)
    on_device = [False] if a.device == "cpu" or a.no_device_decode else [False, True]
    rates = []
    for dev_decode in on_device:
        bd = Breakdown() if a.breakdown else None
        rate = end_to_end(real, a.device, batch, a.clips, a.frames_per_clip, decode_on_device=dev_decode, breakdown=bd)
        rates.append(rate)
        where = f"decode on {a.device}" if dev_decode else "decode on CPU"
        print(f"| extract-flow's tvl1-torch path on {a.device}, batch {batch}, {a.clips} clips x "
              f"{a.frames_per_clip - 1} pairs, {where}, files written and committed, start-up included (pairs/s) | "
              f"{rate:.1f} ({rate / cv_rate:.2f}x one core) |", flush=True)
        if bd is not None:
            print(f"\nwhere the time went ({where}; {READERS} reader threads, {WRITERS} writer processes):\n"
                  f"{bd.table()}\n", flush=True)
    if a.kernel_rate:
        k = speed(real, torch.device(a.device), batch, a.repeat)
        print(f"| tvl1-torch kernels on {a.device}, batch {batch} (pairs/s) | {k:.1f} |")
        print(f"| end to end / kernels (decode on CPU) | {rates[0] / k:.3f} |", flush=True)


if __name__ == "__main__":
    main()
