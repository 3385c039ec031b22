from __future__ import annotations

import pytest

from edge.labels import CIRCUMPLEX, VOCABULARY, check_labels, confidence, expected_va


def test_every_label_has_coordinates_in_range():
    assert set(VOCABULARY) == set(CIRCUMPLEX)
    for v, a in CIRCUMPLEX.values():
        assert -1 <= v <= 1 and -1 <= a <= 1
    assert CIRCUMPLEX["happy"][0] > 0 > CIRCUMPLEX["sad"][0]
    assert CIRCUMPLEX["angry"][1] > 0 > CIRCUMPLEX["calm"][1]


def test_expected_va_and_confidence():
    assert expected_va({"happy": 1.0, "sad": 0.0}) == CIRCUMPLEX["happy"]
    v, a = expected_va({"happy": 0.5, "sad": 0.5})
    assert v == pytest.approx(0.05) and a == pytest.approx(0.0)
    assert confidence({"happy": 1.0, "sad": 0.0}) == pytest.approx(1.0)
    assert confidence({lab: 1.0 for lab in VOCABULARY}) == pytest.approx(0.0)


def test_check_labels_names_the_problem():
    with pytest.raises(ValueError, match="bored"):
        check_labels(["happy", "bored"])
