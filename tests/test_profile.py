"""Shot profiles: HMDB-51's tags counted from the official split files, the shipped file, user profiles."""
from __future__ import annotations

from collections import Counter
from importlib import resources

import numpy as np
import pytest

from synthact.data.profile import draw, hmdb51_profile, hmdb51_tags, load_profile, parse_name
from synthact.errors import BadConfig, BadData

from .conftest import refusal, run_cli


def test_hmdb51_tags_give_the_counts_the_issue_quotes(fixtures):
    tags = hmdb51_tags(fixtures / "real/splits/hmdb51")
    n = len(tags)
    assert n == 6766
    share = lambda values, v: sum(x == v for x in values) / n  # noqa: E731
    body = [t.body for t in tags]
    assert round(100 * share(body, "full")) == 56 and round(100 * share(body, "upper")) == 31
    assert round(100 * share(body, "head")) == 12
    assert round(100 * share([t.camera for t in tags], "moving")) == 60
    assert round(100 * sum(t.people >= 2 for t in tags) / n) == 15
    view = [t.view for t in tags]
    assert [round(100 * share(view, v)) for v in ("front", "left", "right", "back")] == [41, 22, 19, 18]
    assert len({t.cls for t in tags}) == 51
    p = hmdb51_profile(fixtures / "real/splits/hmdb51")
    assert p.clips["all"] == 6766 and sum(v for k, v in p.clips.items() if k != "all") == 6766
    assert p.overall.body["full"] == pytest.approx(0.5619, abs=1e-4)
    assert p.classes["cartwheel"].body == {"full": 1.0}       # every cartwheel clip shows the whole body
    assert p.classes["smile"].body.get("head", 0) > 0.5        # smiles are faces


def test_the_shipped_profile_is_the_commands_output(fixtures, tmp_path):
    out = tmp_path / "hmdb51.yaml"
    r = run_cli("synthact", "profile", "hmdb51", "--splits", str(fixtures / "real/splits/hmdb51"), "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert "6766 videos, 51 classes: body full 56%, upper 31%, head 12%" in r.stdout
    assert "camera moving 60%; two or more people 15%" in r.stdout
    shipped = resources.files("synthact.assets").joinpath("profiles", "hmdb51.yaml").read_text()
    assert out.read_text() == shipped
    assert load_profile("hmdb51") == load_profile(out)


def test_bad_names_are_named_by_file_and_line():
    assert parse_name("April_09_brush_hair_u_nm_np1_ba_goo_0", "brush_hair", "x").body == "upper"
    with pytest.raises(BadData, match=r"f.txt:3: .*unknown tag view 'up'"):
        parse_name("a_wave_f_nm_np1_up_goo_0", "wave", "f.txt:3")
    with pytest.raises(BadData, match="f.txt:1: 'wave_1' does not end in"):
        parse_name("wave_1", "wave", "f.txt:1")


def test_draw_follows_the_class_shares():
    p = load_profile("hmdb51")
    rng = np.random.default_rng(0)
    n = 20000
    shots = [draw(p, "brush_hair", rng) for _ in range(n)]
    want = p.classes["brush_hair"]
    for dim in ("body", "camera", "people", "view"):
        got = Counter(getattr(s, dim) for s in shots)
        for value, share in want.of(dim).items():
            assert abs(got[value] / n - share) < 0.015, (dim, value, got[value] / n, share)
    # our class names map onto the profile's through assets/classes.yaml (pick_up -> pick); unknown: overall
    assert p.shares("pick_up") is p.classes["pick"]
    assert p.shares("no_such_class") is p.overall
    # same seed, same shots
    assert [draw(p, "wave", np.random.default_rng(3)) for _ in range(3)] == \
           [draw(p, "wave", np.random.default_rng(3)) for _ in range(3)]


def test_a_user_profile_and_its_refusals(tmp_path):
    good = tmp_path / "mine.yaml"
    good.write_text("name: mine\noverall:\n  body: {full: 3, upper: 1}\n  camera: {moving: 1, static: 1}\n"
                    "  people: {1: 1}\n  view: {front: 1}\nclasses:\n  wave: {body: {upper: 1}}\n")
    p = load_profile(good)
    assert p.overall.body == {"full": 0.75, "upper": 0.25}
    assert p.classes["wave"].body == {"upper": 1.0} and p.classes["wave"].camera == p.overall.camera
    assert draw(p, "wave", np.random.default_rng(0)).body == "upper"
    cases = {
        "overall:\n  body: {full: 1}\n": "missing camera",
        "overall:\n  body: {ful: 1}\n  camera: {moving: 1}\n  people: {1: 1}\n  view: {front: 1}\n":
            "overall.body: unknown value 'ful'",
        "overall:\n  body: {full: -1}\n  camera: {moving: 1}\n  people: {1: 1}\n  view: {front: 1}\n":
            "overall.body.full: weight -1",
        "overall:\n  body: {full: 1}\n  camera: {moving: 1}\n  people: {0: 1}\n  view: {front: 1}\n":
            "people is a whole number",
        "overall:\n  body: {full: 0}\n  camera: {moving: 1}\n  people: {1: 1}\n  view: {front: 1}\n":
            "weights sum to 0",
        "overal: {}\n": "unknown key overal",
        "overall: [1, 2\n": "not valid YAML",
        "overall:\n  body: {full: 1}\n  camera: {moving: 1}\n  people: {1: 1}\n  view: {front: 1}\n"
        "classes:\n  wave: {pose: {a: 1}}\n": "classes.wave: unknown dimension pose",
    }
    for i, (text, words) in enumerate(cases.items()):
        bad = tmp_path / f"bad{i}.yaml"
        bad.write_text(text)
        with pytest.raises(BadConfig) as exc:
            load_profile(bad)
        line = str(exc.value)
        assert str(bad) in line and words in line and "\n" not in line, line
    with pytest.raises(BadConfig, match="no such profile file or shipped profile"):
        load_profile(tmp_path / "nothing.yaml")


def test_profile_command_refuses_a_bad_split_folder(tmp_path):
    (tmp_path / "wave_test_split1.txt").write_text("a_wave_f_nm_np1_fr_goo_0.avi 1\nb_wave_f_zz_np1_fr_goo_0.avi 2\n")
    for k in (2, 3):
        (tmp_path / f"wave_test_split{k}.txt").write_text("a_wave_f_nm_np1_fr_goo_0.avi 1\n")
    r = run_cli("synthact", "profile", "hmdb51", "--splits", str(tmp_path), "--out", str(tmp_path / "p.yaml"))
    refusal(r, "wave_test_split1.txt:2", "camera 'zz'")
    assert not (tmp_path / "p.yaml").exists()
