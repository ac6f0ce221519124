"""tvl1-torch against OpenCV's TV-L1, in one run: speed (pairs/s on the device against OpenCV per CPU
core), agreement (endpoint error between the two, on real and rendered pairs), error against the
renderer's ground truth, the encoded JPEGs, and ``extract-flow --method tvl1-torch`` end to end.

    # 1. where bpy and the fixtures are (renders the synthetic pairs, reads the real ones):
    SYNTHACT_FIXTURES=../shared/data .venv/bin/python bench/flow_torch.py --save-inputs pairs.npz
    # 2. on the machine to measure (CPU or CUDA):
    python bench/flow_torch.py --inputs pairs.npz --device cuda --batches 64,256,512

The inputs are 340x256 grey frames as extract-flow reads them; speed batches repeat the real pairs.
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
from synthact.flow.tvl1_torch import quantise, tvl1

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


def torch_flow(pairs: np.ndarray, device, batch: int) -> np.ndarray:
    t = torch.from_numpy(pairs).to(device)
    return torch.cat([tvl1(t[s:s + batch, 0], t[s:s + batch, 1]) for s in range(0, len(t), batch)]).cpu().numpy()


def speed(pairs: np.ndarray, device, batch: int, repeat: int) -> float:
    idx = np.arange(batch) % len(pairs)
    t = torch.from_numpy(pairs[idx]).to(device)
    tvl1(t[:, 0], t[:, 1])  # compile and warm
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(repeat):
        tvl1(t[:, 0], t[:, 1])
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


def end_to_end(pairs: np.ndarray, device: str, batch: int, clips: int, frames_per_clip: int = 65,
               decode_on_device: bool = False) -> float:
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
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for c in range(clips):
            v = videos[c % len(videos)]
            bounce = v + v[-2:0:-1]
            d = C.clip_dir(root, f"real/c{c:03d}")
            d.mkdir(parents=True)
            for k in range(frames_per_clip):
                C.write_jpeg(d / C.img_name(k + 1), bounce[(c + k) % len(bounce)])
        fails = []
        t0 = time.perf_counter()
        n = run_torch_flow(root, list(C.iter_clips(root)), device, batch, lambda r: None,
                           lambda c, e: fails.append(e), decode_on_device=decode_on_device)
        assert not fails, fails
        return n / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--save-inputs", type=Path)
    ap.add_argument("--pairs", type=int, default=12)
    ap.add_argument("--inputs", type=Path)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--batches", default=[64, 256], type=lambda s: [int(x) for x in s.split(",")])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--clips", type=int, default=32, help="clips for the extract-flow row (0: skip)")
    ap.add_argument("--e2e-only", action="store_true", help="only the extract-flow rows (and OpenCV's rate)")
    ap.add_argument("--profile", action="store_true", help="also print the device time per kernel for one batch")
    a = ap.parse_args()
    if a.save_inputs:
        return save_inputs(a.save_inputs, a.pairs)
    data = np.load(a.inputs)
    real, syn, gt, mask = data["real"], data["synthetic"], data["gt"].astype(np.float32), data["mask"]
    device = torch.device(a.device)
    name = torch.cuda.get_device_name() if device.type == "cuda" else platform.processor() or platform.machine()
    print(f"# tvl1-torch bench: {name}, {os.cpu_count()} cores, torch {torch.__version__}, OpenCV {cv2.__version__}, "
          f"{real.shape[3]}x{real.shape[2]}, {len(real)} real + {len(syn)} rendered pairs", flush=True)
    if a.e2e_only:
        cv_rate = _time("tvl1", real)[0]
        print(f"| OpenCV tvl1, 1 CPU core (pairs/s) | {cv_rate:.2f} |", flush=True)
        return e2e_rows(a, real, cv_rate)
    cv_rate, ref_real = _time("tvl1", real)
    ref_syn = _time("tvl1", syn)[1]
    ours_real = torch_flow(real, device, 64)
    ours_syn = torch_flow(syn, device, 64)
    same, near = jpeg_agreement(ours_real, ref_real, device)
    print("| measure | value |\n|---|---|")
    real = np.mean([epe(x, y) for x, y in zip(ours_real, ref_real)])
    rendered = np.mean([epe(x, y) for x, y in zip(ours_syn, ref_syn)])
    print(f"| EPE tvl1-torch vs OpenCV tvl1, real pairs (px) | {real:.4f} |")
    print(f"| EPE tvl1-torch vs OpenCV tvl1, rendered pairs (px) | {rendered:.4f} |")
    print(f"| EPE vs Blender ground truth on body pixels, OpenCV tvl1 (px) | "
          f"{np.mean([epe(f, g, m) for f, g, m in zip(ref_syn, gt, mask)]):.4f} |")
    print(f"| EPE vs Blender ground truth on body pixels, tvl1-torch (px) | "
          f"{np.mean([epe(f, g, m) for f, g, m in zip(ours_syn, gt, mask)]):.4f} |")
    print(f"| flow JPEGs of real pairs, decoded: share of pixels equal / within 1 level | {same:.4f} / {near:.4f} |")
    print(f"| OpenCV tvl1, 1 CPU core (pairs/s) | {cv_rate:.2f} |", flush=True)
    for b in a.batches:
        rate = speed(real, device, b, a.repeat)
        print(f"| tvl1-torch on {a.device}, batch {b} (pairs/s) | {rate:.1f} ({rate / cv_rate:.2f}x one core) |",
              flush=True)
    if a.profile:
        t = torch.from_numpy(real[np.arange(max(a.batches)) % len(real)]).to(device)
        with torch.profiler.profile() as prof:
            tvl1(t[:, 0], t[:, 1])
            torch.cuda.synchronize() if device.type == "cuda" else None
        sort = "cuda_time_total" if device.type == "cuda" else "cpu_time_total"
        print(prof.key_averages().table(sort_by=sort, row_limit=10, max_name_column_width=40), flush=True)
    e2e_rows(a, real, cv_rate)


def e2e_rows(a, real: np.ndarray, cv_rate: float) -> None:
    if not a.clips:
        return
    for on_device in [False, True] if a.device != "cpu" else [False]:
        rate = end_to_end(real, a.device, max(a.batches), a.clips, decode_on_device=on_device)
        where = f"decode on {a.device}" if on_device else "decode on CPU"
        print(f"| extract-flow's tvl1-torch path on {a.device}, {a.clips} clips x 64 pairs, {where}, files "
              f"written (pairs/s) | {rate:.1f} ({rate / cv_rate:.2f}x one core) |", flush=True)


if __name__ == "__main__":
    main()
