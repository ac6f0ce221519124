"""Manifest lines read back typed: the clip, its class and frames, and the file:line an error names."""
from __future__ import annotations

import json

import pytest

from synthact import contract as C
from synthact.errors import BadData


def _write(root, *objs, torn: str = "") -> None:
    (root / C.MANIFEST).write_text("".join(json.dumps(o) + "\n" for o in objs) + torn)


def test_lines_read_back_with_their_clip_class_frames_and_place(tmp_path, caplog):
    _write(tmp_path, {"clip": "wave/a", "num_frames": 8, "fps": 30}, {"clip": "walk/b", "num_frames": 5},
           {"clip": "wave/a", "num_frames": 9}, torn='{"clip": "walk/c", "num_fr')   # killed mid-line
    lines = C.read_manifest(tmp_path)
    assert "1 duplicate record(s) of the same clip" in caplog.text
    assert [(x.clip, x.cls, x.num_frames) for x in lines] == [("wave/a", "wave", 9), ("walk/b", "walk", 5)]
    assert [x.where for x in lines] == [f"{tmp_path / C.MANIFEST}:3", f"{tmp_path / C.MANIFEST}:2"]
    assert lines[0].fields == {"clip": "wave/a", "num_frames": 9}      # the line as written, copied verbatim
    C.repair_manifest(tmp_path)
    assert (tmp_path / C.MANIFEST).read_text().splitlines() == [json.dumps(x.fields, sort_keys=True) for x in lines]


@pytest.mark.parametrize("value", ["8", 0, 2.5, True, None])
def test_a_frame_count_that_is_not_one_names_the_file_and_line(tmp_path, value):
    _write(tmp_path, {"clip": "wave/a", "num_frames": 8}, {"clip": "wave/b", "num_frames": value})
    good, bad = C.read_manifest(tmp_path)
    assert good.num_frames == 8
    with pytest.raises(BadData) as exc:
        print(bad.num_frames)
    where = f"{tmp_path / C.MANIFEST}:2"
    assert str(exc.value) == f"{where}: clip wave/b: num_frames {value!r}: expected a whole number >= 1"


@pytest.mark.parametrize("line, says", [('{"clip": "../x"}', "bad class name '..'"),
                                        ('["wave/a"]', "has no 'clip' key"), ("{nope", "not a JSON line")])
def test_a_line_without_a_clip_names_the_file_and_line(tmp_path, line, says):
    (tmp_path / C.MANIFEST).write_text(line + "\n" + json.dumps({"clip": "wave/a"}) + "\n")
    with pytest.raises(BadData) as exc:
        C.read_manifest(tmp_path)
    assert str(exc.value).startswith(f"{tmp_path / C.MANIFEST}:1: ") and says in str(exc.value)
