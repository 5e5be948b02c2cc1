"""Which explainer is best, with confidence: paired comparisons, rankings with ties, metric reliability.

Every method is scored on the same images, so methods are compared image by image (paired), not by
their means' overlapping error bars. For one metric and explainers e_1 .. e_k with per-image values
v_e(i), i = 1 .. n (the same image i for every explainer):

* each pair (a, b): differences d_i = v_a(i) - v_b(i); the paired mean difference mean(d) and its
  standard error sd(d) / sqrt(n) (sd with n - 1); Wilcoxon's signed-rank test (Wilcoxon, "Individual
  comparisons by ranking methods", Biometrics Bulletin 1945) of "d is symmetric about 0" (two-sided),
  with SciPy's conventions (`scipy.stats.wilcoxon` defaults: zeros dropped, no continuity correction;
  the exact null distribution for n <= 50 without ties or zeros, the exact permutation distribution
  of the 2^n sign flips for n <= 13 with ties or zeros, else the normal approximation with the tie
  correction);
* Holm's step-down correction over the k (k - 1) / 2 pairs of the metric (Holm, "A simple sequentially
  rejective multiple test procedure", Scand. J. Statist. 1979): p_(j) sorted ascending, adjusted
  p~_(j) = max_{l <= j} min(1, (m - l + 1) p_(l)); a pair is *separable* at level `alpha` when p~ < alpha;
* ranks with ties (competition ranking): rank(e) = 1 + the number of methods separable from e and
  better than it (the better one of a separable pair is the one its signed ranks favour, r+ vs r-, in
  the metric's direction). Methods that no test separates share rank 1; a clear order gives 1, 2, 3;
  two tied leaders above a third give 1, 1, 3. (Non-transitive outcomes, a ~ b, b ~ c, a > c, give
  a 1, b 1, c 2: rank r says exactly that r - 1 methods are significantly better.) This is the
  pairwise-test ranking Benavoli et al. recommend over mean-rank tests ("Should we really use post-hoc
  tests based on mean-ranks?", JMLR 2016); the mean per-image rank is reported too (Demšar, JMLR 2006).

Metric reliability (Tomsett et al., "Sanity checks for saliency metrics", AAAI 2020):

* inter-rater reliability: each image is a rater that ranks the explainers (its per-image ranks,
  1 = best, ties averaged); Krippendorff's alpha with the ordinal metric (Krippendorff, "Content
  Analysis", 2004/2011, chapter 11) says whether the metric ranks the methods the same way image after
  image: 1 = every image agrees, 0 = no more agreement than chance;
* between metrics: Spearman's rank correlation of the metrics' method rankings (their mean values,
  each in its own direction) says whether two metrics order the methods alike.

Pure numpy; no Lightning, no SciPy (tests check against SciPy and the `krippendorff` package).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np

EXACT_LIMIT = 50
"""Samples up to which the exact null distribution is used when there are no ties or zeros (SciPy's)."""
PERMUTATION_LIMIT = 13
"""Samples up to which the full sign-flip distribution is enumerated when there are ties or zeros (SciPy's)."""
RELIABLE_ALPHA = 0.667
"""Krippendorff's lowest alpha for tentative conclusions (Content Analysis, 2004, p. 241); below it a metric
is flagged as unreliable."""


# ----------------------------------------------------------------------------------------------------------
# Elementary statistics


def average_ranks(values: np.ndarray) -> np.ndarray:
    """Ranks 1 .. n of a 1-D array, ties sharing their mean rank; NaN stays NaN (not ranked)."""
    values = np.asarray(values, dtype=np.float64)
    ranks = np.full(values.shape, np.nan)
    present = ~np.isnan(values)
    kept = values[present]
    order = np.argsort(kept, kind="mergesort")
    ordered = kept[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    ends = np.r_[starts[1:], len(ordered)]
    mean_rank = np.repeat((starts + ends + 1) / 2.0, ends - starts)  # positions s .. e-1 -> ranks s+1 .. e
    ranked = np.empty(len(kept))
    ranked[order] = mean_rank
    ranks[present] = ranked
    return ranks


def normal_two_sided(z: float) -> float:
    """P(|Z| >= |z|) for a standard normal Z."""
    return math.erfc(abs(z) / math.sqrt(2.0))


def signed_rank_null_counts(n: int) -> np.ndarray:
    """Counts of the 2^n sign patterns of ranks 1 .. n by their positive rank sum T+ = 0 .. n (n + 1) / 2."""
    counts = np.zeros(n * (n + 1) // 2 + 1, dtype=np.float64)
    counts[0] = 1.0
    for rank in range(1, n + 1):
        counts[rank:] = counts[rank:] + counts[:-rank].copy()
    return counts


@dataclass(frozen=True)
class SignedRankTest:
    """Wilcoxon's signed-rank test of paired differences: `statistic` = min(r+, r-) (SciPy's two-sided
    statistic), `r_plus` and `r_minus` the rank sums of the positive and negative differences, `p_value`
    two-sided, `count` the non-zero differences ranked, `method` "exact", "permutation" or "normal"."""

    statistic: float
    r_plus: float
    r_minus: float
    p_value: float
    count: int
    method: str


def wilcoxon_signed_rank(differences: Sequence[float] | np.ndarray) -> SignedRankTest:
    """Two-sided Wilcoxon signed-rank test of `differences` (NaN dropped), as `scipy.stats.wilcoxon(d)`.

    Zeros are dropped ("wilcox"); ranks of |d| average ties; the p-value is, for n = len(d) (zeros
    included, as SciPy decides) and the count of non-zero d:
      no ties, no zeros, n <= 50: 2 min(P(T >= floor r+), P(T <= ceil r+)) under the exact null of T+;
      ties or zeros, n <= 13: the same two tails over all 2^n sign flips of the ranks (SciPy's permutation test);
      otherwise: 2 P(Z >= |z|), z = (r+ - c (c + 1) / 4) / sqrt((c (c + 1) (2 c + 1) - sum (t^3 - t) / 2) / 24).
    All differences zero (nothing ranked): p = 1, the methods cannot be told apart (SciPy returns NaN).
    """
    d = np.asarray(differences, dtype=np.float64).ravel()
    d = d[~np.isnan(d)]
    n = len(d)
    if n == 0:
        raise ValueError("the signed-rank test needs at least one paired difference, got none (no image scored by both methods)")
    nonzero = d[d != 0]
    count = len(nonzero)
    if count == 0:
        return SignedRankTest(0.0, 0.0, 0.0, 1.0, 0, "exact")
    ranks = average_ranks(np.abs(nonzero))
    r_plus, r_minus = float(ranks[nonzero > 0].sum()), float(ranks[nonzero < 0].sum())
    _, tie_sizes = np.unique(np.abs(nonzero), return_counts=True)
    has_ties, has_zeros = bool((tie_sizes > 1).any()), count < n
    if not has_ties and not has_zeros and n <= EXACT_LIMIT:
        counts = signed_rank_null_counts(count)
        pmf = counts / counts.sum()
        upper = pmf[int(math.floor(r_plus)) :].sum()
        lower = pmf[: int(math.ceil(r_plus)) + 1].sum()
        p, method = min(1.0, 2.0 * min(upper, lower)), "exact"
    elif n <= PERMUTATION_LIMIT:
        signs = (np.arange(2**count)[:, None] >> np.arange(count)[None, :]) & 1  # every sign pattern of the ranks
        null = signs @ ranks
        tolerance = 1e-14 * abs(r_plus)  # SciPy's permutation test compares with a relative tolerance
        upper = float(np.mean(null >= r_plus - tolerance))
        lower = float(np.mean(null <= r_plus + tolerance))
        p, method = min(1.0, 2.0 * min(upper, lower)), "permutation"
    else:
        mean = count * (count + 1) / 4.0
        variance = (count * (count + 1) * (2 * count + 1) - float((tie_sizes**3 - tie_sizes).sum()) / 2.0) / 24.0
        p, method = normal_two_sided((r_plus - mean) / math.sqrt(variance)), "normal"
    return SignedRankTest(min(r_plus, r_minus), r_plus, r_minus, float(p), count, method)


def holm(p_values: Sequence[float] | np.ndarray) -> np.ndarray:
    """Holm's step-down adjusted p-values: sorted ascending p_(1) <= .. <= p_(m),
    p~_(j) = max_{l <= j} min(1, (m - l + 1) p_(l)), returned in the input order."""
    p = np.asarray(p_values, dtype=np.float64)
    m = len(p)
    order = np.argsort(p, kind="mergesort")
    scaled = np.minimum(1.0, (m - np.arange(m)) * p[order])
    adjusted = np.empty(m)
    adjusted[order] = np.maximum.accumulate(scaled) if m else scaled
    return adjusted


def spearman_rho(first: Sequence[float] | np.ndarray, second: Sequence[float] | np.ndarray) -> float:
    """Spearman's rank correlation (Pearson's correlation of average ranks); NaN when either is constant."""
    a, b = average_ranks(np.asarray(first, dtype=np.float64)), average_ranks(np.asarray(second, dtype=np.float64))
    a, b = a - a.mean(), b - b.mean()
    norm = math.sqrt(float((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / norm) if norm > 0 else math.nan


def krippendorff_alpha_ordinal(data: np.ndarray) -> float:
    """Krippendorff's alpha with the ordinal difference, `data` `(raters, units)` (NaN: missing).

    Coincidences o_ck = sum_u (pairs of values c, k within unit u) / (m_u - 1) over units with m_u >= 2
    values; n_c = sum_k o_ck, n = sum_c n_c. Ordinal squared difference between the ordered values
    g = c .. k of the value domain: delta^2_ck = (sum_{g=c}^{k} n_g - (n_c + n_k) / 2)^2. Then

        alpha = 1 - (n - 1) sum_ck o_ck delta^2_ck / sum_ck n_c n_k delta^2_ck.

    Raises a ValueError when alpha is undefined: fewer than 2 units, no unit with 2 values (one rater),
    or a single value in the whole table (nothing varies, so agreement cannot be told from chance).
    """
    data = np.asarray(data, dtype=np.float64)
    if data.ndim != 2:
        raise ValueError(f"reliability data must be a table (raters, units), got shape {data.shape}")
    raters, units = data.shape
    if units < 2:
        raise ValueError(f"Krippendorff's alpha needs at least 2 units (here: explainers to rank), got {units}")
    pairable = (~np.isnan(data)).sum(axis=0) >= 2
    if raters < 2 or not pairable.any():
        raise ValueError(f"Krippendorff's alpha needs at least 2 raters (here: images) rating a unit, got {raters}")
    table = data[:, pairable]
    domain = np.unique(table[~np.isnan(table)])
    if len(domain) < 2:
        raise ValueError(
            f"Krippendorff's alpha is undefined when every value is the same (all {domain[0]:g}): "
            "the raters cannot disagree, so agreement cannot be told from chance"
        )
    index = np.searchsorted(domain, table)
    coincidences = np.zeros((len(domain), len(domain)))
    for column in range(table.shape[1]):
        present = ~np.isnan(table[:, column])
        counts = np.bincount(index[present, column], minlength=len(domain)).astype(np.float64)
        m = counts.sum()
        coincidences += (np.outer(counts, counts) - np.diag(counts)) / (m - 1)
    marginals = coincidences.sum(axis=1)
    n = marginals.sum()
    cumulative = np.r_[0.0, np.cumsum(marginals)]
    low, high = np.minimum.outer(np.arange(len(domain)), np.arange(len(domain))), np.maximum.outer(np.arange(len(domain)), np.arange(len(domain)))
    between = cumulative[high + 1] - cumulative[low]  # sum_{g = c}^{k} n_g
    delta2 = (between - (marginals[low] + marginals[high]) / 2.0) ** 2
    observed = (coincidences * delta2).sum()
    expected = (np.outer(marginals, marginals) * delta2).sum()
    return float(1.0 - (n - 1.0) * observed / expected)


# ----------------------------------------------------------------------------------------------------------
# Rankings


@dataclass(frozen=True)
class PairComparison:
    """Explainers `first` and `second` on one metric: `mean_difference` = mean(v_first - v_second) over
    the `count` images both scored, `standard_error` sd / sqrt(n) of the differences, the signed-rank
    `statistic` and `p_value`, `p_holm` after Holm over the metric's pairs, `separable` = p_holm < alpha,
    and `better`, the explainer the test favours in the metric's direction (None when not separable)."""

    metric: str
    first: str
    second: str
    count: int
    mean_difference: float
    standard_error: float
    statistic: float
    p_value: float
    p_holm: float
    separable: bool
    better: str | None


@dataclass
class MetricRanking:
    """One metric's ranking: explainers in rank order (then by mean, best first), their `means`, `ranks`
    (competition ranks with ties, module docstring), `mean_ranks` (mean per-image rank, 1 = best), the
    pairwise `comparisons`, Krippendorff's ordinal `reliability` over images (None with `reliability_note`
    saying why when undefined), `unreliable` when it is below the threshold."""

    metric: str
    higher_is_better: bool | None
    alpha: float
    explainers: list[str]
    means: dict[str, float]
    ranks: dict[str, int]
    mean_ranks: dict[str, float]
    images: int
    comparisons: list[PairComparison]
    reliability: float | None
    reliability_note: str = ""
    unreliable: bool = False

    def comparison(self, first: str, second: str) -> PairComparison:
        for pair in self.comparisons:
            if {pair.first, pair.second} == {first, second}:
                return pair
        raise KeyError(f"no comparison of {first!r} and {second!r} for metric {self.metric!r}")


@dataclass
class RankingReport:
    """Rankings of every metric, and between metrics Spearman's rho of their method rankings
    (`agreement[(m1, m2)]`; with 2 explainers only +-1; NaN when a metric's means are all equal or fewer
    than 2 explainers are shared)."""

    alpha: float
    metrics: dict[str, MetricRanking]
    agreement: dict[tuple[str, str], float] = field(default_factory=dict)


def check_level(alpha: float) -> float:
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 < alpha < 1:
        raise ValueError(f"the significance level alpha must be a number in (0, 1), e.g. 0.05; got {alpha!r}")
    return float(alpha)


def score_table(values: Mapping[str, Sequence[float] | np.ndarray], metric: str) -> tuple[list[str], np.ndarray]:
    """Explainer names and their values as a table `(images, explainers)`, checked to pair up."""
    names = list(values)
    if not names:
        raise ValueError(f"metric {metric!r}: no explainer values to rank")
    columns = [np.asarray(values[name], dtype=np.float64).ravel() for name in names]
    lengths = {name: len(column) for name, column in zip(names, columns)}
    if len(set(lengths.values())) != 1:
        raise ValueError(
            f"metric {metric!r}: explainers were scored on different numbers of images {lengths}; a paired ranking "
            "needs every explainer's value on the same images (drop the explainers that failed or were skipped)"
        )
    if not lengths[names[0]]:
        raise ValueError(f"metric {metric!r}: no image was scored, nothing to rank")
    return names, np.stack(columns, axis=1)


def per_image_ranks(table: np.ndarray, higher_is_better: bool | None) -> np.ndarray:
    """Each image's ranks of the explainers `(images, explainers)`, 1 = best, ties averaged, NaN kept."""
    oriented = -table if higher_is_better is not False else table
    return np.stack([average_ranks(row) for row in oriented]) if len(table) else np.zeros_like(table)


def rank_metric(
    values: Mapping[str, Sequence[float] | np.ndarray],
    metric: str = "metric",
    higher_is_better: bool | None = True,
    alpha: float = 0.05,
    reliable: float = RELIABLE_ALPHA,
) -> MetricRanking:
    """Paired comparisons, ranking with ties and reliability of one metric (module docstring).

    `values`: explainer -> per-image values, the same images in the same order for every explainer
    (NaN: not scored; such an image is left out of the pairs it belongs to). `higher_is_better` None
    (undeclared) ranks higher values first."""
    alpha = check_level(alpha)
    names, table = score_table(values, metric)
    sign = -1.0 if higher_is_better is False else 1.0
    means = {name: float(np.nanmean(table[:, j])) if (~np.isnan(table[:, j])).any() else math.nan for j, name in enumerate(names)}
    raw = []
    for (i, a), (j, b) in itertools.combinations(enumerate(names), 2):
        d = table[:, i] - table[:, j]
        d = d[~np.isnan(d)]
        if len(d) == 0:
            raise ValueError(f"metric {metric!r}: {a!r} and {b!r} have no image scored by both; nothing to compare")
        test = wilcoxon_signed_rank(d)
        se = float(d.std(ddof=1) / math.sqrt(len(d))) if len(d) > 1 else math.nan
        raw.append((a, b, len(d), float(d.mean()), se, test))
    adjusted = holm([test.p_value for *_, test in raw])
    comparisons = []
    for (a, b, count, mean, se, test), p_holm in zip(raw, adjusted):
        separable = bool(p_holm < alpha)
        favours_first = sign * (test.r_plus - test.r_minus) > 0
        better = (a if favours_first else b) if separable else None
        comparisons.append(PairComparison(metric, a, b, count, mean, se, test.statistic, test.p_value, float(p_holm), separable, better))
    beaten = dict.fromkeys(names, 0)
    for pair in comparisons:
        if pair.better is not None:
            beaten[pair.second if pair.better == pair.first else pair.first] += 1
    ranks = {name: 1 + beaten[name] for name in names}
    image_ranks = per_image_ranks(table, higher_is_better)
    mean_ranks = {name: float(np.nanmean(image_ranks[:, j])) for j, name in enumerate(names)}
    ordered = sorted(names, key=lambda name: (ranks[name], mean_ranks[name], names.index(name)))
    reliability, note = None, ""
    try:
        reliability = krippendorff_alpha_ordinal(image_ranks)
    except ValueError as error:
        note = str(error)
    unreliable = reliability is not None and reliability < reliable
    return MetricRanking(metric, higher_is_better, alpha, ordered, means, ranks, mean_ranks, len(table), comparisons, reliability, note, unreliable)


def rank_explainers(
    scores: Mapping[str, Mapping[str, Sequence[float] | np.ndarray]],
    higher_is_better: Mapping[str, bool | None] | None = None,
    alpha: float = 0.05,
    reliable: float = RELIABLE_ALPHA,
) -> RankingReport:
    """Rank the explainers on every metric: `scores[explainer][metric]` per-image values (the
    callback's `xai_scores.csv`), `higher_is_better[metric]` the metric's direction (default True).
    Metrics that some explainer lacks are ranked over the explainers that have them."""
    alpha = check_level(alpha)
    directions = dict(higher_is_better or {})
    metrics: list[str] = []
    for per_explainer in scores.values():
        metrics += [m for m in per_explainer if m not in metrics]
    rankings = {}
    for metric in metrics:
        values = {e: per[metric] for e, per in scores.items() if metric in per and len(np.asarray(per[metric]).ravel())}
        if values:
            rankings[metric] = rank_metric(values, metric, directions.get(metric, True), alpha, reliable)
    agreement = {}
    for first, second in itertools.combinations(rankings, 2):
        common = [e for e in rankings[first].means if e in rankings[second].means]
        a = [oriented_mean(rankings[first], e) for e in common]
        b = [oriented_mean(rankings[second], e) for e in common]
        agreement[(first, second)] = spearman_rho(a, b) if len(common) >= 2 else math.nan
    return RankingReport(alpha, rankings, agreement)


def oriented_mean(ranking: MetricRanking, explainer: str) -> float:
    """The explainer's mean value, negated for a lower-is-better metric (larger = better)."""
    value = ranking.means[explainer]
    return -value if ranking.higher_is_better is False else value
