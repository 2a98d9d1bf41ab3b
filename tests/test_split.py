import json
import random
from collections import Counter, defaultdict

import pytest

from gan_studio.data import DatasetError, ImageRecord, Split, load_split, make_split, save_split


def records_for(counts: dict[str, int], name=lambda i: f"img{i:03d}") -> list[ImageRecord]:
    classes = sorted(counts)
    return [
        ImageRecord(path=f"{c}/{name(i)}.png", label=classes.index(c), class_name=c)
        for c in classes
        for i in range(counts[c])
    ]


def class_of(path: str) -> str:
    return path.split("/")[0]


def test_split_is_stratified_and_keeps_a_train_image_per_class():
    records = records_for({"Clamp": 10, "Nut": 7, "Pair": 2, "Single": 1, "Screw": 100})
    split = make_split(records, test_fraction=0.3, seed=0)

    test_counts = Counter(class_of(p) for p in split.test)
    train_counts = Counter(class_of(p) for p in split.train)
    assert test_counts == {"Clamp": 3, "Nut": 2, "Pair": 1, "Screw": 30}
    assert train_counts == {"Clamp": 7, "Nut": 5, "Pair": 1, "Single": 1, "Screw": 70}

    greedy = make_split(records, test_fraction=0.9, seed=0)
    assert all(Counter(class_of(p) for p in greedy.train)[c] >= 1 for c in ("Clamp", "Nut", "Pair", "Single"))


def test_split_is_disjoint_complete_and_sorted():
    records = records_for({"a": 13, "b": 29})
    split = make_split(records, test_fraction=0.25, seed=3)
    assert not set(split.train) & set(split.test)
    assert sorted(split.train + split.test) == sorted(r.path for r in records)
    assert split.train == sorted(split.train) and split.test == sorted(split.test)


def test_split_is_deterministic_and_independent_of_listing_order():
    records = records_for({"a": 40, "b": 25, "c": 9})
    shuffled = records[:]
    random.Random(1).shuffle(shuffled)
    first = make_split(records, seed=7)
    assert make_split(shuffled, seed=7) == first
    assert make_split(records, seed=8).test != first.test

    with_extra_class = make_split(records + records_for({"d": 5}), seed=7)
    assert [p for p in with_extra_class.test if class_of(p) != "d"] == first.test


def test_groups_stay_on_one_side_and_keep_the_fraction():
    def view_name(i):
        return f"part{i // 3:02d}_view{i % 3}"

    records = records_for({"Nut": 30, "Clamp": 12}, name=view_name)
    records += [ImageRecord("Nut/odd one.png", 1, "Nut")]  # no match: its own group
    for seed in range(5):
        split = make_split(records, test_fraction=0.3, seed=seed, group_pattern=r"^(part\d+)_view")
        side = {path: "test" for path in split.test} | {path: "train" for path in split.train}
        sides_per_group = defaultdict(set)
        for path, where in side.items():
            sides_per_group[path.split("_view")[0]].add(where)
        assert all(len(sides) == 1 for sides in sides_per_group.values())
        test_counts = Counter(class_of(p) for p in split.test)
        assert test_counts["Nut"] == 9  # round(31 * 0.3) = 9 = three whole groups
        assert test_counts["Clamp"] == 3  # round(12 * 0.3) = 4, groups of 3: 3 is the closest reachable


def test_uneven_groups_still_hit_the_target_exactly_when_possible():
    names = [f"big_{i}" for i in range(5)] + [f"solo{i}" for i in range(5)]
    records = [ImageRecord(f"A/{n}.png", 0, "A") for n in names]
    split = make_split(records, test_fraction=0.3, seed=0, group_pattern=r"^big")
    assert len(split.test) == 3 and all(p.startswith("A/solo") for p in split.test)


def test_whole_match_is_the_group_id_without_a_capture_group():
    records = [ImageRecord(f"A/{n}.png", 0, "A") for n in ("x1", "x2", "y1", "y2", "z1", "z2")]
    split = make_split(records, test_fraction=0.34, seed=0, group_pattern=r"[a-z]")
    assert len(split.test) == 2 and split.test[0][2] == split.test[1][2]


def test_zero_test_fraction_puts_everything_in_train():
    records = records_for({"a": 5, "b": 3})
    split = make_split(records, test_fraction=0.0)
    assert split.test == [] and len(split.train) == 8


@pytest.mark.parametrize("kwargs", [{"test_fraction": 1.0}, {"test_fraction": -0.1}, {"group_pattern": "("}])
def test_invalid_arguments_are_refused(kwargs):
    with pytest.raises(ValueError):
        make_split(records_for({"a": 4}), **kwargs)


def test_save_and_load_round_trip(tmp_path):
    records = records_for({"Vis à tête": 6, "Nut": 4}, name=lambda i: f"img {i}")
    split = make_split(records, test_fraction=0.3, seed=11, group_pattern=r"img (\d)")
    path = tmp_path / "run" / "split.json"
    save_split(split, path)

    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["version"] == 1 and data["seed"] == 11 and data["group_pattern"] == r"img (\d)"
    assert data["train"] == split.train and data["test"] == split.test
    assert load_split(path) == split
    assert [p.name for p in path.parent.iterdir()] == ["split.json"]  # no temp file left behind

    train_idx, test_idx = split.indices(records)
    assert sorted(train_idx + test_idx) == list(range(len(records)))
    assert {records[i].path for i in test_idx} == set(split.test)


def test_indices_refuse_paths_missing_from_the_dataset():
    records = records_for({"a": 4})
    split = Split(
        train=["a/img000.png", "a/gone.png"], test=[], seed=0, test_fraction=0.3, group_pattern=None
    )
    with pytest.raises(DatasetError, match="a/gone.png"):
        split.indices(records)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("{not json", "not readable JSON"),
        ("[1, 2]", "expected a JSON object"),
        ('{"version": 2, "seed": 0, "test_fraction": 0.3, "train": [], "test": []}', "unsupported version"),
        (
            '{"version": 1, "seed": 0, "test_fraction": 0.3, "train": "a", "test": []}',
            "'train' must be a list",
        ),
        ('{"version": 1, "seed": "x", "test_fraction": 0.3, "train": [], "test": []}', "'seed' must be"),
        ('{"version": 1, "seed": 0, "test_fraction": 1.5, "train": [], "test": []}', "'test_fraction'"),
        (
            '{"version": 1, "seed": 0, "test_fraction": 0.3, "train": ["a"], "test": ["a"]}',
            "in both train and test",
        ),
    ],
)
def test_load_split_names_the_file_on_bad_content(tmp_path, content, expected):
    path = tmp_path / "split.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DatasetError) as raised:
        load_split(path)
    assert str(path) in str(raised.value) and expected in str(raised.value)


def test_load_split_reports_a_missing_file(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        load_split(tmp_path / "nope.json")
