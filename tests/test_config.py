"""params.yaml profiles: one source of every knob, a profile may extend another."""

from __future__ import annotations

import pytest

from g2i.config import load_params, resolve
from g2i.errors import G2IError

PARAMS = {"profile": "a", "split": {"seed": 1, "test_per_class": 5}, "sample": {"per_class": 100},
          "profiles": {"a": {"split": {"test_per_class": 150}},
                       "b": {"extends": "a", "sample": {"per_class": 500}},
                       "loop1": {"extends": "loop2"}, "loop2": {"extends": "loop1"},
                       "orphan": {"extends": "nosuch"}}}


def test_an_extending_profile_gets_its_base_overrides_then_its_own():
    b = resolve(PARAMS, "b")
    assert b["split"] == {"seed": 1, "test_per_class": 150} and b["sample"] == {"per_class": 500}
    assert "extends" not in b and b["profile"] == "b"
    assert resolve(PARAMS, "a")["sample"] == {"per_class": 100}


@pytest.mark.parametrize("name, message", [("loop1", "loop"), ("orphan", "unknown profile 'nosuch'")])
def test_bad_extends_is_a_plain_error(name, message):
    with pytest.raises(G2IError, match=message):
        resolve(PARAMS, name)


def test_the_study_points_resolve_from_the_real_params():
    params = load_params()
    study, larger = resolve(params, "study"), resolve(params, "study_2000")
    assert study["split"]["test_per_class"] == larger["split"]["test_per_class"] == 150
    pool = {dx: larger["synthesize"]["class_proportions"][dx] - 150 for dx in ("CN", "MCI", "AD")}
    assert sum(pool.values()) == 2000 and larger["synthesize"]["n_subjects"] == 2450
    # the paper's proportions 291 : 438 : 182, to the subject
    assert all(abs(pool[dx] / 2000 - share / 911) < 1e-3 for dx, share in (("CN", 291), ("MCI", 438), ("AD", 182)))
    assert sum(study["synthesize"]["class_proportions"].values()) - 450 == 911
