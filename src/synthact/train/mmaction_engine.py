"""mmaction2 for users who live there: a ready config for every run's selection, and
``train-tsn --engine mmaction2`` to train that selection with mmaction2's own TSN.

The config is plain text (no mmaction2 import needed to write it): absolute-path rawframe lists,
our file name templates, TSN's recipe. Backbone weights go through our model code and are saved in
torchvision's format, so mmaction2's ResNet loads ImageNet, a user file or, for flow, the
cross-modality-initialised 10-channel first conv that mmaction2 would otherwise leave random.
"""
from __future__ import annotations

import json
import zipfile
from pathlib import Path

import torch

from .. import contract as C
from ..errors import BadConfig
from .models import DROPOUT, NEW_LENGTH, TSN

CONFIG = "mmaction2_config.py"
LISTS = ("mmaction2_train_list.txt", "mmaction2_val_list.txt")
BACKBONE_INIT = "backbone_init.pth"
DEPTH = {"resnet18": 18, "resnet50": 50}
FEATURES = {"resnet18": 512, "resnet50": 2048}


def backbone_checkpoint(cfg, run: Path) -> str | None:
    """Our backbone (ImageNet / FILE, cross-modality for flow) in torchvision format, or None."""
    if cfg.pretrained == "none":
        return None
    base = TSN(cfg.num_classes, cfg.backbone, cfg.modality, cfg.segments, cfg.pretrained).base
    path = Path(run) / BACKBONE_INIT
    torch.save(base.state_dict(), path)
    return str(path.resolve())


def write_config(cfg, run: Path, pretrained: str | None) -> Path:
    """The run's selection as an mmaction2 config and lists; ``pretrained``: a torchvision-format
    backbone file (see :func:`backbone_checkpoint`) or None."""
    if cfg.backbone not in DEPTH:
        raise BadConfig(f"--engine mmaction2 trains resnet18 or resnet50, not {cfg.backbone}")
    run = Path(run).resolve()
    # mmaction2 counts flow frames in flow lists: N frames have N-1 pairs
    minus = 1 if cfg.modality == "flow" else 0
    for ours, theirs in zip(("train_list.txt", "val_list.txt"), LISTS):
        C.write_annotations(run / theirs, [C.Entry(e.clip, e.num_frames - minus, e.label)
                                           for e in C.read_annotations(run / ours, clip_ids=False)])
    flow = cfg.modality == "flow"
    length = NEW_LENGTH[cfg.modality]
    short = cfg.size * 256 // 224
    if flow:
        norm = f"mean=[128, 128] * {length}, std=[128, 128] * {length}"
        flip = "dict(type='SynthactFlowFlip', flip_ratio=0.5),  # mmaction2's Flip inverts y too"
        tmpl, modality = C.OURS.flow, "Flow"
    else:
        norm = "mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375]"
        flip = "dict(type='Flip', flip_ratio=0.5),"
        tmpl, modality = C.OURS.img, "RGB"
    steps = sorted({max(1, int(cfg.epochs * 0.5)), max(1, int(cfg.epochs * 0.75))})
    clip = 20 if flow else 40

    def loader(ann: str, pipeline: str, batch: int, test: bool) -> str:
        return (f"dict(batch_size={batch}, num_workers={cfg.workers}, persistent_workers={cfg.workers > 0}, "
                f"sampler=dict(type='DefaultSampler', shuffle={not test}), dataset=dict(type='RawframeDataset', "
                f"ann_file='{run / ann}', data_prefix=dict(img=''), filename_tmpl='{tmpl}', modality='{modality}', "
                f"pipeline={pipeline}, test_mode={test}))")

    text = f'''# Written by synthact for the selection in this run folder: mmaction2 1.2.0 TSN, {cfg.modality}.
# Lists: mmaction2 rawframe format with absolute frame folders (data_prefix is empty).
custom_imports = dict(imports=['synthact.train.mmaction_plugins'], allow_failed_imports=False)
default_scope = 'mmaction'
work_dir = '{run / "mmaction2"}'
randomness = dict(seed={cfg.seed}, deterministic=False)
model = dict(
    type='Recognizer2D',
    backbone=dict(type='ResNet', depth={DEPTH[cfg.backbone]}, in_channels={2 * length if flow else 3},
                  pretrained={pretrained!r}, torchvision_pretrain=True, norm_eval=False,
                  partial_bn={pretrained is not None}),
    cls_head=dict(type='TSNHead', num_classes={cfg.num_classes}, in_channels={FEATURES[cfg.backbone]},
                  spatial_type='avg', consensus=dict(type='AvgConsensus', dim=1),
                  dropout_ratio={DROPOUT[cfg.modality]}, init_std=0.001, average_clips='prob'),
    data_preprocessor=dict(type='ActionDataPreprocessor', {norm}, format_shape='NCHW'))
train_pipeline = [
    dict(type='SampleFrames', clip_len={length}, frame_interval=1, num_clips={cfg.segments}),
    dict(type='RawFrameDecode'),
    dict(type='Resize', scale=(-1, {short})),
    dict(type='MultiScaleCrop', input_size={cfg.size}, scales=(1, 0.875, 0.75, 0.66), random_crop=False,
         max_wh_scale_gap=1),
    dict(type='Resize', scale=({cfg.size}, {cfg.size}), keep_ratio=False),
    {flip}
    dict(type='FormatShape', input_format='NCHW'),
    dict(type='PackActionInputs')]
val_pipeline = [
    dict(type='SampleFrames', clip_len={length}, frame_interval=1, num_clips={cfg.segments}, test_mode=True),
    dict(type='RawFrameDecode'),
    dict(type='Resize', scale=(-1, {short})),
    dict(type='CenterCrop', crop_size={cfg.size}),
    dict(type='FormatShape', input_format='NCHW'),
    dict(type='PackActionInputs')]
test_pipeline = [
    dict(type='SampleFrames', clip_len={length}, frame_interval=1, num_clips=25, test_mode=True),
    dict(type='RawFrameDecode'),
    dict(type='Resize', scale=(-1, {short})),
    dict(type='{"TenCrop" if cfg.eval_protocol == "tsn" else "CenterCrop"}', crop_size={cfg.size}),
    dict(type='FormatShape', input_format='NCHW'),
    dict(type='PackActionInputs')]
train_dataloader = {loader(LISTS[0], "train_pipeline", cfg.batch_size, False)}
val_dataloader = {loader(LISTS[1], "val_pipeline", cfg.batch_size, True)}
test_dataloader = {loader(LISTS[1], "test_pipeline", 1, True)}
val_evaluator = dict(type='AccMetric', metric_list=('top_k_accuracy', 'mean_class_accuracy'))
test_evaluator = val_evaluator
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs={cfg.epochs}, val_begin=1, val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
optim_wrapper = dict(optimizer=dict(type='SGD', lr={cfg.lr}, momentum=0.9, weight_decay={cfg.weight_decay}),
                     clip_grad=dict(max_norm={clip}, norm_type=2))
param_scheduler = [dict(type='MultiStepLR', begin=0, end={cfg.epochs}, by_epoch=True, milestones={steps}, gamma=0.1)]
default_hooks = dict(
    runtime_info=dict(type='RuntimeInfoHook'), timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=20, ignore_last=False), param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=2), sampler_seed=dict(type='DistSamplerSeedHook'),
    sync_buffers=dict(type='SyncBuffersHook'))
env_cfg = dict(cudnn_benchmark=False, mp_cfg=dict(mp_start_method='spawn', opencv_num_threads=1),
               dist_cfg=dict(backend='nccl'))
log_processor = dict(type='LogProcessor', window_size=20, by_epoch=True)
vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='ActionVisualizer', vis_backends=vis_backends)
log_level = 'WARNING'
load_from = None
resume = False
'''
    path = run / CONFIG
    path.write_text(text)
    return path


def latest_checkpoint(work_dir: Path) -> Path | None:
    """The newest complete ``epoch_N.pth``: mmengine writes ``last_checkpoint`` only after the epoch
    file, and a kill mid-save leaves a torn zip, so neither can be trusted to name it."""
    for path in sorted(work_dir.glob("epoch_*.pth"), key=lambda p: int(p.stem.split("_")[1]), reverse=True):
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as z:
                if z.testzip() is None:
                    return path
    return None


def train_mmaction(cfg, run: Path, resume: bool) -> dict:
    """Train and test the run's selection with mmaction2's TSN; metrics in our format."""
    try:
        from mmengine.config import Config
        from mmengine.runner import Runner

        from . import mmaction_plugins  # the shim must come before mmaction.models
    except ImportError as exc:
        raise BadConfig(f"--engine mmaction2 needs the optional extra: make mmaction ({exc})") from None
    config = Config.fromfile(str(Path(run) / CONFIG))
    mmaction_plugins.trust(config.work_dir)
    if resume:
        latest = latest_checkpoint(Path(config.work_dir))
        config.resume, config.load_from = latest is not None, str(latest) if latest else None
    runner = Runner.from_cfg(config)
    runner.train()
    res = runner.test()
    metrics = {"top1": float(res["acc/top1"]), "mean_class": float(res["acc/mean1"]), "engine": "mmaction2",
               "protocol": cfg.eval_protocol, "n": len(C.read_annotations(Path(run) / "val_list.txt", clip_ids=False)),
               "mmaction2": {k: float(v) for k, v in res.items()}}
    (Path(run) / "metrics.json").write_text(json.dumps(metrics, indent=1))
    return metrics
