"""The one data contract that joins the stages.

A rawframe root holds ``rawframes/<class>/<clip>/img_00001.jpg`` (1-based RGB frames) and, once
flow exists, ``flow_x_00001.jpg`` / ``flow_y_00001.jpg`` where flow k is frame k -> k+1, encoded
as TSN did: clip to +-bound, ``round(255*(v+bound)/(2*bound))``, one grayscale JPEG per component.
Beside it lie ``manifest.jsonl`` (one JSON line per finished clip), ``classes.txt`` and
mmaction2-style annotation lists ``<class>/<clip> <num_frames> <label>``. A training run's folder
holds the files :class:`RunLayout` names. Every stage reads and writes through this package, nothing else.

One module per concern, re-exported here (``from synthact import contract as C``; ``C.clip_dir``):

- :mod:`.names`: safe class and clip names, paths kept inside the root, number checks;
- :mod:`.layout`: the root's file names, clip folders and frame file names;
- :mod:`.codec`: TSN's flow encoding and strict JPEG frames;
- :mod:`.files`: whole-or-nothing writes (one fsynced ``atomic_write``), safe reads and appends;
- :mod:`.manifest`: ``manifest.jsonl``, one line per finished clip;
- :mod:`.staging`: clip folders swapped in whole, and the recovery after a kill;
- :mod:`.settings`: ``root.json`` and ``flow.json``, what a root records once;
- :mod:`.lists`: ``classes.txt`` and the annotation lists;
- :mod:`.run_layout`: the files of a training run's folder.
"""
from ..errors import BadData
from .codec import (
    FLOW_BOUND,
    FLOW_ENCODING,
    JPEG_QUALITY,
    check_jpeg,
    decode_flow,
    decode_image,
    encode_flow,
    encode_jpeg,
    read_flow_jpegs,
    read_flow_pair,
    read_image,
    write_flow_jpegs,
    write_flow_pair,
    write_jpeg,
)
from .files import (
    atomic_output,
    atomic_write,
    open_append,
    read_json,
    read_regular,
    read_text,
    remove_stale_temps,
    write_json,
    write_lines,
)
from .layout import (
    ANNOTATIONS,
    BLENDER_FRAMES,
    CLASSES,
    FAILURES,
    FLOW_INFO,
    FLOW_MANIFEST,
    MANIFEST,
    MISSING,
    MMACTION2_FLOW,
    OURS,
    PREVIEW,
    RAWFRAMES,
    ROOT_SETTINGS,
    SYNTHETIC_LIST,
    Layout,
    clip_dir,
    count_frames,
    flow_names,
    img_name,
    is_flow_name,
    is_frame_name,
    iter_clips,
    label_map_path,
    parse_frame_name,
    split_list_path,
    synthetic_list_path,
)
from .lists import Entry, read_annotations, read_classes, write_annotations, write_classes, write_index
from .manifest import ManifestLine, append_manifest, read_manifest, repair_manifest
from .names import check_clip_id, check_name, check_relpath, class_of, finite, inside, whole
from .run_layout import GridLayout, RunLayout
from .settings import (
    REAL_SETTINGS,
    SYNTHETIC_SETTINGS,
    FlowInfo,
    claim_settings,
    recorded_settings,
    settings_diff,
    settings_of,
)
from .staging import (
    clear_pending,
    commit_dir,
    leftovers,
    pending_path,
    reconcile,
    recover_pending,
    recover_staging,
    remove_tree,
    restaged,
    staged_clip,
    staging_dir,
)

__all__ = [
    "BadData",
    "check_name", "check_clip_id", "class_of", "ManifestLine", "check_relpath", "inside", "finite", "whole",
    "read_regular",
    "read_text", "atomic_output", "atomic_write", "remove_stale_temps", "write_json", "read_json", "write_lines",
    "open_append", "RAWFRAMES", "MANIFEST", "CLASSES", "ANNOTATIONS", "FLOW_INFO", "FLOW_MANIFEST",
    "ROOT_SETTINGS", "SYNTHETIC_LIST", "MISSING", "FAILURES", "PREVIEW", "Layout", "OURS", "MMACTION2_FLOW",
    "img_name", "flow_names", "BLENDER_FRAMES", "is_flow_name", "is_frame_name", "parse_frame_name",
    "label_map_path", "split_list_path", "synthetic_list_path", "clip_dir", "iter_clips", "count_frames",
    "FLOW_BOUND", "JPEG_QUALITY", "FLOW_ENCODING", "encode_flow", "decode_flow", "encode_jpeg", "write_jpeg",
    "check_jpeg", "read_image", "decode_image", "write_flow_pair", "write_flow_jpegs", "read_flow_pair",
    "read_flow_jpegs", "read_manifest", "repair_manifest", "append_manifest", "remove_tree", "staging_dir",
    "commit_dir", "pending_path", "staged_clip", "leftovers", "recover_staging", "recover_pending",
    "clear_pending", "reconcile", "restaged", "FlowInfo", "SYNTHETIC_SETTINGS", "REAL_SETTINGS", "settings_of",
    "recorded_settings", "settings_diff", "claim_settings", "Entry", "write_classes", "read_classes",
    "write_annotations", "read_annotations", "write_index", "RunLayout", "GridLayout",
]
