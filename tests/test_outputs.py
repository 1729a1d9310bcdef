"""ActionOutputs: a run's outputs as Flyte's ActionOutputs gives them."""

import pickle

import pytest

from flyray import ActionOutputs


@pytest.mark.parametrize(
    ("value", "expected", "text"),
    [
        ((1, 2), (1, 2), "ActionOutputs(o0=1, o1=2)"),
        (285, (285,), "ActionOutputs(o0=285)"),
        (None, (None,), "ActionOutputs(o0=None)"),
        ([1, 2], ([1, 2],), "ActionOutputs(o0=[1, 2])"),
        ("yes", ("yes",), 'ActionOutputs(o0="yes")'),
        ({"a": 1}, ({"a": 1},), "ActionOutputs(o0={'a': 1})"),
    ],
)
def test_a_tuple_is_split_anything_else_is_o0(value, expected, text):
    outputs = ActionOutputs.of(value)
    assert isinstance(outputs, tuple) and outputs == expected and len(outputs) == len(expected)
    assert repr(outputs) == str(outputs) == text
    assert outputs.named_outputs == {f"o{i}": v for i, v in enumerate(expected)}
    assert [getattr(outputs, f"o{i}") for i in range(len(expected))] == list(expected)


def test_unpacks_indexes_and_pickles_like_a_tuple():
    outputs = ActionOutputs.of((1, "x"))
    first, second = outputs
    assert (first, second, outputs[0], outputs[-1]) == (1, "x", 1, "x")
    again = pickle.loads(pickle.dumps(outputs))
    assert again == (1, "x") and again.o1 == "x" and repr(again) == 'ActionOutputs(o0=1, o1="x")'


def test_named_fields_must_match_the_values():
    assert ActionOutputs((1,), fields=["total"]).named_outputs == {"total": 1}
    with pytest.raises(ValueError):
        ActionOutputs((1, 2), fields=["total"])
