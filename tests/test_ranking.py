"""Paired rankings and metric reliability (lit_xai.ranking) against SciPy, Holm by hand and `krippendorff`."""

from __future__ import annotations

import csv
import math
import warnings
from pathlib import Path

import krippendorff
import lightning.pytorch as pl
import numpy as np
import pytest
import scipy.stats

from lit_xai.callbacks import ExplainerCallback
from lit_xai.callbacks.ranking import metric_direction, rank_figure
from lit_xai.explainers import ConstantSaliency, GradCAM, RandomSaliency
from lit_xai.metrics import ROAD, Deletion, Insertion
from lit_xai.ranking import (
    average_ranks,
    holm,
    krippendorff_alpha_ordinal,
    rank_explainers,
    rank_metric,
    spearman_rho,
    wilcoxon_signed_rank,
)
from tests.helpers import TinyData, TinyModule

FIXED = np.array([0.9, -0.4, 1.3, 0.2, 2.1, -0.7, 0.5, 1.1, 0.05, 0.8, -0.15, 1.7])


def scipy_wilcoxon(d: np.ndarray) -> tuple[float, float]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # SciPy warns that it switches to the normal approximation
        result = scipy.stats.wilcoxon(d)
    return float(result.statistic), float(result.pvalue)


@pytest.mark.parametrize(
    "d, method",
    [
        (FIXED, "exact"),  # no ties, no zeros, n <= 50
        (np.round(FIXED * 2) / 2 + 0.5 * (np.round(FIXED * 2) == 0), "permutation"),  # ties, n <= 13
        (np.r_[FIXED, 0.0, -0.4, 0.0, 1.3], "normal"),  # zeros and ties, n = 16
        (np.linspace(-1, 3, 60) + 0.01 * np.sin(np.arange(60)), "normal"),  # n > 50
        (np.array([0.3]), "exact"),  # one image
    ],
)
def test_signed_rank_test_equals_scipy(d: np.ndarray, method: str) -> None:
    mine = wilcoxon_signed_rank(d)
    statistic, p = scipy_wilcoxon(d)
    assert mine.method == method
    assert mine.statistic == pytest.approx(statistic, rel=1e-12)
    assert mine.p_value == pytest.approx(p, rel=1e-10)
    assert mine.r_plus + mine.r_minus == pytest.approx(mine.count * (mine.count + 1) / 2)


def test_signed_rank_test_hand_values() -> None:
    # d = (1, 2, -3): r+ = 3, r- = 3; the 8 sign patterns give T+ in {0,1,2,3,3,4,5,6}: P(T+ >= 3) = 5/8 -> p = 1
    assert wilcoxon_signed_rank([1.0, 2.0, -3.0]).p_value == 1.0
    # d = (1, 2, 3): T+ = 6, only one pattern of 8 reaches it: p = 2 / 8
    assert wilcoxon_signed_rank([1.0, 2.0, 3.0]).p_value == pytest.approx(0.25)
    same = wilcoxon_signed_rank([0.0, 0.0, 0.0])  # identical methods: nothing ranked, cannot be told apart
    assert (same.count, same.p_value) == (0, 1.0)
    with pytest.raises(ValueError, match="at least one paired difference"):
        wilcoxon_signed_rank([math.nan])


def test_holm_by_hand() -> None:
    # sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1 = 0.02, 0.03, 0.06, 0.04 -> running max 0.02, 0.03, 0.06, 0.06
    np.testing.assert_allclose(holm([0.01, 0.04, 0.03, 0.005]), [0.03, 0.06, 0.06, 0.02])
    np.testing.assert_allclose(holm([0.5, 0.9]), [1.0, 1.0])  # capped at 1
    np.testing.assert_allclose(holm([0.2]), [0.2])


def test_average_ranks_and_spearman_equal_scipy() -> None:
    values = np.array([3.0, 1.0, 3.0, 2.0, math.nan, 1.0])
    np.testing.assert_array_equal(average_ranks(values), [4.5, 1.5, 4.5, 3.0, math.nan, 1.5])
    a, b = [0.3, 0.1, 0.4, 0.4, 0.9], [1.0, 0.0, 2.0, 3.0, 2.0]
    assert spearman_rho(a, b) == pytest.approx(scipy.stats.spearmanr(a, b).statistic, rel=1e-12)
    assert math.isnan(spearman_rho([1.0, 1.0, 1.0], [1.0, 2.0, 3.0]))


RELIABILITY_TABLES = [
    np.array([[1, 2, 3, 3, 2, 1, 4, 1, 2], [1, 2, 3, 3, 2, 2, 4, 1, 2], [2, 3, 3, 3, 2, 4, 4, 1, 2], [1, 2, 3, 3, 2, 1, 4, 1, 3]], dtype=float),
    np.array([[1, 2, 3], [1.5, 1.5, 3], [3, 2, 1], [1, 3, 2], [2, 1, 3]]),  # per-image ranks with a tie
    np.array([[1, 2, math.nan, 4], [1, 3, 2, 4], [math.nan, 2, 2, 3]]),  # missing values
]


@pytest.mark.parametrize("table", RELIABILITY_TABLES)
def test_krippendorff_alpha_equals_the_krippendorff_package(table: np.ndarray) -> None:
    expected = krippendorff.alpha(reliability_data=table, level_of_measurement="ordinal")
    assert krippendorff_alpha_ordinal(table) == pytest.approx(expected, rel=1e-12, abs=1e-14)


def test_krippendorff_alpha_perfect_agreement_is_one_and_degenerate_tables_are_refused() -> None:
    assert krippendorff_alpha_ordinal(np.array([[1.0, 2.0, 3.0]] * 4)) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="every value is the same"):
        krippendorff_alpha_ordinal(np.full((5, 3), 2.0))
    with pytest.raises(ValueError, match="at least 2 units"):
        krippendorff_alpha_ordinal(np.ones((5, 1)))
    with pytest.raises(ValueError, match="at least 2 raters"):
        krippendorff_alpha_ordinal(np.array([[1.0, 2.0, 3.0]]))


def three_methods() -> dict[str, np.ndarray]:
    """On 20 images: `good` beats `fair` by 1 on every image, `fair` and `twin` differ by noise only."""
    base = np.sin(np.arange(20) * 1.7)
    noise = 0.05 * np.cos(np.arange(20) * 2.3)
    return {"twin": base + noise, "good": base + 1.0, "fair": base}


def test_ranking_of_three_methods_matches_scipy_and_holm() -> None:
    values = three_methods()
    ranking = rank_metric(values, "insertion", higher_is_better=True, alpha=0.05)
    names = list(values)
    raw = {(a, b): scipy_wilcoxon(values[a] - values[b])[1] for i, a in enumerate(names) for b in names[i + 1 :]}
    adjusted = dict(zip(raw, holm(list(raw.values()))))
    for (a, b), p in raw.items():
        pair = ranking.comparison(a, b)
        assert pair.p_value == pytest.approx(p, rel=1e-10)
        assert pair.p_holm == pytest.approx(adjusted[(a, b)], rel=1e-10)
        d = values[pair.first] - values[pair.second]
        assert pair.mean_difference == pytest.approx(d.mean())
        assert pair.standard_error == pytest.approx(d.std(ddof=1) / math.sqrt(20))
    assert ranking.ranks == {"good": 1, "twin": 2, "fair": 2}  # twin and fair cannot be told apart: one shared rank
    assert ranking.explainers[0] == "good"
    assert not ranking.comparison("twin", "fair").separable and ranking.comparison("good", "fair").better == "good"
    # every image ranks good first: the per-image ranks of good are all 1
    assert ranking.mean_ranks["good"] == 1.0
    expected_alpha = krippendorff.alpha(reliability_data=np.stack([scipy.stats.rankdata(-np.array(r)) for r in zip(*values.values())]),
                                        level_of_measurement="ordinal")
    assert ranking.reliability == pytest.approx(expected_alpha, rel=1e-12)
    # lower is better: the same values rank good last
    lower = rank_metric(values, "deletion", higher_is_better=False)
    assert lower.ranks == {"good": 3, "twin": 1, "fair": 1}
    assert lower.reliability == pytest.approx(ranking.reliability)


def test_nothing_separable_shares_rank_one_and_reliability_flags_disagreement() -> None:
    rng = np.random.default_rng(0)
    values = {name: rng.normal(size=15) for name in ("a", "b", "c", "d")}
    ranking = rank_metric(values, "m")
    assert set(ranking.ranks.values()) == {1}
    assert ranking.reliability is not None and ranking.reliability < 0.3 and ranking.unreliable


def test_degenerate_tables_are_answered_with_a_clear_message() -> None:
    one_explainer = rank_metric({"only": np.arange(5.0)}, "m")
    assert one_explainer.ranks == {"only": 1} and one_explainer.comparisons == []
    assert one_explainer.reliability is None and "at least 2 units" in one_explainer.reliability_note
    one_image = rank_metric({"a": [1.0], "b": [2.0]}, "m")
    assert one_image.ranks == {"a": 1, "b": 1}  # one image cannot separate anything (p = 1)
    assert one_image.reliability is None and "at least 2 raters" in one_image.reliability_note
    all_equal = rank_metric({"a": np.ones(6), "b": np.ones(6)}, "m")
    assert all_equal.ranks == {"a": 1, "b": 1} and all_equal.comparison("a", "b").p_value == 1.0
    assert "every value is the same" in all_equal.reliability_note
    with pytest.raises(ValueError, match="different numbers of images"):
        rank_metric({"a": np.ones(6), "b": np.ones(5)}, "m")
    with pytest.raises(ValueError, match="alpha must be a number in"):
        rank_metric({"a": np.ones(6)}, "m", alpha=5)


def test_agreement_between_metrics_is_spearman_of_their_rankings() -> None:
    values = three_methods()
    report = rank_explainers(
        {e: {"insertion": v, "deletion": -v, "random": np.roll(v, 3) * (i + 1)} for i, (e, v) in enumerate(values.items())},
        {"insertion": True, "deletion": False, "random": True},
    )
    assert report.agreement[("insertion", "deletion")] == pytest.approx(1.0)  # the same order once directed
    means = {e: np.mean(np.roll(v, 3) * (i + 1)) for i, (e, v) in enumerate(values.items())}
    expected = scipy.stats.spearmanr([np.mean(v) for v in values.values()], list(means.values())).statistic
    assert report.agreement[("insertion", "random")] == pytest.approx(expected)


def test_metric_directions() -> None:
    assert metric_direction(Insertion()) is True and metric_direction(Deletion()) is False
    assert metric_direction(ROAD(order="morf")) is False and metric_direction(ROAD(order="lerf")) is True


def test_callback_writes_prints_and_draws_the_ranking(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from lightning.pytorch.loggers import CSVLogger

    callback = ExplainerCallback(
        {"gradcam": GradCAM(), "random": RandomSaliency(), "constant": ConstantSaliency()}, metrics=[Deletion(steps=4), Insertion(steps=4)],
        probe_size=6, log_images=1,
    )
    run = pl.Trainer(
        accelerator="cpu", devices=1, logger=CSVLogger(tmp_path, name="run"), enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, callbacks=[callback],
    )
    pl.seed_everything(0)
    run.test(TinyModule(), TinyData(), verbose=False)
    directory = Path(run.log_dir)
    rows = list(csv.DictReader((directory / "xai_scores.csv").open()))
    per_image = {(r["explainer"], r["metric"]): [] for r in rows}
    for r in rows:
        per_image[(r["explainer"], r["metric"])].append(float(r["value"]))
    expected = rank_explainers(
        {e: {m: per_image[(e, m)] for m in ("deletion", "insertion")} for e in ("gradcam", "random", "constant")},
        {"deletion": False, "insertion": True},
    )
    ranking = list(csv.DictReader((directory / "xai_ranking.csv").open()))
    assert [(r["metric"], r["explainer"]) for r in ranking] == [(m, e) for m in ("deletion", "insertion") for e in expected.metrics[m].explainers]
    for r in ranking:
        metric = expected.metrics[r["metric"]]
        assert int(r["rank"]) == metric.ranks[r["explainer"]]
        assert float(r["mean"]) == pytest.approx(metric.means[r["explainer"]])
        assert float(r["krippendorff_alpha"]) == pytest.approx(metric.reliability)
    pairs = list(csv.DictReader((directory / "xai_ranking_pairs.csv").open()))
    assert len(pairs) == 2 * 3
    for r in pairs:
        pair = expected.metrics[r["metric"]].comparison(r["first"], r["second"])
        assert float(r["p_holm"]) == pytest.approx(pair.p_holm)
        d = np.array(per_image[(r["first"], r["metric"])]) - np.array(per_image[(r["second"], r["metric"])])
        assert float(r["p"]) == pytest.approx(scipy_wilcoxon(d)[1], rel=1e-10)
    assert callback.ranking is not None and callback.ranking.metrics["deletion"].ranks == expected.metrics["deletion"].ranks
    assert "Krippendorff" in (directory / "xai_ranking.md").read_text()
    assert (directory / "xai_test_ranking_step000000.png").exists()
    printed = capsys.readouterr().out
    assert printed.index("explainer faithfulness (test)") < printed.index("explainer ranking (test)")


def test_rank_figure_joins_inseparable_methods() -> None:
    ranking = rank_explainers({e: {"insertion": v} for e, v in three_methods().items()})
    figure = rank_figure(ranking)
    (ax,) = figure.axes
    bars = [line for line in ax.get_lines() if line.get_linewidth() == 3]
    assert len(bars) == 1  # twin and fair joined, good alone
    xs = sorted(bars[0].get_xdata())
    assert xs == pytest.approx(sorted(ranking.metrics["insertion"].mean_ranks[e] for e in ("twin", "fair")))
