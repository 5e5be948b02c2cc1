"""The seed papers' claims re-tested on models this machine can train (issue 19): one command, fixed seeds.

    python benchmarks/study.py [--out lightning_logs/study] [--docs docs]      (or: make study)

Every model is trained with `lit-xai fit` and every explanation scored with `lit-xai test` (the
ExplainerCallback writes each test image's value of each metric to `xai_scores.csv`); this script only
composes the commands, reads those files and writes `docs/study.md` with one row per claim (the paper's
numbers, ours with standard errors, the paired difference and whether the claim holds here) and the
per-image distributions as box plots (`docs/study_*.png`).

Models: `configs/study/shapes_resnet18.yaml` (resnet18 from scratch on 64 px synthetic shapes) for the
image claims; `configs/cmapss_fd001_cnn_lstm.yaml` on a synthetic C-MAPSS FD001 written in NASA's format
(`tests/cmapss_fixtures.py`: 40 training and 100 test engines) for the C-MAPSS claim. Claims, protocols and
explainer / metric sets: `CLAIMS` below and `configs/study/xai_*.yaml`.

Real data instead of the synthetic stand-ins:
  --imagenet DIR     the CAM claims on ImageNet's validation set with pretrained ResNet-50
                     (configs/imagenet_resnet50_eval.yaml; weights from torchvision's cache or the internet)
  --food101 DIR --food101-ckpt CKPT   the spectral claims on Food-101 with a fine-tuned checkpoint
                     (configs/food101_resnet50_eval.yaml)
  --cmapss DIR       the C-MAPSS claim on NASA's FD001 files in DIR (trained there with the same config)
  --limit N          explain at most N test images per real dataset (default 500)
`--quick` shrinks everything (epochs, images, draws) to check the pipeline in a minute; its numbers mean nothing.

Verdicts must not rest on one trained model: every trained model is trained `--seeds N` times (default 3,
`seed_everything` 0 .. N-1; the data and the explainers' seeds stay fixed), each claim is judged per model
and pooled over the models (the mean of the per-model paired differences, its standard error across
models, so it holds the between-model variance, against Student's t with N - 1 degrees of freedom), and the
claims whose verdict changes from model to model are named. Training is deterministic for one CPU kind,
not across kinds: numbers reproduce exactly only on the same CPU kind.

The shortcut benchmark (`configs/study/shapes_decoy.yaml`, `configs/study/xai_shortcut.yaml`): small CNNs
trained on 32 px shapes whose Decoy-MNIST-style patch encodes the class in 0 %, 50 % and 100 % of the
training images; each model's reliance on the decoy is measured by intervention
(`lit_xai.datamodules.decoy.intervention_rates`) and compared with where the explainers put their mass
(`DecoyMass`). The paired rankings (ties at level 0.05) and the metrics' reliabilities (Krippendorff's
alpha) of the CAM, spectral and shortcut groups come from `lit_xai.ranking`.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import multiprocessing
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


@dataclass
class Run:
    """One `lit-xai test` whose scores feed some claims: `group` names it in the claims and figures."""

    group: str
    configs: list[str]
    overrides: list[str] = field(default_factory=list)
    fit: list[str] | None = None  # configs of the `lit-xai fit` that makes its checkpoint (None: no training)
    fit_overrides: list[str] = field(default_factory=list)
    describe: str = ""
    decoy: float | None = None  # the shortcut benchmark's training decoy share (intervention rates are measured)


@dataclass
class Claim:
    """A paper's claim that method `ours` beats `baseline` on `metric` (`higher` is better or not)."""

    key: str
    statement: str
    source: str
    group: str
    metric: str  # a metric of xai_scores.csv, or "insertion-deletion" (per-image difference of the two)
    ours: str
    baseline: str
    higher: bool
    paper: tuple[float | None, float | None]  # the paper's (ours, baseline); None where the text lost it
    percent: bool  # the paper reports the metric x 100
    protocol: str
    if_not: str = ""  # what we think explains it when the claim does not hold here


CLAIMS = [
    Claim(
        "egc-insdel", "Expected Grad-CAM beats Grad-CAM on Insertion - Deletion", "thesis Table 4 (VGG16, ImageNet, 5000 images)",
        "cams", "insertion-deletion", "expected_gradcam", "gradcam", True, (0.56, 0.51), False,
        "predicted class, softmax; Insertion from a blurred image, Deletion to zeros, 32 steps of 128 pixels (thesis: "
        "1003 steps at 224 px); 50 draws from a bank of 64 training images; resnet18 on 64 px shapes (first 64 test images), "
        "not VGG16 on ImageNet",
        "the thesis' argument is gradient saturation in a deep pretrained network; this resnet18, trained for 4 epochs "
        "on one synthetic object per image, gives Grad-CAM gradients that are not saturated, so there is little for "
        "expected gradients to correct, while the baselines (other shapes from the bank) add their own objects' "
        "differences to the weights; on a 2 x 2 layer a small shift of mass between cells moves a whole quadrant",
    ),
    Claim(
        "hyper-ins", "Hyper Expected Grad-CAM raises Insertion above Expected Grad-CAM", "thesis Table 4 (0.83 vs 0.65)",
        "hyper", "insertion", "hyper_expected_gradcam", "expected_gradcam", True, (0.83, 0.65), False,
        "Insertion as above, on the first 64 test images (Hyper Expected Grad-CAM costs about 6 Expected Grad-CAM maps per "
        "image since issue 27: its frequency layers share one evaluation); 16 draws for both (thesis: 50), automatic stages",
        "the stages explain neighbourhoods of a 2 x 2 map: few, large neighbourhoods, so the multi-stage detail the "
        "thesis reports on VGG16's 14 x 14 map has little room here",
    ),
    Claim(
        "jitter-del", "Jitter-CAM lowers Deletion below Grad-CAM", "Jitter-CAM Table 2 (ResNet-50, ImageNet: 0.118 vs 0.142)",
        "cams", "deletion", "jitter_cam", "gradcam", False, (0.118, 0.142), False,
        "Deletion to zeros, 32 steps (paper: 28), predicted class; Jitter-CAM at twice the layer's grid (the paper's "
        "choice); resnet18's 2 x 2 layer4 at 64 px has ResNet-50's 32 pixels per cell",
        "Jitter-CAM's gain comes from resolving detail finer than a cell; a single synthetic shape on a plain "
        "background gives the finer map little to rank differently",
    ),
    Claim(
        "constant-ad", "the 'Constant' map beats Grad-CAM on Average Drop (so AD is flawed)", "Jitter-CAM Table 1 (ResNet-50: 2.70 vs 14.04)",
        "cams", "average_drop", "constant", "gradcam", False, (2.70, 14.04), True,
        "x * M with M min-max scaled, softmax of the predicted class, in percent; Constant = 0.9 with one 1 and one 0",
    ),
    Claim(
        "constant-iic", "the 'Constant' map beats Grad-CAM on Increase in Confidence (so IIC is flawed)",
        "Jitter-CAM Table 1 (ResNet-50: 48.22 vs 40.21)",
        "cams", "increase_in_confidence", "constant", "gradcam", True, (48.22, 40.21), True,
        "as for Average Drop",
        "IIC is a 0 / 1 count per image, so 64 images leave a standard error of 3-6 points per model; the "
        "difference goes the paper's way on every model (the Constant map raises the score on more images: 24.0 vs "
        "16.7 % pooled over 3 models) but clears two standard errors on one model only, and not the pooled t",
    ),
    Claim(
        "constant-del", "...while Deletion ranks the 'Constant' map below Grad-CAM", "Jitter-CAM section 4.3 (argument; no number)",
        "cams", "deletion", "gradcam", "constant", False, (None, None), False,
        "Deletion to zeros, 32 steps; the Constant map deletes pixels in raster order",
        "Grad-CAM's 2 x 2 map ranks pixels only by quadrant, so in 128-pixel steps its deletion order is not "
        "reliably better than raster order here (0.448 vs 0.479 pooled over 3 models, random 0.564; one model each "
        "way); the higher-resolution maps of the same layer (Jitter-CAM 0.314, mass-preserving 0.320) delete "
        "better than the Constant map, which is the paper's point",
    ),
    Claim(
        "mass-preserving", "mass-preserving upsampling beats bilinear on faithfulness (Insertion - Deletion)",
        "USU abstract (ImageNet, CIFAR-10, CUB-200; no number in the supplied text)",
        "cams", "insertion-deletion", "gradcam_mass_preserving", "gradcam", True, (None, None), False,
        "Grad-CAM of layer4 upsampled by MassPreservingUpsampler (defaults) vs bilinear, Insertion - Deletion as above",
        "the shapes are flat-coloured objects whose edges the bilinear blob already covers; the redistribution "
        "moves mass inside a cell, which 128-pixel steps barely resolve",
    ),
    Claim(
        "sg2-ins", "SmoothGrad-squared beats SmoothGrad on Insertion", "spectral paper Table 1 (numbers lost in the supplied text)",
        "spectral", "insertion", "smoothgrad_sq", "smoothgrad", True, (None, None), False,
        "pixel removal most important first, zeros substrate, 64 steps of 64 pixels (paper: one pixel per step); "
        "both at the optimal noise scale (convex, entropy plateau: the paper's OS), 16 draws; 64 px shapes, not ImageNet",
        "the paper omits CIFAR because low resolution leaves little gap between high- and low-frequency features; "
        "64 px synthetic shapes are closer to CIFAR than to ImageNet, and Insertion (which rebuilds the image from "
        "zeros) rewards both maps alike once the object's pixels are in",
    ),
    Claim(
        "sg2-del", "SmoothGrad-squared beats SmoothGrad on Deletion", "spectral paper Table 1 (numbers lost in the supplied text)",
        "spectral", "deletion", "smoothgrad_sq", "smoothgrad", False, (None, None), False, "as above",
        "see the Insertion row",
    ),
    Claim(
        "uniform-ins", "a uniform explanation prior (SL2) beats a Dirac one (SG2 at one scale) on Insertion",
        "spectral paper Table 1 (numbers lost in the supplied text)",
        "spectral", "insertion", "spectral_lens", "smoothgrad_sq", True, (None, None), False,
        "SpectralLens over scales 0.1-1.0 x the optimal scale, 4 draws each; SG2 at the optimal scale, 16 draws; as above",
    ),
    Claim(
        "uniform-del", "a uniform explanation prior (SL2) beats a Dirac one (SG2 at one scale) on Deletion",
        "spectral paper Table 1 (numbers lost in the supplied text)",
        "spectral", "deletion", "spectral_lens", "smoothgrad_sq", False, (None, None), False, "as above",
        "the difference goes the paper's way but within two standard errors at 64 images; SL2 aggregates bands "
        "that on 64 px images are few",
    ),
    Claim(
        "egc-cmapss-iic", "Expected Grad-CAM beats Grad-CAM on Increase in Confidence for a C-MAPSS CNN-LSTM",
        "thesis Table 3 (FD001 CNN-LSTM: 35.2 vs 27.0)",
        "cmapss", "increase_in_confidence", "expected_gradcam", "gradcam", True, (35.2, 27.0), True,
        "score = predicted RUL; x * M over sensors x cycles; last window of each of 100 test engines; CNN-LSTM of "
        "configs/cmapss_fd001_cnn_lstm.yaml trained on a synthetic FD001 in NASA's format, not the real one",
        "in the synthetic FD001 every informative sensor drifts smoothly as exp(-RUL / 40) with small noise, so the "
        "regressor is nearly exact (test RMSE 0.5-1.4 cycles over the 3 models) and its gradients are not saturated; Expected Grad-CAM "
        "spreads its map over more cycles, which keeps more of the input in x * M and raises the predicted RUL less "
        "often; the thesis' real FD001 is noisier and its regressors far less exact (RMSE 15.6)",
    ),
    Claim(
        "egc-cmapss-ad", "(thesis: Expected Grad-CAM's Average Drop is slightly worse than Grad-CAM's on C-MAPSS)",
        "thesis Table 3 (FD001 CNN-LSTM: 34.4 vs 31.7, lower is better)",
        "cmapss", "average_drop", "gradcam", "expected_gradcam", False, (31.7, 34.4), True, "as above",
    ),
]


def lit_xai(arguments: list[str], log: Path, threads: int) -> None:
    """Run `lit-xai ARGS` in the repository's root in a fork of this process (`in_fork`), its output going to
    `log`; a failure ends the study with the log's tail. The fork does what `python -m lit_xai ARGS` does
    (its own process, seeded by the CLI) without importing torch and Lightning again (about 6 s a run)."""
    code = in_fork(run_cli, arguments, log, threads)
    if code != 0:
        tail = log.read_text().splitlines()[-40:] if log.exists() else []
        raise SystemExit(f"study: `lit-xai {' '.join(arguments)}` failed (exit {code}); end of {log}:\n" + "\n".join(tail))


def run_cli(arguments: list[str], log: Path, threads: int) -> None:
    """In the forked process: standard output and error into `log`, `threads` intra-op threads, the
    repository's root as the working directory, then the CLI."""
    import torch

    from lit_xai.cli import main as cli_main

    sys.stdout.flush()
    sys.stderr.flush()
    handle = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(handle, 1)
    os.dup2(handle, 2)
    os.chdir(ROOT)
    os.environ["OMP_NUM_THREADS"] = str(threads)
    torch.set_num_threads(threads)
    sys.argv = ["lit-xai", *arguments]
    try:
        cli_main()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()


def in_fork(function: Callable[..., object], *arguments: object) -> int:
    """Run `function(*arguments)` in a fork of this process and return its exit code. This process imports
    torch and Lightning once and runs no torch computation itself (`main`), so the forks inherit the
    imports and no thread pool."""
    process = multiprocessing.get_context("fork").Process(target=function, args=arguments)
    process.start()
    process.join()
    return process.exitcode if process.exitcode is not None else 1


def last_metrics(run_dir: Path) -> dict[str, float]:
    """The last logged value of every column of a CSVLogger's metrics.csv."""
    values: dict[str, float] = {}
    with (run_dir / "metrics.csv").open() as handle:
        for row in csv.DictReader(handle):
            values.update({key: float(value) for key, value in row.items() if value not in ("", None)})
    return values


def read_scores(path: Path) -> dict[tuple[str, str], list[float]]:
    """(explainer, metric) -> per-image values in sample order (the same images for every explainer)."""
    scores: dict[tuple[str, str], list[float]] = {}
    with path.open() as handle:
        for row in csv.DictReader(handle):
            scores.setdefault((row["explainer"], row["metric"]), []).append(float(row["value"]))
    return scores


def values_of(scores: dict[tuple[str, str], list[float]], explainer: str, metric: str) -> list[float] | None:
    if metric == "insertion-deletion":
        insertion, deletion = scores.get((explainer, "insertion")), scores.get((explainer, "deletion"))
        return None if insertion is None or deletion is None else [i - d for i, d in zip(insertion, deletion)]
    return scores.get((explainer, metric))


def mean_se(values: list[float]) -> tuple[float, float]:
    """Mean and standard error of the images a metric kept (nan marks one it left out)."""
    values = [v for v in values if not math.isnan(v)]
    n = len(values)
    if n == 0:
        return math.nan, math.nan
    mean = sum(values) / n
    if n < 2:
        return mean, math.nan
    variance = sum((v - mean) ** 2 for v in values) / (n - 1)
    return mean, math.sqrt(variance / n)


@dataclass
class Verdict:
    ours: tuple[float, float]
    baseline: tuple[float, float]
    difference: tuple[float, float]  # ours - baseline, image by image, with its standard error
    images: int
    holds: str


def judge(claim: Claim, scores: dict[tuple[str, str], list[float]]) -> Verdict | None:
    """Paired comparison: the claim holds when the per-image difference goes the claimed way by more than
    two standard errors; within two it is 'not resolved'; beyond two the other way it does not hold.
    Images a metric left out (value nan in xai_scores.csv, e.g. a ratio metric's score <= 0) are left out
    of the pair on both sides."""
    ours, baseline = values_of(scores, claim.ours, claim.metric), values_of(scores, claim.baseline, claim.metric)
    if ours is None or baseline is None or len(ours) != len(baseline):
        return None
    pairs = [(a, b) for a, b in zip(ours, baseline) if not (math.isnan(a) or math.isnan(b))]
    ours, baseline = [a for a, _ in pairs], [b for _, b in pairs]
    if not ours:
        return None
    difference = mean_se([a - b for a, b in zip(ours, baseline)])
    signed = difference[0] if claim.higher else -difference[0]
    error = difference[1]
    if error == 0 or math.isnan(error):
        holds = "holds" if signed > 0 else ("does not hold" if signed < 0 else "not resolved (equal on every image)")
    elif signed > 2 * error:
        holds = "holds"
    elif signed < -2 * error:
        holds = "does not hold"
    else:
        holds = "not resolved (within 2 SE)"
    return Verdict(mean_se(ours), mean_se(baseline), difference, len(ours), holds)


@dataclass
class Pooled:
    """A claim over several trained models: each model's verdict, and the pooled one (means over models of
    the per-model means; the difference's standard error across models, against t with models - 1 df)."""

    per_model: list[Verdict | None]
    ours: tuple[float, float]
    baseline: tuple[float, float]
    difference: tuple[float, float]
    models: int
    images: int
    critical: float
    holds: str

    @property
    def changes(self) -> bool:
        words = {verdict_word(v.holds) for v in self.per_model if v is not None}
        return len(words) > 1


def verdict_word(holds: str) -> str:
    return "not resolved" if holds.startswith("not resolved") else holds


def t_critical(models: int) -> float:
    """Two-sided 95 % quantile of Student's t with models - 1 degrees of freedom (2 for a single model,
    whose standard error is the within-model one, as before)."""
    if models < 2:
        return 2.0
    from scipy.stats import t

    return float(t.ppf(0.975, models - 1))


def verdict(signed: float, error: float, critical: float) -> str:
    if error == 0 or math.isnan(error):
        return "holds" if signed > 0 else ("does not hold" if signed < 0 else "not resolved (equal on every image)")
    if signed > critical * error:
        return "holds"
    if signed < -critical * error:
        return "does not hold"
    return f"not resolved (within {critical:.3g} SE)"


def pool(per_model: list[Verdict | None], higher: bool) -> Pooled | None:
    """Pool per-model verdicts (each a paired comparison on the same images)."""
    present = [v for v in per_model if v is not None]
    if not present:
        return None
    if len(present) == 1:
        only = present[0]
        return Pooled(per_model, only.ours, only.baseline, only.difference, 1, only.images, 2.0, only.holds)
    ours = mean_se([v.ours[0] for v in present])
    baseline = mean_se([v.baseline[0] for v in present])
    difference = mean_se([v.difference[0] for v in present])
    critical = t_critical(len(present))
    holds = verdict(difference[0] if higher else -difference[0], difference[1], critical)
    return Pooled(per_model, ours, baseline, difference, len(present), present[0].images, critical, holds)


def judge_models(claim: Claim, scores: list[dict[tuple[str, str], list[float]]]) -> Pooled | None:
    """`judge` on each trained model's scores, pooled (`pool`)."""
    return pool([judge(claim, model) for model in scores], claim.higher)


def fmt(value: tuple[float, float], percent: bool) -> str:
    scale = 100.0 if percent else 1.0
    mean, error = value
    return f"{mean * scale:.3f} ± {error * scale:.3f}" if not percent else f"{mean * scale:.1f} ± {error * scale:.1f}"


def paper_cell(claim: Claim) -> str:
    ours, baseline = claim.paper
    if ours is None:
        return "-"
    return f"{ours:g} vs {baseline:g}"


def box_plots(scores: dict[str, dict[tuple[str, str], list[float]]], group: str, metrics: list[str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    table = scores[group]
    explainers = list(dict.fromkeys(e for e, _ in table))
    columns = min(3, len(metrics))
    rows = math.ceil(len(metrics) / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(4.6 * columns, 3.4 * rows), squeeze=False)
    for axis in axes.flat[len(metrics):]:
        axis.set_visible(False)
    for axis, metric in zip(axes.flat, metrics):
        present = [(e, [x for x in values_of(table, e, metric) or [] if not math.isnan(x)]) for e in explainers]  # nan: left out
        present = [(e, v) for e, v in present if v]
        axis.boxplot([v for _, v in present], orientation="horizontal", showmeans=True)
        axis.set_yticks(range(1, len(present) + 1), [e for e, _ in present], fontsize=8)
        axis.set_title(metric, fontsize=10)
        axis.grid(axis="x", alpha=0.3)
    figure.suptitle(f"per-image scores: {group} (box: quartiles, whiskers: 1.5 IQR, triangle: mean)", fontsize=10)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def runs(args: argparse.Namespace, data_root: Path) -> list[Run]:
    quick = args.quick
    shapes_fit = ["--trainer.max_epochs=1", "--data.init_args.train_size=256", "--data.init_args.test_size=16"] if quick else []
    few = ["--xai.limit_test_samples=4", "--xai.metrics.insertion.init_args.steps=8", "--xai.metrics.deletion.init_args.steps=8"] if quick else []
    cams = [*few, "--xai.explainers.expected_gradcam.init_args.draws=4"] if quick else []
    hyper = [*few, "--xai.explainers.expected_gradcam.init_args.draws=2", "--xai.explainers.hyper_expected_gradcam.init_args.draws=2"] if quick else []
    cmapss_common = [
        f"--data.init_args.data_dir={args.cmapss or data_root / 'cmapss'}", "--data.init_args.download=false", "--data.init_args.batch_size=64",
    ]
    cmapss_fit = ["--trainer.max_epochs=" + ("1" if quick else "8"), "--xai.every_n_epochs=1000", "--model.init_args.scheduler=none", "--model.init_args.lr=0.003"]
    chosen = []
    if args.imagenet:
        chosen.append(Run(
            "cams", ["configs/imagenet_resnet50_eval.yaml", "configs/study/xai_cams.yaml"],
            [f"--data.init_args.data_dir={args.imagenet}", f"--xai.limit_test_samples={args.limit}", *cams],
            describe=f"ImageNet validation images in {args.imagenet}, pretrained ResNet-50 (configs/imagenet_resnet50_eval.yaml), {args.limit} images",
        ))
    else:
        chosen.append(Run(
            "cams", ["configs/study/shapes_resnet18.yaml", "configs/study/xai_cams.yaml"], [*shapes_fit[2:], *cams],
            fit=["configs/study/shapes_resnet18.yaml"], fit_overrides=shapes_fit,
            describe="resnet18 trained from scratch on 64 px synthetic shapes (configs/study/shapes_resnet18.yaml), first 64 test images",
        ))
    imagenet = ["configs/imagenet_resnet50_eval.yaml"] if args.imagenet else ["configs/study/shapes_resnet18.yaml"]
    chosen.append(Run(
        "hyper", [*imagenet, "configs/study/xai_hyper.yaml"],
        [f"--data.init_args.data_dir={args.imagenet}", f"--xai.limit_test_samples={min(args.limit, 100)}"] if args.imagenet else [*shapes_fit[2:], *hyper],
        fit=None if args.imagenet else ["configs/study/shapes_resnet18.yaml"], fit_overrides=[] if args.imagenet else shapes_fit,
        describe="the same model, first 64 test images" if not args.imagenet else f"the same ImageNet model, {min(args.limit, 100)} images",
    ))
    if args.food101:
        chosen.append(Run(
            "spectral", ["configs/food101_resnet50_eval.yaml", "configs/study/xai_spectral.yaml"],
            [f"--data.init_args.data_dir={args.food101}", f"--xai.limit_test_samples={args.limit}", f"--ckpt_path={args.food101_ckpt}"],
            describe=f"Food-101 test images in {args.food101}, ResNet-50 checkpoint {args.food101_ckpt}, {args.limit} images",
        ))
    else:
        spectral = few
        chosen.append(Run(
            "spectral", ["configs/study/shapes_resnet18.yaml", "configs/study/xai_spectral.yaml"], [*shapes_fit[2:], *spectral],
            fit=["configs/study/shapes_resnet18.yaml"], fit_overrides=shapes_fit,
            describe="the same resnet18 on 64 px shapes, first 64 test images",
        ))
    chosen.append(Run(
        "cmapss", ["configs/cmapss_fd001_cnn_lstm.yaml", "configs/study/xai_cmapss.yaml"],
        [*cmapss_common, *(["--xai.explainers.expected_gradcam.init_args.draws=4"] if quick else [])],
        fit=["configs/cmapss_fd001_cnn_lstm.yaml"], fit_overrides=[*cmapss_common, *cmapss_fit],
        describe=(f"NASA's FD001 files in {args.cmapss}" if args.cmapss else "a synthetic FD001 in NASA's format (tests/cmapss_fixtures.py: 40 training, 100 test engines)")
        + f", CNN-LSTM of configs/cmapss_fd001_cnn_lstm.yaml, {1 if quick else 8} epochs",
    ))
    decoy_fit = ["--trainer.max_epochs=1", "--data.init_args.train_size=256", "--data.init_args.test_size=16"] if quick else []
    decoy_test = ["--xai.limit_test_samples=8", "--xai.explainers.smoothgrad.init_args.samples=2", "--xai.explainers.integrated_gradients.init_args.steps=4"] if quick else []
    for group, share in SHORTCUT_GROUPS.items():
        chosen.append(Run(
            group, ["configs/study/shapes_decoy.yaml", "configs/study/xai_shortcut.yaml"], [f"--data.init_args.decoy={share}", *decoy_fit[2:], *decoy_test],
            fit=["configs/study/shapes_decoy.yaml"], fit_overrides=[f"--data.init_args.decoy={share}", *decoy_fit],
            describe=f"small CNN (width 16, 6 epochs) on 32 px shapes whose decoy encodes the class in {share:.0%} of the training "
            f"images (configs/study/shapes_decoy.yaml), {16 if quick else 96} test images (decoy random)",
            decoy=share,
        ))
    return chosen


Scores = dict[tuple[str, str], list[float]]


def latest_version(directory: Path) -> Path:
    return sorted(directory.glob("version_*"), key=lambda p: int(p.name.split("_")[1]))[-1]


def read_directions(path: Path) -> dict[str, bool | None]:
    """metric -> higher_is_better, from the callback's xai_ranking.csv (None: undeclared)."""
    directions: dict[str, bool | None] = {}
    if path.exists():
        with path.open() as handle:
            for row in csv.DictReader(handle):
                directions[row["metric"]] = {"True": True, "False": False}.get(row["higher_is_better"])
    return directions


def measure_interventions(checkpoint: Path, fit_dir: Path, test_dir: Path) -> dict[str, float]:
    """The shortcut model's intervention rates on the test images (`lit_xai.datamodules.decoy`), measured in a
    fork (`in_fork`) and cached in `<test run>/interventions.json` (read back by --report-only)."""
    cached = test_dir / "interventions.json"
    if not cached.exists() and in_fork(write_interventions, checkpoint, fit_dir, cached) != 0:
        raise SystemExit(f"study: measuring the interventions of {checkpoint} failed")
    return json.loads(cached.read_text())


def write_interventions(checkpoint: Path, fit_dir: Path, cached: Path) -> None:
    import torch
    import yaml

    from lit_xai.datamodules import ShapesDataModule
    from lit_xai.datamodules.decoy import intervention_rates
    from lit_xai.models import ImageClassifier

    config = yaml.safe_load((fit_dir / "config.yaml").read_text())
    data = ShapesDataModule(**config["data"]["init_args"])
    model = ImageClassifier.load_from_checkpoint(checkpoint, map_location="cpu").eval()
    with torch.no_grad():
        test = data.dataset("test")
        accuracy = float((model(test.images).argmax(dim=1) == test.labels).double().mean())
    rates = {**intervention_rates(model, test)._asdict(), "test_acc": accuracy}
    cached.write_text(json.dumps(rates))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "lightning_logs" / "study", help="runs, logs and checkpoints")
    parser.add_argument("--docs", type=Path, default=ROOT / "docs", help="where study.md and the figures go")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--quick", action="store_true", help="tiny settings to check the pipeline (numbers meaningless)")
    parser.add_argument("--seeds", type=int, default=3, help="trained models per setting (seed_everything 0 .. N-1; default 3)")
    parser.add_argument("--only", nargs="*", default=[], help="run only the groups whose name starts with one of these (e.g. shortcut)")
    parser.add_argument("--imagenet", type=Path)
    parser.add_argument("--food101", type=Path)
    parser.add_argument("--food101-ckpt", type=Path)
    parser.add_argument("--cmapss", type=Path)
    parser.add_argument("--limit", type=int, default=500)
    parser.add_argument("--report-only", action="store_true", help="re-write the report and figures from the runs already in --out")
    args = parser.parse_args()
    if args.food101 and not args.food101_ckpt:
        parser.error("--food101 needs --food101-ckpt (a ResNet-50 fine-tuned on Food-101, e.g. from configs/food101_resnet50.yaml)")
    if args.seeds < 1:
        parser.error(f"--seeds must be >= 1, got {args.seeds}")
    start = time.perf_counter()
    if not args.report_only:  # every run is a fork of this process (`lit_xai`): import them once, here
        import importlib

        import torch

        importlib.import_module("lit_xai.cli")
        torch.set_num_threads(1)  # no thread pool in this process for its forks to inherit; each sets its own
    args.load = os.getloadavg()[0]
    args.out.mkdir(parents=True, exist_ok=True)
    args.docs.mkdir(parents=True, exist_ok=True)
    data_root = args.out / "data"
    if not args.cmapss and not args.report_only:
        from tests.cmapss_fixtures import write_cmapss

        write_cmapss(data_root / "cmapss", "FD001", train_units=10 if args.quick else 40, test_units=10 if args.quick else 100, short_test_cycles=40)
    logs = args.out / "logs"
    scores: dict[str, list[Scores]] = {}
    directions: dict[str, dict[str, bool | None]] = {}
    interventions: dict[str, list[dict[str, float]]] = {}
    models: dict[str, str] = {}
    fitted: dict[tuple[object, ...], tuple[Path, dict[str, float], Path]] = {}
    chosen = [run for run in runs(args, data_root) if not args.only or any(run.group.startswith(prefix) for prefix in args.only)]
    for run in chosen:
        qualities: list[str] = []
        for seed in (range(args.seeds) if run.fit is not None else [None]):
            tag = "" if seed is None else f"_s{seed}"
            ckpt: list[str] = []
            quality: dict[str, float] = {}
            if run.fit is not None:
                key = (*run.fit, *run.fit_overrides, seed)
                if key not in fitted:
                    name = f"{run.group}_fit{tag}"
                    if not args.report_only:
                        print(f"study: lit-xai fit -c {' -c '.join(run.fit)} (seed {seed}) ...", flush=True)
                        lit_xai(["fit", *(a for c in run.fit for a in ("-c", c)), *run.fit_overrides, f"--seed_everything={seed}",
                                 "--trainer.logger.init_args.save_dir=" + str(logs), f"--trainer.logger.init_args.name={name}",
                                 "--trainer.enable_progress_bar=false"], args.out / f"{name}.log", args.threads)
                    version = latest_version(logs / name)
                    fitted[key] = (version / "checkpoints" / "best.ckpt", last_metrics(version), version)
                checkpoint, trained, fit_dir = fitted[key]
                ckpt = [f"--ckpt_path={checkpoint}"]
                quality = {k: v for k, v in trained.items() if k in ("val/acc", "val/rmse", "val/mae")}
            name = f"{run.group}_test{tag}"
            if not args.report_only:
                print(f"study: lit-xai test -c {' -c '.join(run.configs)} (model {tag[1:] or 'given'}) ...", flush=True)
                lit_xai(["test", *(a for c in run.configs for a in ("-c", c)), *run.overrides, *ckpt, "--trainer.logger.init_args.save_dir=" + str(logs),
                         f"--trainer.logger.init_args.name={name}", "--trainer.enable_progress_bar=false"], args.out / f"{name}.log", args.threads)
            version = latest_version(logs / name)
            scores.setdefault(run.group, []).append(read_scores(version / "xai_scores.csv"))
            directions[run.group] = read_directions(version / "xai_ranking.csv")
            if run.decoy is not None and run.fit is not None:
                interventions.setdefault(run.group, []).append(measure_interventions(checkpoint, fit_dir, version))
            tested = last_metrics(version)
            quality.update({k: v for k, v in tested.items() if k in ("test/acc", "test/rmse", "test/mae")})
            qualities.append(", ".join(f"{k.replace('/', ' ')} {v:.3g}" for k, v in quality.items()))
        prefix = "validation / test per model (seeds 0.." + str(args.seeds - 1) + "): " if run.fit is not None else ""
        models[run.group] = run.describe + "; " + prefix + " | ".join(qualities)
    facts = args.out / "study_run.json"  # the runs' own time and load, kept for --report-only
    if args.report_only:
        recorded = json.loads(facts.read_text()) if facts.exists() else {}
        seconds, args.load, args.threads = recorded.get("seconds", math.nan), recorded.get("load", math.nan), recorded.get("threads", args.threads)
    else:
        seconds = time.perf_counter() - start
        facts.write_text(json.dumps({"seconds": seconds, "load": args.load, "threads": args.threads}))
    figures = {
        "cams": ["insertion", "deletion", "insertion-deletion", "average_drop", "increase_in_confidence"],
        "hyper": ["insertion", "deletion"],
        "spectral": ["insertion", "deletion"],
        "cmapss": ["average_drop", "increase_in_confidence"],
    }
    for group, metrics in figures.items():
        if group in scores:
            box_plots({group: scores[group][0]}, group, metrics, args.docs / f"study_{group}.png")
    write_report(args, scores, directions, interventions, models, seconds, args.docs / "study.md")
    print(f"study: wrote {args.docs / 'study.md'}; the runs took {seconds / 60:.1f} min", flush=True)


SHORTCUT_GROUPS = {"shortcut_0": 0.0, "shortcut_50": 0.5, "shortcut_100": 1.0}
"""The shortcut benchmark's groups and the share of training images whose decoy encodes the class."""


def spearman_permutation(x: list[float], y: list[float], draws: int = 20000, seed: int = 0) -> tuple[float, float, float]:
    """Spearman's rho of x and y, and one-sided permutation p-values for agreement (rho >= observed) and
    disagreement (rho <= observed): all permutations up to 8 points, else `draws` seeded random ones."""
    import itertools

    import numpy as np

    from lit_xai.ranking import spearman_rho

    rho = spearman_rho(x, y)
    if math.isnan(rho):
        return rho, math.nan, math.nan
    ys = np.asarray(y, dtype=float)
    if len(x) <= 8:
        permuted = [spearman_rho(x, ys[list(order)]) for order in itertools.permutations(range(len(x)))]
    else:
        rng = np.random.default_rng(seed)
        permuted = [spearman_rho(x, ys[rng.permutation(len(x))]) for _ in range(draws)]
    permuted = np.nan_to_num(np.asarray(permuted), nan=0.0)
    tolerance = 1e-12
    return rho, float(np.mean(permuted >= rho - tolerance)), float(np.mean(permuted <= rho + tolerance))


def shortcut_section(scores: dict[str, list[Scores]], interventions: dict[str, list[dict[str, float]]]) -> tuple[list[str], dict[str, int]]:
    """The shortcut claims: per explainer, (1) more decoy mass for the 100 % model than for the 0 % one
    (paired on the same test images, pooled over models), (2) its decoy mass orders the models as their
    interventional reliance on the decoy does (Spearman over every model, permutation test)."""
    groups = [g for g in SHORTCUT_GROUPS if g in scores and g in interventions]
    counts = {"holds": 0, "not resolved": 0, "does not hold": 0}
    if len(groups) < 2:
        return [], counts
    lines = [
        "## The shortcut benchmark (known answer)",
        "",
        "Small CNNs trained on 32 px shapes with a Decoy-MNIST-style patch (Ross et al., IJCAI 2017) whose grey level encodes the "
        "class in 0 %, 50 % or 100 % of the training images and is random at test (`ShapesDataModule(decoy=...)`). The ground "
        "truth is interventional: the share of test predictions that change when only the decoy is re-rendered with another "
        "class's level (decoy changed), and when only the shape is replaced by another class's shape (shape changed). "
        "`DecoyMass` is the share of a map's positive mass on the decoy (a uniform map: the decoy's area share).",
        "",
        "| training decoy share | model | test acc | decoy changed | decoy followed | shape changed | " + " | ".join(
            f"{e} mass" for e in explainers_of(scores[groups[0]][0], "decoy_mass")) + " |",
        "| --- | ---: | ---: | ---: | ---: | ---: |" + " ---: |" * len(explainers_of(scores[groups[0]][0], "decoy_mass")),
    ]
    explainers = explainers_of(scores[groups[0]][0], "decoy_mass")
    reliance: list[float] = []
    masses: dict[str, list[float]] = {e: [] for e in explainers}
    for group in groups:
        for index, (model, rates) in enumerate(zip(scores[group], interventions[group])):
            means = {e: mean_se(model[(e, "decoy_mass")])[0] for e in explainers if (e, "decoy_mass") in model}
            lines.append(
                f"| {SHORTCUT_GROUPS[group]:.0%} | {index} | {rates['test_acc']:.3f} | {rates['decoy_changed']:.3f} | {rates['decoy_followed']:.3f} | "
                f"{rates['shape_changed']:.3f} | " + " | ".join(f"{means[e]:.3f}" if e in means else "-" for e in explainers) + " |"
            )
            reliance.append(rates["decoy_changed"])
            for e in explainers:
                masses[e].append(means.get(e, math.nan))
    lines += ["", "| shortcut claim | per model | pooled | here |", "| --- | --- | ---: | --- |"]
    low, high = ("shortcut_0", "shortcut_100")
    for explainer in explainers:
        if low in scores and high in scores:
            per_model = []
            for zero, full in zip(scores[low], scores[high]):
                a, b = full.get((explainer, "decoy_mass")), zero.get((explainer, "decoy_mass"))
                if a is None or b is None or len(a) != len(b):
                    per_model.append(None)
                    continue
                difference = mean_se([x - y for x, y in zip(a, b)])
                per_model.append(Verdict(mean_se(a), mean_se(b), difference, len(a), verdict(difference[0], difference[1], 2.0)))
            pooled = pool(per_model, True)
            if pooled is not None:
                word = verdict_word(pooled.holds)
                counts[word] += 1
                lines.append(
                    f"| `{explainer}` puts more of its mass on the decoy for the 100 % model than for the 0 % model (decoy mass, paired "
                    f"on the same test images) | {' / '.join(verdict_word(v.holds) if v else '-' for v in per_model)} | "
                    f"{fmt(pooled.ours, False)} vs {fmt(pooled.baseline, False)}, difference {fmt(pooled.difference, False)} | **{pooled.holds}** |"
                )
        rho, p_agree, p_disagree = spearman_permutation(masses[explainer], reliance)
        if math.isnan(rho):
            holds = "not resolved (a constant column)"
        elif p_agree < 0.05:
            holds = "holds"
        elif p_disagree < 0.05:
            holds = "does not hold"
        else:
            holds = "not resolved (permutation p >= 0.05)"
        counts[verdict_word(holds)] += 1
        lines.append(
            f"| `{explainer}`'s decoy mass orders the {len(reliance)} models as their decoy reliance (decoy changed) does | - | "
            f"Spearman {rho:.3f}, p {p_agree:.3g} | **{holds}** |"
        )
    lines += [
        "",
        f"Of the shortcut claims: **{counts['holds']} hold, {counts['not resolved']} are not resolved, {counts['does not hold']} do not hold**. "
        "The first kind pools the per-model paired differences over the trained models as the main claims do; the second "
        "is a one-sided permutation test of Spearman's rho over every trained model (all settings and seeds).",
        "",
    ]
    return lines, counts


def explainers_of(scores: Scores, metric: str) -> list[str]:
    return list(dict.fromkeys(e for e, m in scores if m == metric))


def ranking_section(scores: dict[str, list[Scores]], directions: dict[str, dict[str, bool | None]], groups: list[str]) -> list[str]:
    """Per group and model: the ranks with ties at 0.05 (Wilcoxon, Holm), Krippendorff's alpha per metric,
    and Spearman's rho between the metrics' method rankings (`lit_xai.ranking`)."""
    from lit_xai.ranking import rank_explainers

    lines = [
        "## Rankings with ties, and how reliable the metrics are",
        "",
        "Per metric, every pair of explainers compared on the same images (Wilcoxon signed-rank, Holm over the pairs); rank r "
        "means r - 1 methods are significantly better at level 0.05, so methods that cannot be told apart share a rank. "
        "Cells list one rank per trained model. Krippendorff's ordinal alpha says whether the images rank the methods alike "
        "(1: always; 0: chance; below 0.667 flagged low, Tomsett et al., AAAI 2020); Spearman's rho between two metrics says "
        "whether they order the methods alike. See docs/evaluation.md.",
        "",
    ]
    for group in groups:
        if group not in scores:
            continue
        reports = []
        for model in scores[group]:
            table: dict[str, dict[str, list[float]]] = {}
            for (explainer, metric), values in model.items():
                table.setdefault(explainer, {})[metric] = values
            reports.append(rank_explainers(table, directions.get(group, {})))
        metrics = list(reports[0].metrics)
        explainers = list(dict.fromkeys(e for r in reports for m in r.metrics.values() for e in m.explainers))
        lines += [f"**{group}**", "", "| explainer | " + " | ".join(metrics) + " |", "| --- |" + " ---: |" * len(metrics)]
        for explainer in explainers:
            cells = [" / ".join(str(r.metrics[m].ranks.get(explainer, "-")) if m in r.metrics else "-" for r in reports) for m in metrics]
            lines.append(f"| {explainer} | " + " | ".join(cells) + " |")
        alphas = []
        for metric in metrics:
            values = [r.metrics[metric].reliability if metric in r.metrics else None for r in reports]
            low = any(r.metrics[metric].unreliable for r in reports if metric in r.metrics)
            alphas.append(" / ".join("-" if v is None else f"{v:.2f}" for v in values) + (" (low)" if low else ""))
        lines.append("| Krippendorff's alpha | " + " | ".join(alphas) + " |")
        pairs = list(reports[0].agreement)
        if pairs:
            lines += ["", "Spearman's rho between metrics: " + "; ".join(
                f"{a} vs {b}: " + " / ".join("-" if math.isnan(r.agreement.get((a, b), math.nan)) else f"{r.agreement[(a, b)]:.2f}" for r in reports)
                for a, b in pairs
            ) + "."]
        lines.append("")
    return lines


def cpu_kind() -> str:
    """The CPU's model name (/proc/cpuinfo on Linux): numbers reproduce exactly only on the same kind."""
    import platform

    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def write_report(
    args: argparse.Namespace,
    scores: dict[str, list[Scores]],
    directions: dict[str, dict[str, bool | None]],
    interventions: dict[str, list[dict[str, float]]],
    models: dict[str, str],
    seconds: float,
    path: Path,
) -> None:
    import platform

    import torch

    lines = [
        "# The seed papers' claims, re-tested",
        "",
        "Written by `python benchmarks/study.py" + (" --quick" if args.quick else "") + f" --seeds {args.seeds}"
        + (f" --only {' '.join(args.only)}" if args.only else "") + "` (`make study`); do not edit by hand, re-run it. "
        f"Run time: **{seconds / 60:.1f} min** on {platform.machine()} ({cpu_kind()}), {args.threads} CPU threads "
        f"(load average {args.load:.1f} at the start), torch {torch.__version__}. "
        "Every model was trained with `lit-xai fit` and scored with `lit-xai test`; each claim compares two methods on the same "
        "test images, image by image (paired difference ± its standard error).",
        "",
        f"Each trained model was trained {args.seeds} times (`seed_everything` 0 .. {args.seeds - 1}; same data, same explainer seeds). "
        "A claim is judged per model and pooled: the pooled difference is the mean of the per-model paired differences and its "
        "standard error is taken across models, so it includes the between-model variance. Training repeats bit for bit on "
        "one CPU kind in our runs (with one exception, under heavy load: docs/evaluation.md), not across kinds: **these numbers "
        "reproduce exactly only on the same CPU kind** (another machine with the same seeds trains different models, which is "
        "why verdicts are pooled over several).",
        "",
        "A claim **holds** when the difference goes the paper's way by more than the critical number of standard errors (two for "
        "one model; Student's t with models - 1 degrees of freedom for the pooled verdict: 4.30 for 3 models), **does not hold** "
        "when it goes the other way by as much, and is **not resolved** in between. AD and IIC are in percent where the paper "
        "reports percent.",
        "",
        "## Models",
        "",
        *[f"- **{group}**: {text}" for group, text in models.items()],
        "",
        "## Claims",
        "",
        "| claim | source | paper (ours vs baseline) | ours | baseline | difference | models x images | per model | here (pooled) |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- | --- |",
    ]
    notes = []
    verdicts = {claim.key: judge_models(claim, scores.get(claim.group, [])) for claim in CLAIMS}
    counts = {word: sum(1 for v in verdicts.values() if v is not None and v.holds.startswith(word)) for word in ("holds", "not resolved", "does not hold")}
    lines.insert(lines.index("## Claims") + 2, f"Of {len(CLAIMS)} claims: **{counts['holds']} hold, {counts['not resolved']} are not resolved, "
                 f"{counts['does not hold']} do not hold** on these models (pooled).\n")
    changing = []
    for claim in CLAIMS:
        pooled = verdicts[claim.key]
        if pooled is None:
            lines.append(f"| {claim.statement} | {claim.source} | {paper_cell(claim)} | - | - | - | 0 | - | not run (no scores for {claim.ours} / {claim.baseline}) |")
            continue
        per_model = " / ".join(verdict_word(v.holds) if v is not None else "-" for v in pooled.per_model)
        if pooled.changes:
            changing.append(f"- {claim.statement}: {per_model}")
        lines.append(
            f"| {claim.statement} (`{claim.ours}` vs `{claim.baseline}`, {claim.metric}, {'higher' if claim.higher else 'lower'} is better) | "
            f"{claim.source} | {paper_cell(claim)} | {fmt(pooled.ours, claim.percent)} | {fmt(pooled.baseline, claim.percent)} | "
            f"{fmt(pooled.difference, claim.percent)} | {pooled.models} x {pooled.images} | {per_model} | **{pooled.holds}** |"
        )
        note = f"- **{claim.statement}.** Protocol: {claim.protocol}."
        if pooled.holds != "holds" and claim.if_not:
            note += f" Why it may not hold here: {claim.if_not}."
        notes.append(note)
    lines += ["", "Claims whose verdict changes from one trained model to another:", "", *(changing or ["- none"]), ""]
    shortcut, _ = shortcut_section(scores, interventions)
    lines += shortcut
    lines += ranking_section(scores, directions, ["cams", "spectral", "shortcut_100"])
    lines += ["## Protocols, and how we differ from the papers", "", *notes, "",
              "## Every method on every metric (mean over models ± standard error across models; one model: over images)", ""]
    for group, per_model in scores.items():
        table = per_model[0]
        metrics = list(dict.fromkeys(m for _, m in table))
        explainers = list(dict.fromkeys(e for e, _ in table))
        lines += [f"**{group}**", "", "| explainer | " + " | ".join(metrics) + " |", "| --- |" + " ---: |" * len(metrics)]
        for explainer in explainers:
            cells = []
            for metric in metrics:
                present = [model[(explainer, metric)] for model in per_model if (explainer, metric) in model]
                if not present:
                    cells.append("-")
                elif len(present) == 1:
                    cells.append(fmt(mean_se(present[0]), False))
                else:
                    cells.append(fmt(mean_se([mean_se(values)[0] for values in present]), False))
            lines.append(f"| {explainer} | " + " | ".join(cells) + " |")
        if group in ("cams", "hyper", "spectral", "cmapss"):
            lines += ["", f"![per-image scores, {group}, first model](study_{group}.png)"]
        lines.append("")
    lines += [
        "## Re-running it",
        "",
        "- `make study` (or `python benchmarks/study.py`): everything above, fixed seeds; `--seeds N` models per setting; "
        "`--only shortcut` runs one claim set; `--report-only` re-writes this page from the runs in `--out` (default `lightning_logs/study`).",
        "- On real data: `--imagenet DIR` (the CAM and Hyper claims with pretrained ResNet-50 from "
        "`configs/imagenet_resnet50_eval.yaml`), `--food101 DIR --food101-ckpt CKPT` (the spectral claims), `--cmapss DIR` "
        "(NASA's FD001 files; the CNN-LSTM is trained there), `--limit N` images per dataset.",
        "- Each run's full table (every metric, standard errors, seconds per image) is `xai_results.md`, its ranking "
        "`xai_ranking.md` and its per-image values `xai_scores.csv`, under `<out>/logs/<group>_test_s<seed>/version_*/`.",
        "- How to read a ranking, Krippendorff's alpha and the decoy result: docs/evaluation.md.",
    ]
    path.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
