"""The learned alternative to the context rules: features and a logistic model over cues."""

from __future__ import annotations

import pytest

from audit.scan.context import NEGATION, QUESTION, SUPPRESS, Applied
from audit.scan.context_model import LabelledHit, features, train

NOT = Applied(NEGATION, "没", 1, False)
ASKED = Applied(QUESTION, "吗", 3, True)


def test_when_a_hit_has_cues_then_features_name_kind_category_role_distance_and_side() -> None:
    assert features("complaint", "customer", [NOT]) == {
        "negation": 1.0,
        "negation:complaint": 1.0,
        "negation:complaint:customer": 1.0,
        "negation:near": 1.0,
        "negation:before": 1.0,
        "kinds:1": 1.0,
    }
    assert features("diversion", None, []) == {}


def hits() -> list[LabelledHit]:
    return [
        *[LabelledHit("complaint", "customer", (NOT,), False)] * 6,
        *[LabelledHit("complaint", "customer", (), True)] * 6,  # no cue: not the model's
        *[LabelledHit("diversion", "staff", (ASKED,), True)] * 6,
        *[LabelledHit("diversion", "customer", (ASKED,), False)] * 6,
    ]


def test_when_trained_then_the_model_learns_which_cue_excuses_which_category_and_role() -> None:
    model = train(hits())

    assert model.decide("complaint", "customer", [NOT]) == (SUPPRESS, NOT)
    assert model.decide("diversion", "customer", [ASKED]) == (SUPPRESS, ASKED)
    assert model.decide("diversion", "staff", [ASKED]) == ("", None)  # an offer stays
    assert model.decide("complaint", "customer", []) == ("", None)  # no cue, no judgement
    assert model.probability("diversion", "staff", [ASKED]) > 0.5


def test_when_every_hit_with_cues_is_of_one_kind_then_training_refuses() -> None:
    with pytest.raises(ValueError, match="both kinds"):
        train([LabelledHit("complaint", "customer", (NOT,), False)] * 3)
