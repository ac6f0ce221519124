"""``synthact predict``: classify video files with trained train-tsn runs (one, or RGB + flow fused).

A video goes through the same steps its clips went through before training, in memory: decoded
with OpenCV (frames counted by decoding), resized with ``INTER_AREA`` to the frame size of the
run's real root (its ``root.json``; prepare's 340x256 where that root is gone), stored as JPEG at
the contract's quality and decoded again; for flow runs the flow of the run's own method (that
root's ``flow.json``) from the grayscale JPEG frames, TSN-encoded and JPEG-stored likewise. So a
video ``synthact prepare`` turned into a run's validation clip scores exactly as the run's own
evaluation scored it. Then the run's evaluation protocol: TSN's 25 snippets x 10 crops (``tsn``)
or one centre crop per segment (``fast``), softmax scores averaged, runs fused by weight.

Only the frames and flow pairs the snippets need are decoded from JPEG and given flow. A video that
cannot be read fails alone, named in one line.
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
import torch

from .. import contract as C
from ..data.video import decode_video
from ..errors import BadConfig, BadData, SynthactError, one_line, warn
from ..flow.methods import make_flow
from .checkpoint import load_pt, restore
from .config import TrainConfig, read_config
from .dataset import load_snippet, snippet_starts
from .recipe import PROTOCOLS
from .transforms import PRESETS

VIDEO_SUFFIXES = (".avi", ".mp4", ".mkv", ".mov", ".webm", ".mpg", ".mpeg", ".m4v", ".wmv", ".flv", ".3gp", ".ogv")
DEFAULT_FRAME_SIZE = (340, 256)   # prepare's default, for a run whose real root is gone


@dataclass
class Run:
    """A trained run, ready to score: its model, settings, classes and how its input was made."""

    path: Path
    model: torch.nn.Module
    cfg: TrainConfig
    classes: list[str]
    frame_size: tuple[int, int]
    flow_method: str | None = None
    flow_bound: float = C.FLOW_BOUND


def load_run(path: Path) -> Run:
    """A train-tsn run folder: ``config.json``, ``classes.txt`` and the final ``model.pt`` (read
    weights-only), with the frame size and flow method of the real root it was trained on."""
    from .models import TSN
    path = Path(path)
    files = C.RunLayout(path)
    cfg = read_config(path)
    classes = C.read_classes(path / C.CLASSES)
    if len(classes) != cfg.num_classes:
        raise BadData(f"{path / C.CLASSES}: {len(classes)} classes, the run's config says {cfg.num_classes}")
    model = TSN(cfg.num_classes, cfg.backbone, cfg.modality, cfg.segments, "none")
    ck = load_pt(files.model, f"trained model ({files.MODEL}, written when training ends)")
    if not isinstance(ck, dict) or "model" not in ck:
        raise BadData(f"{files.model}: not a train-tsn model (no 'model' state)")
    restore(files.model, model, ck["model"], "model weights")
    model.eval()
    run = Run(path, model, cfg, classes, _frame_size(path, cfg))
    if cfg.modality == "flow":
        run.flow_method, run.flow_bound = _flow_of(path, cfg)
    return run


def _frame_size(path: Path, cfg: TrainConfig) -> tuple[int, int]:
    root = Path(cfg.real_root)
    settings = C.recorded_settings(root) if (root / C.ROOT_SETTINGS).exists() else None
    size = (settings or {}).get("size")
    if isinstance(size, list) and len(size) == 2 and all(isinstance(v, int) and v > 0 for v in size):
        return int(size[0]), int(size[1])
    warn(f"{path}: its real root {root} records no frame size here; videos are resized to "
         f"{DEFAULT_FRAME_SIZE[0]}x{DEFAULT_FRAME_SIZE[1]} (prepare's default)")
    return DEFAULT_FRAME_SIZE


def _flow_of(path: Path, cfg: TrainConfig) -> tuple[str, float]:
    info = C.FlowInfo.read(Path(cfg.real_root))
    if info is not None:
        return info.method, float(info.bound)
    method = str(cfg.info.get("flow_method", "")).split(",")[0]
    if not method:
        raise BadData(f"{C.RunLayout(path).config}: a flow run that names no flow method, and its real root "
                      f"{cfg.real_root} is not here to say")
    return method, C.FLOW_BOUND


class VideoClip:
    """A video as a rawframe clip held in memory: frames stored as the contract's JPEGs, flow
    computed on demand for the pairs asked for. Reads like a :class:`~.dataset.Sample`."""

    layout = C.OURS

    def __init__(self, path: Path, jpegs: list[bytes], flow=None, bound: float = C.FLOW_BOUND):
        self.path, self.jpegs, self.flow, self.bound = Path(path), jpegs, flow, bound
        self.num_frames = len(jpegs)
        self._cache: dict[str, np.ndarray] = {}

    def image(self, name: str, gray: bool = False) -> np.ndarray:
        """Frame ``img_#####.jpg`` or flow ``flow_{x,y}_#####.jpg`` as the stored file would decode."""
        key = f"{name}:{gray}"
        if key not in self._cache:
            kind, k = C.parse_frame_name(name)
            if kind != "img":
                self._flow_pair(k)
            else:
                self._cache[key] = C.decode_image(self.jpegs[k - 1], f"{self.path} frame {k}", gray)
        return self._cache[key]

    def _flow_pair(self, k: int) -> None:
        if self.flow is None:
            raise BadConfig(f"{self.path}: flow asked of a clip made without a flow method")
        a, b = (self.image(C.img_name(j), gray=True) for j in (k, k + 1))
        for name, img in zip(C.flow_names(k), C.encode_flow(self.flow(a, b), self.bound), strict=True):
            self._cache[f"{name}:True"] = C.decode_image(C.encode_jpeg(img), f"{self.path} flow {k}", True)


def decode_jpegs(path: Path, size: tuple[int, int]) -> list[bytes]:
    """Every decodable frame of ``path``, resized to ``size`` (width, height) as prepare does, as JPEG
    bytes; a video prepare would refuse is refused in the same one line."""
    frames: list[bytes] = []
    decode_video(path, size, lambda k, frame: frames.append(C.encode_jpeg(frame)))
    return frames


@torch.no_grad()
def score_video(run: Run, clip: VideoClip, protocol: str, device: torch.device) -> np.ndarray:
    """Softmax scores of one video under the run's evaluation ``protocol`` (tsn or fast)."""
    cfg = run.cfg
    mode, snippets = PROTOCOLS[protocol]
    starts = snippet_starts(clip.num_frames, cfg.modality, cfg.segments, mode, None, snippets or 25)
    group = [load_snippet(clip, k, cfg.modality) for k in starts]
    group = PRESETS[mode](group, cfg.size, cfg.modality == "flow", None)
    x = torch.from_numpy(np.stack(group)).permute(0, 3, 1, 2).float().div_(255.0)[None]
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
        s = run.model(x.to(device))
    return torch.softmax(s.float(), 1).cpu().numpy()[0]


def find_videos(paths: list[Path]) -> list[Path]:
    """Video files named, and those under folders named (recursively, sorted); a missing path or a
    folder without videos is refused."""
    found = []
    for p in map(Path, paths):
        if p.is_dir():
            inner = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in VIDEO_SUFFIXES)
            if not inner:
                raise BadConfig(f"{p}: no video files here ({', '.join(VIDEO_SUFFIXES[:4])}, ...)")
            found += inner
        elif p.is_file():
            found.append(p)
        else:
            raise BadConfig(f"{p}: no such file or folder")
    return list(dict.fromkeys(found))


def true_class(video: Path, classes: list[str]) -> str | None:
    """The class of a video inside a ``<class>/`` folder of the label space (exact name first,
    then case-insensitively), else None."""
    folder = video.parent.name
    if folder in classes:
        return folder
    lower = {c.lower(): c for c in classes}
    return lower.get(folder.lower())


@dataclass
class Prediction:
    """One video's fused scores and its top classes."""

    video: Path
    scores: np.ndarray
    top: list[tuple[str, float]]
    truth: str | None = None
    frames: int = 0
    per_run: list = field(default_factory=list)


@dataclass
class PredictSummary:
    """What :func:`predict_videos` did: a prediction per video classified, (video, why) per video that
    failed, and accuracy over the ``labelled`` videos (those in ``<class>/`` folders; None without any)."""

    predictions: list[Prediction]
    failures: list[tuple[str, str]]
    classes: list[str]
    weights: list[float]
    labelled: int
    top1: float | None
    top5: float | None

    @property
    def done(self) -> int:
        """Videos classified."""
        return len(self.predictions)


def predict_videos(runs: list[Path], paths: list[Path], weights: list[float] | None = None, protocol: str = "tsn",
                   csv_path: Path | None = None, top: int = 5, device: str = "auto",
                   echo: Callable[[str], None] | None = print) -> PredictSummary:
    """Classify the videos of ``paths`` with ``runs`` (fused with ``weights``, default 1 each);
    one line per video through ``echo``; accuracy over videos in ``<class>/`` folders; a CSV."""
    from .config import check_device
    if not runs:
        raise BadConfig("--run: give at least one run folder")
    weights = [1.0] * len(runs) if weights is None else list(weights)
    if len(weights) != len(runs) or not all(np.isfinite(weights)):
        raise BadConfig(f"--weights {','.join(map(str, weights))}: one finite number per --run ({len(runs)})")
    if protocol not in PROTOCOLS:
        raise BadConfig(f"--protocol {protocol!r}: choose from {', '.join(PROTOCOLS)}")
    from .models import place
    check_device(device)
    dev = torch.device("cuda" if device == "auto" and torch.cuda.is_available() else
                       "cpu" if device == "auto" else device)
    loaded = [load_run(r) for r in runs]
    classes = loaded[0].classes
    for r in loaded[1:]:
        if r.classes != classes:
            raise BadConfig(f"{r.path / C.CLASSES}: another label space than {loaded[0].path / C.CLASSES}: "
                            f"cannot fuse")
    for r in loaded:
        place(r.model, dev)
    videos = find_videos(paths)
    k = min(top, len(classes))
    preds, failures = [], []
    flows = {}
    for video in videos:
        try:
            frames: dict = {}   # decoded once per frame size
            clips: dict = {}    # one in-memory clip per (frame size, flow method)
            per_run = []
            for r in loaded:
                key = (r.frame_size, r.flow_method, r.flow_bound)
                if key not in clips:
                    if r.flow_method and r.flow_method not in flows:
                        flows[r.flow_method] = make_flow(r.flow_method)
                    if r.frame_size not in frames:
                        frames[r.frame_size] = decode_jpegs(video, r.frame_size)
                    flow = flows.get(r.flow_method) if r.flow_method else None
                    clips[key] = VideoClip(video, frames[r.frame_size], flow, r.flow_bound)
                per_run.append(score_video(r, clips[key], protocol, dev))
        except (SynthactError, OSError, cv2.error) as exc:
            failures.append((str(video), one_line(exc)))
            continue
        fused = np.sum([w * s for w, s in zip(weights, per_run, strict=True)], axis=0)
        order = np.argsort(-fused, kind="stable")[:k]
        p = Prediction(video, fused, [(classes[i], float(fused[i])) for i in order], true_class(video, classes),
                       next(iter(clips.values())).num_frames, per_run)
        preds.append(p)
        if echo:
            echo(_line(p))
    labelled = [p for p in preds if p.truth is not None]
    out = PredictSummary(preds, failures, classes, weights, len(labelled),
                         float(np.mean([p.top[0][0] == p.truth for p in labelled])) if labelled else None,
                         float(np.mean([p.truth in [c for c, _ in p.top] for p in labelled])) if labelled else None)
    if csv_path:
        write_csv(Path(csv_path), preds)
    return out


def _line(p: Prediction) -> str:
    tops = ", ".join(f"{c} {s:.3f}" for c, s in p.top)
    truth = "" if p.truth is None else f"  [true {p.truth}: {'right' if p.top[0][0] == p.truth else 'wrong'}]"
    return f"{p.video}: {tops}{truth}"


def write_csv(path: Path, preds: list[Prediction]) -> None:
    """One row per video: its path, true class (where known), top classes and scores, frames."""
    text = io.StringIO(newline="")
    w = csv.writer(text)
    w.writerow(["video", "true_class", "correct", "frames"] + [f"{kind}{i + 1}" for i in range(5)
                                                               for kind in ("class", "score")])
    for p in preds:
        row = [str(p.video), p.truth or "", "" if p.truth is None else int(p.top[0][0] == p.truth), p.frames]
        for c, s in p.top[:5]:
            row += [c, f"{s:.6f}"]
        w.writerow(row)
    path.parent.mkdir(parents=True, exist_ok=True)
    C.atomic_write(path, text.getvalue())
