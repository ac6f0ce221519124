"""What reproducing the paper costs, per stage, from the rates measured in BENCHMARKS.md.

    .venv/bin/python bench/paper_cost.py     # prints the Markdown table the README shows

Every rate below is a BENCHMARKS.md figure (named beside it); every count comes from the datasets'
official lists or the shipped experiment configs. What is an estimate says so: clip lengths of
the real datasets (UCF-101's 2.5 M frames over 13,320 clips, about 188 frames a clip, used for
HMDB-51 too), ResNet-50 on a CPU scaled from the measured ResNet-18 by their FLOPs (4.1 / 1.8
GFLOPs), and TSN evaluation as forward passes at three times the training rate.
"""
from __future__ import annotations

from importlib import resources

import yaml

# measured rates (BENCHMARKS.md)
RENDER_PER_CORE = 108.5         # Workbench frames per CPU-second, 340x256, the median idle run (Render CPU per frame)
TVL1_REAL_PER_CORE = 1.45       # OpenCV tvl1 pairs/s per core, real 340x256 (Optical flow)
TVL1_SYNTH_PER_CORE = 2.58      # the same on rendered pairs
TVL1_GPU_E2E = 743.4            # extract-flow tvl1-torch end to end, one H100 (TV-L1 on the GPU)
TRAIN_GPU = 3731.0              # ResNet-50 TSN images/s, full pipeline, one H100 (Training, On a GPU)
TRAIN_CPU_R18_2CORES = 20.3     # ResNet-18 TSN images/s, full pipeline, 2 cores (Training throughput)
# estimates (said in the docstring and the README)
R50_OVER_R18 = 4.1 / 1.8
FORWARD_SPEEDUP = 3.0
FRAMES_PER_REAL_CLIP = 2.5e6 / 13320
# counts
SYNTH_FRAMES = 64
HMDB_TRAIN, HMDB_TEST = 3570, 1530          # per official split
UCF25_CLIPS = round(13320 * 25 / 101)       # the 25 classes' share of UCF-101
UCF25_TRAIN, UCF25_TEST = round(UCF25_CLIPS * 9537 / 13320), round(UCF25_CLIPS * 3783 / 13320)


def config(name: str) -> dict:
    return yaml.safe_load(resources.files("synthact.assets").joinpath("experiments", f"{name}.yaml").read_text())


def training_images(cfg: dict, real_train: int) -> float:
    """Images one grid's training cells see: clips x segments x epochs, summed over cells."""
    fractions = cfg.get("real_fraction", [1.0])
    mods = [m for m in cfg["modality"] if m != "fusion"]
    total = 0.0
    for n in cfg["synthetic"]:
        for f in fractions:
            clips = n + real_train * f
            total += (clips * cfg["train"].get("segments", 3) * cfg["train"]["epochs"] * len(mods)
                      * len(cfg["splits"]) * len(cfg.get("seeds", [0])))
    return total


def eval_images(cfg: dict, test: int) -> float:
    cells = (len(cfg["synthetic"]) * len(cfg.get("real_fraction", [1.0])) * len(cfg["splits"])
             * len(cfg.get("seeds", [0])))
    per = 250 if cfg.get("eval_protocol", "tsn") == "tsn" else cfg["train"].get("segments", 3)
    return cells * len([m for m in cfg["modality"] if m != "fusion"]) * test * per


def rows() -> list[tuple[str, float, float]]:
    """(stage, core-hours on CPUs only, GPU-hours with one GPU) for the whole paper."""
    synth = {"hmdb": 8000, "ucf25": 5000}
    real_pairs = {"hmdb": 6766 * (FRAMES_PER_REAL_CLIP - 1), "ucf25": UCF25_CLIPS * (FRAMES_PER_REAL_CLIP - 1)}
    out = []
    for name, n in synth.items():
        out.append((f"render {n:,} synthetic clips ({name}, 64 frames)", n * SYNTH_FRAMES / RENDER_PER_CORE / 3600,
                    None))
        pairs = n * (SYNTH_FRAMES - 1)
        out.append((f"TV-L1 flow, synthetic {name} ({pairs / 1e6:.2f} M pairs)", pairs / TVL1_SYNTH_PER_CORE / 3600,
                    pairs / TVL1_GPU_E2E / 3600))
        out.append((f"TV-L1 flow, real {name} (~{real_pairs[name] / 1e6:.2f} M pairs, estimated)",
                    real_pairs[name] / TVL1_REAL_PER_CORE / 3600, real_pairs[name] / TVL1_GPU_E2E / 3600))
    cpu_r50 = TRAIN_CPU_R18_2CORES / 2 / R50_OVER_R18       # images per core-second
    for exp, train, test in (("hmdb51_two_stream", HMDB_TRAIN, HMDB_TEST),
                             ("ucf25_synthetic_only", UCF25_TRAIN, UCF25_TEST),
                             ("ucf25_10pct", UCF25_TRAIN, UCF25_TEST)):
        cfg = config(exp)
        imgs = training_images(cfg, 0 if exp == "ucf25_synthetic_only" else train)
        ev = eval_images(cfg, test)
        out.append((f"{exp}: training, all cells ({imgs / 1e6:.1f} M images)", imgs / cpu_r50 / 3600,
                    imgs / TRAIN_GPU / 3600))
        out.append((f"{exp}: evaluation, 25x10 protocol ({ev / 1e6:.1f} M images)",
                    ev / (cpu_r50 * FORWARD_SPEEDUP) / 3600, ev / (TRAIN_GPU * FORWARD_SPEEDUP) / 3600))
    return out


def main() -> None:
    print("| stage | CPU only: core-hours | one GPU (H100): GPU-hours |")
    print("|---|---|---|")
    cpu = gpu = 0.0
    for stage, c, g in rows():
        cpu += c
        gpu += g or 0.0
        print(f"| {stage} | {c:,.1f} | {'CPU stage' if g is None else f'{g:,.2f}'} |")
    print(f"| **the whole paper** | **{cpu:,.0f}** | **{gpu:,.1f}** (plus the render core-hours) |")


if __name__ == "__main__":
    main()
