"""Human-likeness: percentiles, bands, distances and the ranking, on hand-computable tables."""

from __future__ import annotations

from pathlib import Path

import pytest

from facebench.human_likeness import assess, ceiling_reference, percentile_reference
from facebench.plots import HumanPercentiles

FIXTURES = Path(__file__).parent.parent / "fixtures" / "manager"

# Q(0..100) for "T1: AUC": centre 0.7, band 0.6-0.8, IQR 0.2; "T2 - easy: Score": centre 0.5,
# band 0.4-0.6 (IQR 0.2).
HUMANS = HumanPercentiles(
    {
        "T1: AUC": {0.0: 0.5, 25.0: 0.6, 50.0: 0.7, 75.0: 0.8, 100.0: 0.9},
        "T2 - easy: Score": {0.0: 0.2, 25.0: 0.4, 50.0: 0.5, 75.0: 0.6, 100.0: 0.7},
    },
    "hand-made",
)


def record(task, model, layer, values, condition=None):
    return {"task": task, "model": model, "layer": layer, "condition": condition, "values": values}


def test_percentile_band_and_distance_by_hand():
    reference = percentile_reference([0.0, 25.0, 50.0, 75.0, 100.0], [0.5, 0.6, 0.7, 0.8, 0.9])
    assert (reference.low, reference.centre, reference.high) == pytest.approx((0.6, 0.7, 0.8))
    assert reference.percentile(0.75) == pytest.approx((62.5, ""))
    assert reference.distance(0.75) == pytest.approx(0.25)  # 0.05 / 0.2
    assert reference.placement(0.75) == "inside"
    assert reference.placement(0.8) == "inside"  # the band's bounds are inside
    assert reference.placement(0.55) == "below"
    assert reference.percentile(0.95) == (100.0, ">")
    assert reference.percentile(0.4) == (0.0, "<")
    assert reference.distance(0.95) == pytest.approx(1.25)


def test_a_flat_stretch_gives_its_middle_percentile():
    reference = percentile_reference([0.0, 25.0, 50.0, 75.0, 100.0], [0.1, 0.2, 0.2, 0.3, 0.5])
    assert reference.percentile(0.2) == pytest.approx((37.5, ""))  # flat from 25 to 50
    assert reference.percentile(0.35) == pytest.approx((81.25, ""))  # 75 + 0.05 / 0.2 * 25


def test_unusable_references_say_why():
    assert "interquartile range is zero" in percentile_reference([0.0, 50.0, 100.0], [0.3, 0.3, 0.3])
    assert "does not cover" in percentile_reference([0.0, 10.0, 50.0], [0.1, 0.2, 0.3])
    assert "no width" in ceiling_reference(0.4, 0.4)


def test_noise_ceiling_reference():
    reference = ceiling_reference(0.4, 0.6)
    assert reference.centre == pytest.approx(0.5)
    assert reference.distance(0.3) == pytest.approx(1.0)
    assert reference.placement(0.3) == "below"
    assert reference.placement(0.45) == "inside"
    assert reference.percentile(0.45) is None


def test_lab_table_percentiles_and_monotone_rearrangement():
    human = HumanPercentiles.from_csv(FIXTURES / "human_percentiles.csv")
    result = assess(
        [
            record("LFW", "m", "l1", {"AUC": 0.8}),
            record("Thatcher Effect", "m", "l1", {"Relative Difference": 0.1}),
        ],
        human,
    )
    auc = next(p for p in result.placements if p.column == "LFW: AUC")
    # 0.8 lies between the 40th (0.78665) and 50th (0.81825) percentile rows
    assert auc.percentile[0] == pytest.approx(40 + (0.8 - 0.78665) / (0.81825 - 0.78665) * 10)
    # the Thatcher column decreases from 10 to 20 (0.11245 -> 0.09081): sorted, and said so
    assert any("Thatcher Effect: Relative Difference" in n and "monotone" in n for n in result.notes)
    assert not any("LFW: AUC" in n for n in result.notes)
    thatcher = next(p for p in result.placements if p.task == "Thatcher Effect")
    # sorted values 0.09081, 0.10334, 0.11245, ... at 0, 10, 20: 0.1 lies in the first segment
    assert thatcher.percentile[0] == pytest.approx((0.1 - 0.09081) / (0.10334 - 0.09081) * 10)
    assert human.band("Thatcher Effect: Relative Difference").low == pytest.approx((0.11245 + 0.1461) / 2)


def test_ranking_by_hand():
    records = [
        # model a: T1 layer x 0.75 (0.25), layer y 0.95 (1.25) -> best x, 0.25
        record("T1", "a", "x", {"AUC": 0.75, "Accuracy": 0.1}),
        record("T1", "a", "y", {"AUC": 0.95, "Accuracy": 0.1}),
        # T2 has a condition; "hard" has no human data
        record("T2", "a", "x", {"Score": 0.5}, "easy"),  # 0.0
        record("T2", "a", "x", {"Score": 0.1}, "hard"),
        record("T2", "a", "y", {"Score": 0.3}, "easy"),  # 1.0
        # model b: T1 x 0.7 (0), y 0.6 (0.5); T2 x 0.7 (1.0), y 0.65 (0.75) -> 0 + 0.75
        record("T1", "b", "x", {"AUC": 0.7}),
        record("T1", "b", "y", {"AUC": 0.6}),
        record("T2", "b", "x", {"Score": 0.7}, "easy"),
        record("T2", "b", "y", {"Score": 0.65}, "easy"),
        # model c: no T2 result -> not ranked
        record("T1", "c", "x", {"AUC": 0.7}),
        record("T3", "a", "x", {"Score": 0.5}),
    ]
    result = assess(records, HUMANS)
    assert result.tasks_with_reference == ["T1", "T2"]
    assert result.tasks_without_reference == ["T3"]
    a, b, c = result.ranking
    assert (a.model, a.rank, a.aggregate) == ("a", 1, pytest.approx((0.25 + 0.0) / 2))
    assert (a.parts["T1"].layer, a.parts["T2"].layer) == ("x", "x")
    assert (b.model, b.rank, b.aggregate) == ("b", 2, pytest.approx((0.0 + 0.75) / 2))
    assert (b.parts["T1"].layer, b.parts["T2"].layer) == ("x", "y")
    assert (c.model, c.rank, c.aggregate, c.missing) == ("c", None, None, ["T2"])
    assert c.parts["T1"].distance == 0.0


def test_headline_metrics_limit_what_counts_and_ties_share_a_rank():
    records = [
        record("T1", "a", "x", {"AUC": 0.75}),
        record("T1", "b", "x", {"AUC": 0.65}),
        record("T1", "c", "x", {"AUC": 0.9}),
    ]
    result = assess(records, HUMANS, headline={"T1": ["Accuracy"]})
    assert not result.available
    assert any("not a headline metric" in note for note in result.notes)
    result = assess(records, HUMANS, headline={"T1": ["AUC"]})
    assert {m.model: m.rank for m in result.ranking} == {"a": 1, "b": 1, "c": 3}  # 0.25, 0.25, 1.0


def test_rsa_noise_ceiling_when_no_table_covers_it():
    values = {"RSA Score": 0.3, "Noise Ceiling Lower": 0.4, "Noise Ceiling Upper": 0.6}
    result = assess([record("RSA", "a", "x", values), record("RSA", "a", "y", {**values, "RSA Score": 0.55})])
    assert result.tasks_with_reference == ["RSA"]
    (ranked,) = result.ranking
    assert ranked.parts["RSA"].layer == "y"
    assert ranked.aggregate == pytest.approx(0.25)  # |0.55 - 0.5| / 0.2


def test_without_human_data_nothing_is_ranked():
    result = assess([record("T1", "a", "x", {"AUC": 0.7})])
    assert not result.available
    assert result.tasks_without_reference == ["T1"]
    assert result.ranking[0].rank is None
