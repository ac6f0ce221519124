"""mmaction2 for users who live there: a ready config for every run's selection, and
``train-tsn --engine mmaction2`` to train that selection with mmaction2's own TSN.

The config is built as data (no mmaction2 import needed to write it): absolute-path rawframe
lists, our file name templates, TSN's recipe. Our engine hands that data to mmengine; the
``mmaction2_config.py`` written beside it, for users, holds every value as a Python literal.
Backbone weights go through our model code and are saved in torchvision's format, so
mmaction2's ResNet loads ImageNet, a user file or, for flow, the cross-modality-initialised
10-channel first conv that mmaction2 would otherwise leave random.
"""
from __future__ import annotations

import math
import os
import stat
import zipfile
from pathlib import Path

import torch

from .. import contract as C
from ..errors import BadConfig, BadData, MissingDependency
from ..provenance import versions
from . import recipe
from .models import TSN

CONFIG, LISTS = C.RunLayout.MMACTION2_CONFIG, C.RunLayout.MMACTION2_LISTS
DEPTH = {"resnet18": 18, "resnet50": 50}
FEATURES = {"resnet18": 512, "resnet50": 2048}


def backbone_checkpoint(cfg, run: Path) -> str | None:
    """Our backbone (ImageNet / FILE, cross-modality for flow) in torchvision format, or None."""
    if cfg.pretrained == "none":
        return None
    base = TSN(cfg.num_classes, cfg.backbone, cfg.modality, cfg.segments, cfg.pretrained).base
    path = C.RunLayout(run).mmaction2_backbone
    with C.atomic_output(path) as tmp:
        torch.save(base.state_dict(), tmp)
    return str(path.resolve())


def _py(value, indent: int = 0) -> str:
    """``value`` as Python source that evaluates back to it. Every string goes through ``repr``, so
    no user text (a run folder's name, a setting) can become code when mmengine executes the file;
    and since mmengine substitutes ``{{ fileDirname }}`` and the like in the file's text before it
    runs it, a ``{`` inside a string is written as ``\\x7b`` wherever ``{{`` could form."""
    if isinstance(value, dict):
        if not all(isinstance(k, str) and k.isidentifier() for k in value):
            raise BadConfig(f"cannot write the keys {list(value)} as an mmaction2 dict(...)")
        items, opener, closer = [f"{k}={_py(v, indent + 4)}" for k, v in value.items()], "dict(", ")"
    elif isinstance(value, (list, tuple)):
        items = [_py(v, indent + 4) for v in value]
        opener, closer = ("[", "]") if isinstance(value, list) else ("(", ",)" if len(value) == 1 else ")")
    elif value is None or isinstance(value, (bool, int, str)) or (isinstance(value, float) and math.isfinite(value)):
        text = repr(value)
        return text.replace("{", "\\x7b") if isinstance(value, str) and "{{" in value else text
    else:
        raise BadConfig(f"cannot write {value!r} into an mmaction2 config")
    flat = opener + ", ".join(items) + closer
    if len(flat) + indent <= 100 or not items:
        return flat
    pad = " " * (indent + 4)
    return opener + "\n" + ",\n".join(pad + i for i in items) + closer


def config_dict(cfg, run: Path, pretrained: str | None) -> dict:
    """mmaction2 1.2.0's TSN recipe for the run's lists, as data (see :func:`write_config`)."""
    run = Path(run).resolve()
    flow = cfg.modality == "flow"
    length = recipe.NEW_LENGTH[cfg.modality]
    short = cfg.size * 256 // 224
    if flow:
        norm: dict[str, list[float]] = dict(mean=[128.0, 128.0] * length, std=[128.0, 128.0] * length)
        flip = dict(type="SynthactFlowFlip", flip_ratio=recipe.FLIP_RATIO)   # mmaction2's Flip inverts y too
        tmpl, modality = C.OURS.flow, "Flow"
    else:
        norm = dict(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375])
        flip = dict(type="Flip", flip_ratio=recipe.FLIP_RATIO)
        tmpl, modality = C.OURS.img, "RGB"
    steps = recipe.lr_milestones(cfg.epochs)

    def sample(num_clips: int, test: bool) -> dict:
        return dict(type="SampleFrames", clip_len=length, frame_interval=1, num_clips=num_clips,
                    **({"test_mode": True} if test else {}))

    def loader(ann: str, pipeline: list, batch: int, test: bool) -> dict:
        return dict(batch_size=batch, num_workers=cfg.workers, persistent_workers=cfg.workers > 0,
                    sampler=dict(type="DefaultSampler", shuffle=not test),
                    dataset=dict(type="RawframeDataset", ann_file=str(run / ann), data_prefix=dict(img=""),
                                 filename_tmpl=tmpl, modality=modality, pipeline=pipeline, test_mode=test))

    decode, fmt = [dict(type="RawFrameDecode"), dict(type="Resize", scale=(-1, short))], \
        [dict(type="FormatShape", input_format="NCHW"), dict(type="PackActionInputs")]
    train_pipeline = [sample(cfg.segments, False), *decode,
                      dict(type="MultiScaleCrop", input_size=cfg.size, scales=recipe.CROP_SCALES,
                           random_crop=False, max_wh_scale_gap=1),
                      dict(type="Resize", scale=(cfg.size, cfg.size), keep_ratio=False), flip, *fmt]
    val_pipeline = [sample(cfg.segments, True), *decode, dict(type="CenterCrop", crop_size=cfg.size), *fmt]
    test_pipeline = [sample(25, True), *decode,
                     dict(type="TenCrop" if cfg.eval_protocol == "tsn" else "CenterCrop", crop_size=cfg.size), *fmt]
    val_evaluator = dict(type="AccMetric", metric_list=("top_k_accuracy", "mean_class_accuracy"))
    return dict(
        custom_imports=dict(imports=["synthact.train.mmaction_plugins"], allow_failed_imports=False),
        default_scope="mmaction", work_dir=str(C.RunLayout(run).mmaction2_work),
        randomness=dict(seed=cfg.seed, deterministic=False),
        model=dict(type="Recognizer2D",
                   backbone=dict(type="ResNet", depth=DEPTH[cfg.backbone], in_channels=2 * length if flow else 3,
                                 pretrained=pretrained, torchvision_pretrain=True, norm_eval=False,
                                 partial_bn=pretrained is not None and recipe.PARTIAL_BN[cfg.modality]),
                   cls_head=dict(type="TSNHead", num_classes=cfg.num_classes, in_channels=FEATURES[cfg.backbone],
                                 spatial_type="avg", consensus=dict(type="AvgConsensus", dim=1),
                                 dropout_ratio=recipe.DROPOUT[cfg.modality], init_std=0.001, average_clips="prob"),
                   data_preprocessor=dict(type="ActionDataPreprocessor", **norm, format_shape="NCHW")),
        train_pipeline=train_pipeline, val_pipeline=val_pipeline, test_pipeline=test_pipeline,
        train_dataloader=loader(LISTS[0], train_pipeline, cfg.batch_size, False),
        val_dataloader=loader(LISTS[1], val_pipeline, cfg.batch_size, True),
        test_dataloader=loader(LISTS[1], test_pipeline, 1, True),
        val_evaluator=val_evaluator, test_evaluator=val_evaluator,
        # mmengine validates every val_interval epochs and after the last, from epoch val_begin on
        train_cfg=dict(type="EpochBasedTrainLoop", max_epochs=cfg.epochs,
                       val_begin=1 if cfg.val_interval else cfg.epochs + 1, val_interval=max(cfg.val_interval, 1)),
        val_cfg=dict(type="ValLoop"), test_cfg=dict(type="TestLoop"),
        optim_wrapper=dict(optimizer=dict(type="SGD", lr=cfg.lr, momentum=recipe.MOMENTUM,
                                          weight_decay=cfg.weight_decay),
                           clip_grad=dict(max_norm=recipe.CLIP_GRAD[cfg.modality], norm_type=2),
                           paramwise_cfg=dict(custom_keys={"backbone": dict(lr_mult=cfg.backbone_lr_mult)})),
        param_scheduler=[dict(type="MultiStepLR", begin=0, end=cfg.epochs, by_epoch=True, milestones=steps,
                              gamma=recipe.LR_GAMMA)],
        default_hooks=dict(
            runtime_info=dict(type="RuntimeInfoHook"), timer=dict(type="IterTimerHook"),
            logger=dict(type="LoggerHook", interval=20, ignore_last=False),
            param_scheduler=dict(type="ParamSchedulerHook"),
            checkpoint=dict(type="CheckpointHook", interval=1, max_keep_ckpts=2),
            sampler_seed=dict(type="DistSamplerSeedHook"), sync_buffers=dict(type="SyncBuffersHook")),
        env_cfg=dict(cudnn_benchmark=False, mp_cfg=dict(mp_start_method="spawn", opencv_num_threads=1),
                     dist_cfg=dict(backend="nccl")),
        log_processor=dict(type="LogProcessor", window_size=20, by_epoch=True),
        vis_backends=[dict(type="LocalVisBackend")],
        visualizer=dict(type="ActionVisualizer", vis_backends=[dict(type="LocalVisBackend")]),
        log_level="WARNING", load_from=None, resume=False)


def write_config(cfg, run: Path, pretrained: str | None) -> dict:
    """The run's selection as mmaction2 lists and a config; ``pretrained``: a torchvision-format
    backbone file (see :func:`backbone_checkpoint`) or None. Returns the config as data: our own
    engine hands that to mmengine, the file is for users (mmengine executes such files)."""
    if cfg.backbone not in DEPTH:
        raise BadConfig(f"--engine mmaction2 trains resnet18 or resnet50, not {cfg.backbone}")
    run = Path(run).resolve()
    # mmaction2 counts flow frames in flow lists: N frames have N-1 pairs
    minus = 1 if cfg.modality == "flow" else 0
    for ours, theirs in zip(C.RunLayout.LISTS, LISTS, strict=True):
        C.write_annotations(run / theirs, [C.Entry(e.clip, e.num_frames - minus, e.label)
                                           for e in C.read_annotations(run / ours, clip_ids=False)])
    settings = config_dict(cfg, run, pretrained)
    head = (f"# Written by synthact for the selection in this run folder: mmaction2 1.2.0 TSN, {cfg.modality}.\n"
            "# Lists: mmaction2 rawframe format with absolute frame folders (data_prefix is empty).\n")
    C.atomic_write(run / CONFIG, head + "".join(f"{k} = {_py(v)}\n" for k, v in settings.items()))
    return settings


def latest_checkpoint(work_dir: Path) -> Path | None:
    """The newest complete ``epoch_N.pth``: mmengine writes ``last_checkpoint`` only after the epoch
    file, and a kill mid-save leaves a torn zip, so neither can be trusted to name it."""
    for path in sorted(work_dir.glob("epoch_*.pth"), key=lambda p: int(p.stem.split("_")[1]), reverse=True):
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as z:
                if z.testzip() is None:
                    return path
    return None


def check_work_dir(work_dir: Path) -> None:
    """mmengine writes its work folder with plain ``open()`` and ``makedirs``, following links: refuse,
    before it starts, a link or a FIFO at the folder or anywhere in it; a file hard-linked from
    elsewhere (a ``cp -al`` copy of the run) is first made this folder's own, so the other never changes."""
    if os.path.lexists(work_dir) and not stat.S_ISDIR(work_dir.lstat().st_mode):
        raise BadData(f"{work_dir}: not a folder (a link, a file or a FIFO) where mmaction2's work folder belongs; "
                      f"refusing to train (remove it)")
    for p in work_dir.rglob("*") if work_dir.is_dir() else ():   # rglob never enters a linked folder
        st = p.lstat()
        if not (stat.S_ISDIR(st.st_mode) or stat.S_ISREG(st.st_mode)):
            raise BadData(f"{p}: a link or a FIFO in mmaction2's work folder, which mmengine would write through; "
                          f"refusing to train (remove it)")
        if stat.S_ISREG(st.st_mode) and st.st_nlink > 1:
            C.atomic_write(p, C.read_regular(p))


def train_mmaction(cfg, run: Path, resume: bool, settings: dict, world=None) -> dict:
    """Train and test the run's selection with mmaction2's TSN; metrics in our format. Under
    torchrun (``world``) mmengine's own launcher (``launcher="pytorch"``) trains data-parallel in
    the process group train-tsn joined: ``--batch-size`` stays the global batch (each rank's
    dataloader takes batch / world size) and mmengine's DefaultSampler shares the same lists out."""
    check_work_dir(Path(settings["work_dir"]))
    try:
        from mmengine.config import Config
        from mmengine.runner import Runner

        from . import mmaction_plugins  # noqa: F401  the shim must come before mmaction.models
    except ImportError as exc:
        raise MissingDependency(f"--engine mmaction2 needs the optional extra: make mmaction ({exc})") from None
    config = Config(settings, filename=str(Path(run) / CONFIG))   # data, never source text we execute
    parallel = world is not None and world.parallel
    if parallel:
        cuda = torch.cuda.is_available() and cfg.device != "cpu"
        config.launcher = "pytorch"
        config.env_cfg.dist_cfg = dict(backend="nccl" if cuda else "gloo")
        config.train_dataloader.batch_size = config.val_dataloader.batch_size = cfg.batch_size // world.size
        if not cuda:   # mmengine passes device_ids=[LOCAL_RANK], which DDP refuses for CPU modules
            config.model_wrapper_cfg = dict(type="MMDistributedDataParallel", device_ids=None,
                                            broadcast_buffers=False)
    if resume:
        latest = latest_checkpoint(Path(config.work_dir))
        config.resume, config.load_from = latest is not None, str(latest) if latest else None
    runner = Runner.from_cfg(config)
    runner.train()
    res = runner.test()
    metrics = {"top1": float(res["acc/top1"]), "mean_class": float(res["acc/mean1"]), "engine": "mmaction2",
               "protocol": cfg.eval_protocol, "n": len(C.read_annotations(C.RunLayout(run).val_list, clip_ids=False)),
               "mmaction2": {k: float(v) for k, v in res.items()}}
    if parallel:
        metrics["world_size"] = world.size
    if world is None or world.main:
        C.write_json(C.RunLayout(run).metrics, {**metrics, "versions": versions()})
    return metrics
