"""MML's tags (identity, duplicate, nested, shrink_train): results, purity, determinism, errors."""

from __future__ import annotations

import copy
from collections import Counter

import pytest

from mml_core.tasks import TaskStructFactory, deduplicate, split_task_name
from mml_core.tasks.description import TaskDescription
from mml_core.tasks.splits import make_folds
from mml_core.tasks.tags import TagError, apply_tags, check_tags, num_folds_after_tags


@pytest.fixture
def desc() -> TaskDescription:
    """100 training samples (60 of class 0, 40 of class 1) in 5 stratified folds, 10 test samples."""
    labels = {f"t{i:03d}": int(i % 5 < 2) for i in range(100)}
    return TaskDescription(
        name="base",
        task_type="classification",
        idx_to_class={0: "a", 1: "b"},
        modalities={"image": ".png; ", "class": ""},
        train_folds=make_folds(list(labels), list(labels.values()), 5, seed=0),
        train_samples={i: {"image": f"{i}.png", "class": c} for i, c in labels.items()},
        test_samples={f"x{i}": {"image": f"x{i}.png", "class": i % 2} for i in range(10)},
        class_occ={"a": 60, "b": 40},
    )


def classes(desc: TaskDescription, ids) -> Counter:
    return Counter(desc.train_samples[i]["class"] for i in ids)


def test_task_name_syntax_and_duplicates():
    assert split_task_name("a+shrink_train?200+identity") == (
        "a",
        [("shrink_train", ["200"]), ("identity", [])],
    )
    assert deduplicate(["a", "b", "a"]) == ["a+duplicate?1", "b", "a+duplicate?2"]


def test_identity_and_duplicate_change_only_the_name(desc):
    for name in ("base+identity", "base+identity?any?thing", "base+duplicate?2", "base+identity+duplicate?1"):
        tagged = apply_tags(desc, name)
        assert tagged.name == name and tagged.train_folds == desc.train_folds
        assert tagged.test_samples == desc.test_samples and tagged.train_samples == desc.train_samples


def test_nested_turns_a_fold_into_the_test_split_and_resplits_the_rest(desc):
    before = copy.deepcopy(desc)
    nested = apply_tags(desc, "base+nested?2")
    assert desc == before  # the cached base description is never modified
    assert list(nested.test_samples) == desc.train_folds[2]  # old test split dropped
    rest = {i for k, fold in enumerate(desc.train_folds) if k != 2 for i in fold}
    assert set(nested.train_samples) == rest
    assert len(nested.train_folds) == 5  # MML's default number of new folds
    assert sorted(i for fold in nested.train_folds for i in fold) == sorted(rest)
    for fold in nested.train_folds:  # stratified: 48 of class 0 and 32 of class 1 in 5 folds of 16
        assert len(fold) == 16 and classes(desc, fold)[0] in (9, 10)
    assert nested.class_occ == {"a": 48, "b": 32}
    assert nested.train_folds != [f for k, f in enumerate(desc.train_folds) if k != 2]  # re-split, not reused
    assert apply_tags(desc, "base+nested?2") == nested  # fixed seed: every job derives the same folds
    assert len(apply_tags(desc, "base+nested?0?3").train_folds) == 3


def test_shrink_train_keeps_fold_zero_and_n_stratified_samples(desc):
    before = copy.deepcopy(desc)
    shrunk = apply_tags(desc, "base+shrink_train?30")
    assert desc == before
    assert shrunk.train_folds[0] == desc.train_folds[0]  # the validation fold stays whole, as in MML
    kept = [i for fold in shrunk.train_folds[1:] for i in fold]
    assert len(kept) == 30 and [len(f) for f in shrunk.train_folds[1:]] == [8, 8, 7, 7]
    assert all(set(new) <= set(old) for new, old in zip(shrunk.train_folds, desc.train_folds))
    assert set(shrunk.train_samples) == set(desc.train_folds[0]) | set(kept)
    assert classes(desc, kept) == Counter({0: 18, 1: 12})  # the 60:40 class ratio
    assert shrunk.class_occ == {"a": 18, "b": 12}  # as in MML: without the validation fold
    assert apply_tags(desc, "base+shrink_train?30") == shrunk
    assert apply_tags(desc, "base+shrink_train?30?7").train_folds != shrunk.train_folds  # the seed argument
    everything = apply_tags(desc, "base+shrink_train?80")
    assert everything.train_folds == desc.train_folds


def test_tags_compose_left_to_right(desc):
    both = apply_tags(desc, "base+nested?1?4+shrink_train?20")
    assert list(both.test_samples) == desc.train_folds[1] and len(both.train_folds) == 4
    assert sum(len(f) for f in both.train_folds[1:]) == 20


BAD_NAMES = {
    "base+nested?5": r"Task 'base\+nested\?5': nested\?5: the task has 5 folds; choose a fold in 0\.\.4\.",
    "base+nested?-1": r"choose a fold in 0\.\.4",
    "base+nested?0?1": r"nested needs at least 2 new folds, got 1; write nested\?0\?5",
    "base+nested?x": r"Task 'base\+nested\?x': tag 'nested' needs integer arguments "
    r"\(nested\?<fold>\[\?<new_folds=5>\]\)",
    "base+nested": r"tag 'nested' takes 1\.\.2 argument\(s\) \(nested\?<fold>.*\), got 0",
    "base+shrink_train?81": r"shrink_train\?81: n counts the training samples outside fold 0 .* "
    r"must lie in 4\.\.80 for this task \(5 folds\); choose n in that range",
    "base+shrink_train?3": r"must lie in 4\.\.80",
    "base+shrink_train?1.5": r"tag 'shrink_train' needs integer arguments "
    r"\(shrink_train\?<n>\[\?<seed=42>\]\), got '1.5'",
    "base+shrink_train?10?1?2": r"takes 1\.\.2 argument\(s\)",
    "base+duplicate": r"tag 'duplicate' takes 1 argument\(s\) \(duplicate\?<k>\), got 0",
    "base+frobnicate": r"Task 'base\+frobnicate' uses the unknown tag 'frobnicate'. "
    r"Known tags: duplicate, identity, nested, shrink_train\.",
    "base +identity": r"contains whitespace. Write tags as task\+tag\?arg",
}


@pytest.mark.parametrize("name", BAD_NAMES)
def test_bad_tags_name_the_problem_and_the_fix(desc, name):
    with pytest.raises(TagError, match=BAD_NAMES[name]):
        apply_tags(desc, name)


def test_syntax_errors_are_found_without_data_and_range_errors_with_fold_counts():
    with pytest.raises(TagError, match="needs integer arguments"):
        check_tags("base+shrink_train?many")
    check_tags("base+nested?9")  # the fold range needs the task's fold count
    with pytest.raises(TagError, match="choose a fold in 0..4"):
        num_folds_after_tags("base+nested?9", 5)
    assert num_folds_after_tags("base+shrink_train?9+nested?1?3+identity", 5) == 3


def test_shrink_train_needs_a_classification_task(desc):
    desc.task_type = "regression"
    with pytest.raises(
        TagError, match="shrink_train supports classification tasks only .*this is regression"
    ):
        apply_tags(desc, "base+shrink_train?10")


def test_fold_counts_of_tagged_demo_tasks_before_they_are_written(tmp_path):
    factory = TaskStructFactory(tmp_path)
    assert factory.num_folds("sk_digits") == 5
    assert factory.num_folds("sk_digits+nested?4?3") == 3
    assert factory.num_folds("sk_digits+shrink_train?200+duplicate?1") == 5
    with pytest.raises(TagError, match="choose a fold in 0..4"):
        factory.num_folds("sk_digits+nested?5")


def test_factory_applies_tags_to_the_cached_base_task(demo_data):
    factory = TaskStructFactory(demo_data)
    base = factory.load_description("sk_digits")
    nested = factory.create_task_struct("sk_digits+nested?3", return_ref=True)
    assert nested.num_samples == len(base.train_samples) - len(base.train_folds[3])
    assert factory.num_folds("sk_digits+nested?3?4") == 4
    assert list(factory.load_description("sk_digits+nested?3").test_samples) == base.train_folds[3]
    shrunk = factory.get_by_name("sk_digits+shrink_train?200")
    assert shrunk.num_samples == len(base.train_folds[0]) + 200 and sum(shrunk.class_occ.values()) == 200
    assert min(shrunk.class_occ.values()) >= 18  # 10 classes, stratified
    assert factory.load_description("sk_digits") == base
