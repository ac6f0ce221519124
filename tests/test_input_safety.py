"""Careless and hostile input files: captures, motion libraries, bone maps and split files.

Each bad file is refused with one line naming it (and its line where it has one), exit 2 through
the CLI, no traceback, nothing recorded as done; a seeded fuzz test holds every parser to that.
"""
from __future__ import annotations

import json
import random
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from synthact.data.splits import load_splits
from synthact.errors import SynthactError
from synthact.render.bvh import FRAME_TIME, load_bvh, parse_bvh
from synthact.render.mocap import bone_maps, load_library

from .conftest import refusal, run_cli

SMALL = ("--per-class", "1", "--frames", "3", "--size", "64x48", "--quiet")


@pytest.fixture
def capture(fixtures, tmp_path) -> Path:
    """A real capture cut to 30 frames (CMU 02_01, a walk): tiny to parse, to mutate and to render."""
    lines = (fixtures / "mocap/cmu_mb/02_01.bvh").read_text().splitlines()
    m = lines.index("MOTION")
    path = tmp_path / "tiny.bvh"
    path.write_text("\n".join(lines[:m + 1] + ["Frames: 30", "Frame Time: 0.0083333"] + lines[m + 3:m + 33]) + "\n")
    return path


def _edit(path: Path, name: str, edit) -> tuple[Path, int]:
    """A copy of ``path`` with ``edit(lines, motion_line)`` applied; returns it and the 1-based line
    the edit touched."""
    lines = path.read_text().splitlines()
    k = edit(lines, lines.index("MOTION"))
    out = path.with_name(name)
    out.write_text("\n".join(lines) + "\n")
    return out, k + 1


def _set(lines, k, text):
    lines[k] = text
    return k


def _cut(lines, m):
    del lines[m - 40:]
    return len(lines) - 1


def _token(lines, k, col, text):
    tok = lines[k].split()
    tok[col] = text
    return _set(lines, k, " ".join(tok))


BAD_CAPTURES = {  # edit -> what the refusal says
    "nan": (lambda L, m: _token(L, m + 5, 3, "nan"), "'nan' is not a finite number"),
    "inf": (lambda L, m: _token(L, m + 9, 0, "-inf"), "'-inf' is not a finite number"),
    "overflow": (lambda L, m: _token(L, m + 4, 7, "1e999"), "'1e999' is not a finite number"),
    "frame time 0": (lambda L, m: _set(L, m + 2, "Frame Time: 0"), "Frame Time: '0'"),
    "frame time nan": (lambda L, m: _set(L, m + 2, "Frame Time: nan"), "Frame Time: 'nan'"),
    "more frames said": (lambda L, m: _set(L, m + 1, "Frames: 31") and m + 32,
                         "30 motion rows, but 'Frames:' says 31"),
    "fewer frames said": (lambda L, m: _set(L, m + 1, "Frames: 29") and m + 32,
                          "30 motion rows, but 'Frames:' says 29"),
    "negative frames": (lambda L, m: _set(L, m + 1, "Frames: -3"), "Frames: '-3'"),
    "offset nan": (lambda L, m: _set(L, 3, "  OFFSET 0 nan 0"), "bad OFFSET"),
    "short row": (lambda L, m: _set(L, m + 6, " ".join(L[m + 6].split()[:-1])), "95 values, the hierarchy has 96"),
    "truncated": (_cut, "truncated hierarchy"),
}


@pytest.mark.parametrize("case", BAD_CAPTURES)
def test_a_bad_capture_is_refused_naming_its_file_and_line(capture, case):
    edit, words = BAD_CAPTURES[case]
    path, line = _edit(capture, "bad.bvh", edit)
    with pytest.raises(SynthactError) as err:
        parse_bvh(path)
    assert str(err.value).startswith(f"{path}:{line}: ") and words in str(err.value), str(err.value)


@pytest.mark.slow
@pytest.mark.parametrize("case", ["nan", "frame time 0", "truncated"])
def test_render_refuses_a_library_with_a_bad_capture_before_rendering(capture, tmp_path, case):
    path, line = _edit(capture, "bad.bvh", BAD_CAPTURES[case][0])
    (tmp_path / "motions.yaml").write_text("motions:\n  walk: [tiny.bvh]\n  jump: [bad.bvh]\n")
    r = run_cli("render-clips", "--out", str(tmp_path / "out"), "--motions", str(tmp_path / "motions.yaml"),
                "--classes", "walk,jump", *SMALL)
    refusal(r, f"{path}:{line}: ", "class jump", "motions.yaml")
    assert not (tmp_path / "out" / "manifest.jsonl").exists() and not (tmp_path / "out" / "rawframes").exists()


BAD_LIBRARIES = {  # motions.yaml -> what the refusal says
    "yaml syntax": ("motions:\n  walk: [tiny.bvh\n  run: [tiny.bvh]\n", "motions.yaml:3: not valid YAML"),
    "control character": ("motions:\n  walk: [tiny.bvh]\n  run: [ti\x07ny.bvh]\n", "motions.yaml:3: not valid YAML"),
    "not a mapping": ("- walk\n- tiny.bvh\n", "expected keys bone_map (optional) and motions"),
    "entry without file": ("motions:\n  walk:\n    - frames: [0, 10]\n", "class walk: expected a file name or"),
    "frames abc": ("motions:\n  walk:\n    - {file: tiny.bvh, frames: abc}\n", "frames 'abc'"),
    "frames reversed": ("motions:\n  walk:\n    - {file: tiny.bvh, frames: [20, 10]}\n", "frames [20, 10]"),
    "frames past the end": ("motions:\n  walk:\n    - {file: tiny.bvh, frames: [29, 40]}\n", "past its 30 frames"),
    "empty class": ("motions:\n  walk: [tiny.bvh]\n  wave: []\n", "class wave: lists no motion file"),
    "null class": ("motions:\n  wave:\n", "class wave: lists no motion file"),
    "escaping class": ('motions:\n  "../../escape": [tiny.bvh]\n', "bad class name '../../escape'"),
    "missing capture": ("motions:\n  walk: [nosuch.bvh]\n", "file 'nosuch.bvh' not found"),
    "missing bone map": ("bone_map: nosuch.yaml\nmotions:\n  walk: [tiny.bvh]\n", "bone_map: file 'nosuch.yaml'"),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", BAD_LIBRARIES)
def test_a_bad_motion_library_is_refused_naming_it(capture, tmp_path, case):
    text, words = BAD_LIBRARIES[case]
    lib = tmp_path / "motions.yaml"
    lib.write_text(text)
    out = tmp_path / "sub" / "out"
    r = run_cli("render-clips", "--out", str(out), "--motions", str(lib), "--classes", "walk", *SMALL)
    refusal(r, str(lib), words)
    assert not out.exists() and not list(tmp_path.rglob("escape*"))


BAD_BONE_MAPS = {  # bone-map file -> what the refusal says
    "yaml syntax": ("hips: Hips\nknee.l: [LeftLeg\n", "map.yaml:3: not valid YAML"),
    "a list": ("- Hips\n- LeftLeg\n", "expected a mapping key point -> joint name"),
    "a number for a joint": ("hips: 3\n", "hips: expected a joint name"),
    "unknown key point": ("hip: Hips\n", "unknown key point(s) hip"),
}


@pytest.mark.parametrize("case", BAD_BONE_MAPS)
def test_a_bad_bone_map_file_is_refused_naming_it(tmp_path, case):
    text, words = BAD_BONE_MAPS[case]
    (tmp_path / "map.yaml").write_text(text)
    with pytest.raises(SynthactError, match=re.escape(words)) as err:
        bone_maps(tmp_path / "map.yaml")
    assert str(err.value).startswith(str(tmp_path / "map.yaml"))


@pytest.mark.slow
def test_render_with_a_bad_bone_map_names_it_and_records_nothing(capture, tmp_path):
    (tmp_path / "motions.yaml").write_text("motions:\n  walk: [tiny.bvh]\n")
    (tmp_path / "map.yaml").write_text(BAD_BONE_MAPS["yaml syntax"][0])
    r = run_cli("render-clips", "--out", str(tmp_path / "out"), "--motions", str(tmp_path / "motions.yaml"),
                "--bone-map", str(tmp_path / "map.yaml"), "--classes", "walk", *SMALL)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert f"{tmp_path / 'map.yaml'}:3: not valid YAML" in r.stderr
    assert not (tmp_path / "out" / "manifest.jsonl").exists() or not (tmp_path / "out" / "manifest.jsonl").read_text()


# ---------------------------------------------------------------- split files
def _splits(fixtures, tmp_path, dataset: str) -> Path:
    d = tmp_path / dataset
    shutil.copytree(fixtures / "real/splits" / dataset, d)
    return d


def _replace_line(path: Path, k: int, text: str) -> None:
    lines = path.read_text().split("\n")
    lines[k - 1] = text
    path.write_text("\n".join(lines))


BAD_SPLITS = {  # (dataset, file, 1-based line, new text) -> what the refusal says
    "classInd id": (("ucf101", "classInd.txt", 7, "seven BabyCrawling"), "expected '<id> <Class>'"),
    "classInd three fields": (("ucf101", "classInd.txt", 7, "7 Baby Crawling"), "expected '<id> <Class>'"),
    "classInd repeated": (("ucf101", "classInd.txt", 7, "6 Archery"), "listed twice"),
    "train label": (("ucf101", "trainlist01.txt", 3, "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c03.avi one"),
                    "label one disagrees with classInd"),
    "train no label": (("ucf101", "trainlist02.txt", 3, "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c03.avi"),
                       "expected 'Class/v_name.avi <label>'"),
    "climbing video": (("ucf101", "trainlist01.txt", 3, "Punch/../../../x.avi 71"), "bad video name '../../../x'"),
    "absolute video": (("ucf101", "testlist01.txt", 3, "/etc/passwd.avi"), "bad class name ''"),
    "test repeats train": (("ucf101", "testlist01.txt", 3, "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi"),
                           "also in this split's train list"),
    "hmdb tag 12": (("hmdb51", "wave_test_split1.txt", 2, "20060723sfjffbartsinger_wave_f_cm_np1_ba_med_0.avi 12"),
                    "expected '<video>.avi <0|1|2>'"),
    "hmdb climbing video": (("hmdb51", "wave_test_split3.txt", 4, "../../x.avi 1"), "bad video name '../../x'"),
}


@pytest.mark.parametrize("case", BAD_SPLITS)
def test_a_bad_split_line_is_refused_naming_file_and_line(fixtures, tmp_path, case):
    (dataset, name, k, text), words = BAD_SPLITS[case]
    d = _splits(fixtures, tmp_path, dataset)
    _replace_line(d / name, k, text)
    with pytest.raises(SynthactError) as err:
        load_splits(dataset, d)
    assert str(err.value).startswith(f"{d / name}:{k}: ") and words in str(err.value), str(err.value)


@pytest.mark.slow
def test_prepare_never_follows_a_split_line_out_of_its_folders(fixtures, tmp_path):
    d = _splits(fixtures, tmp_path, "ucf101")
    _replace_line(d / "trainlist01.txt", 3, "Punch/../../../x.avi 71")
    out = tmp_path / "deep" / "out"
    r = run_cli("synthact", "prepare", "ucf101", "--videos", str(fixtures / "real/videos/ucf101"), "--splits", str(d),
                "--out", str(out), "--classes", "Punch", "--quiet")
    refusal(r, f"{d / 'trainlist01.txt'}:3: bad video name '../../../x'")
    assert not out.exists()


def test_every_line_of_the_official_split_files_parses(fixtures):
    ucf = load_splits("ucf101", fixtures / "real/splits/ucf101")
    listed = sum(len([ln for ln in p.read_text().splitlines() if ln.strip()])
                 for p in (fixtures / "real/splits/ucf101").glob("*list0*.txt"))
    assert sum(len(v) for part in (ucf.train, ucf.test) for v in part.values()) == listed
    hmdb = load_splits("hmdb51", fixtures / "real/splits/hmdb51")
    used = sum(ln.split()[1] != "0" for p in (fixtures / "real/splits/hmdb51").glob("*_split*.txt")
               for ln in p.read_text().splitlines() if ln.strip())
    assert sum(len(v) for part in (hmdb.train, hmdb.test) for v in part.values()) == used
    assert set("!#&()+;@[]~") <= set("".join(v.stem for v in hmdb.videos()))   # HMDB's odd names pass


# ---------------------------------------------------------------- seeded fuzz
def _truncate(data: bytes, rng: random.Random) -> bytes:
    return data[:rng.randrange(len(data))]


def _flip(data: bytes, rng: random.Random) -> bytes:
    b = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
    return bytes(b)


def _nonfinite(data: bytes, rng: random.Random) -> bytes:
    numbers = list(re.finditer(rb"-?\d+(\.\d+)?", data))
    if not numbers:
        return data
    m = rng.choice(numbers)
    return data[:m.start()] + rng.choice([b"nan", b"NaN", b"inf", b"-inf", b"1e999", b"-1e400"]) + data[m.end():]


def _drop_line(data: bytes, rng: random.Random) -> bytes:
    lines = data.split(b"\n")
    del lines[rng.randrange(len(lines))]
    return b"\n".join(lines)


def _dup_line(data: bytes, rng: random.Random) -> bytes:
    lines = data.split(b"\n")
    k = rng.randrange(len(lines))
    return b"\n".join(lines[:k + 1] + lines[k:])


def _climb(data: bytes, rng: random.Random) -> bytes:
    words = list(re.finditer(rb"[A-Za-z_][\w.]*", data))
    if not words:
        return data
    m = rng.choice(words)
    return data[:m.start()] + rng.choice([b"../", b"../../", b"/"]) + data[m.start():]


MUTATIONS = (_truncate, _flip, _nonfinite, _drop_line, _dup_line, _climb)


def _mutant(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    ops = [rng.choice(MUTATIONS) for _ in range(rng.randint(1, 2))]
    for op in ops:
        data = op(data, rng) if data else data
    return data, "+".join(op.__name__ for op in ops)


def _outcome(what: str, names: str, parse, *args):
    """``parse(*args)``, or None when it refused in one line naming ``names``; any other exception
    fails the test naming the mutant."""
    try:
        return parse(*args)
    except SynthactError as exc:
        msg = str(exc)
        assert "\n" not in msg and names in msg, (what, msg)
        return None
    except Exception as exc:  # noqa: BLE001 -- the point: nothing else may escape
        pytest.fail(f"{what}: {type(exc).__name__}: {exc}")


LIBRARY = b"""bone_map: cgspeed
motions:
  walk: [tiny.bvh]
  jump:
    - file: tiny.bvh
      frames: [0, 20]
"""


@pytest.mark.slow
def test_fuzzed_inputs_parse_to_finite_values_or_are_refused_naming_the_file(capture, fixtures, tmp_path):
    rng = random.Random(11)
    good, bad = [], []
    for i in range(120):  # captures: finite motion and positions, a sane frame time, or a refusal
        data, how = _mutant(capture.read_bytes(), rng)
        path = capture.with_name(f"m{i}.bvh")
        path.write_bytes(data)
        got = _outcome(f"{path.name} ({how})", str(path), load_bvh, str(path), path.stat().st_mtime_ns)
        if got is not None:
            b, P = got
            assert np.isfinite(b.motion).all() and np.isfinite(b.offsets).all() and np.isfinite(P).all(), how
            assert FRAME_TIME[0] <= b.frame_time <= FRAME_TIME[1], how
        if got is None:
            bad.append(path)
        elif data != capture.read_bytes():
            good.append(path)
    assert len(good) >= 2 and len(bad) >= 20, (len(good), len(bad))

    for i in range(80):  # motion libraries: safe class names and existing, parsed captures, or a refusal
        data, how = _mutant(LIBRARY, rng)
        path = tmp_path / f"lib{i}.yaml"
        path.write_bytes(data)
        lib = _outcome(f"{path.name} ({how})", str(path), load_library, path)
        for entries in (lib or {"motions": {}})["motions"].values():
            assert all(Path(e["file"]).is_file() and Path(e["file"]).parent == tmp_path.resolve()
                       for e in entries), how

    for dataset, keep in (("ucf101", _mini_ucf), ("hmdb51", _mini_hmdb)):
        base = tmp_path / f"{dataset}-base"
        keep(fixtures / "real/splits" / dataset, base)
        load_splits(dataset, base)  # the trimmed copy itself is valid
        for i in range(40):
            d = tmp_path / f"{dataset}-{i}"
            shutil.copytree(base, d)
            victim = rng.choice(sorted(d.iterdir()))
            data, how = _mutant(victim.read_bytes(), rng)
            victim.write_bytes(data)
            s = _outcome(f"{victim.name} ({how})", str(d), load_splits, dataset, d)
            for k in (s.train if s else {}):
                assert not {v.clip for v in s.train[k]} & {v.clip for v in s.test[k]}, how
                assert all(len(Path(v.relpath).parts) == 2 and ".." not in v.relpath for v in s.videos()), how

    _render_fuzzed(tmp_path, good[:2], bad[0])


def _mini_ucf(src: Path, dst: Path) -> None:
    """The first four classes of the official UCF-101 split files, a few videos each."""
    dst.mkdir()
    classes = src.joinpath("classInd.txt").read_text().splitlines()[:4]
    dst.joinpath("classInd.txt").write_text("\r\n".join(classes) + "\r\n")
    names = tuple(ln.split()[1] + "/" for ln in classes)
    for p in src.glob("*list0*.txt"):
        lines = [ln for ln in p.read_text().splitlines() if ln.startswith(names)]
        dst.joinpath(p.name).write_text("\r\n".join(lines[::40]) + "\r\n")


def _mini_hmdb(src: Path, dst: Path) -> None:
    """Three classes of the official HMDB-51 split files, their first ten lines."""
    dst.mkdir()
    for cls in ("brush_hair", "cartwheel", "wave"):
        for k in (1, 2, 3):
            name = f"{cls}_test_split{k}.txt"
            dst.joinpath(name).write_text("\n".join(src.joinpath(name).read_text().splitlines()[:10]) + "\n")


def _render_fuzzed(tmp_path: Path, good: list[Path], bad: Path) -> None:
    """Mutants that parse render, or fail alone naming their file; none leaves a NaN in the
    manifest. A mutant that does not parse refuses the run before it renders."""
    lib = tmp_path / "fuzz.yaml"
    lib.write_text("motions:\n" + "".join(f"  fz{i}: [{p.name}]\n" for i, p in enumerate(good)))
    out = tmp_path / "fuzz-out"
    r = run_cli("render-clips", "--out", str(out), "--motions", str(lib), "--classes", "fz0,fz1", *SMALL)
    assert r.returncode in (0, 1) and "Traceback" not in r.stderr, r.stderr
    for ln in r.stderr.splitlines():
        if ln.strip().startswith("failed "):
            assert any(p.name in ln for p in good), ln

    def no_nan(token):
        raise AssertionError(f"{token} in {out / 'manifest.jsonl'}")
    manifest = out / "manifest.jsonl"
    for ln in (manifest.read_text().splitlines() if manifest.exists() else []):
        json.loads(ln, parse_constant=no_nan)
    lib.write_text(f"motions:\n  fz0: [{good[0].name}]\n  fz1: [{bad.name}]\n")
    refusal(run_cli("render-clips", "--out", str(tmp_path / "fuzz-bad"), "--motions", str(lib), "--classes",
                    "fz0,fz1", *SMALL), str(bad))
