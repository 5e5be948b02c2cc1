"""Insertion / Deletion time divided by the time of the same number of plain forward passes, and by
quantus' PixelFlipping (the same deletion curve, numpy) on the same inputs, measured in one run.

    python benchmarks/metrics.py [--batch 8] [--size 224] [--steps 28]
    python benchmarks/metrics.py --references [--batch 4] [--size 64]

Each image needs steps + 1 forward passes; the reference is one batched no-grad forward pass over the
same number of images (batch x (steps + 1)), chunked like the metric. Goal (issue 5): at most 1.2.

`--references`: ROAD, Infidelity, MaxSensitivity, FaithfulnessCorrelation, Sparseness and Complexity
against their reference implementations (pytorch-grad-cam, captum, quantus) with the same model,
inputs, maps and numbers of draws, measured in one run. Goal (issue 18): at most 1.0 x the reference.

`--quantus`: every quantus-family metric of issue 26 against quantus 0.6 on the same work (model,
inputs, maps, steps, draws, explainer), measured in one run. Goal: at most 0.5 x quantus' time. Beside
each, the floor of each side: the model passes it ran (recorded by a forward hook: rows per pass, with or
without an input gradient), replayed alone on random inputs of the same shapes. "ours / our passes" is
lit-xai's overhead over its own passes; "our passes / quantus" is the best ratio any code running those
passes could reach. Each time is the best of at least `--repeats` runs that add up to `--min-seconds` (1 s).
    python benchmarks/metrics.py --quantus --threads 1 [--batch 8] [--size 16]   (its defaults: 8 images of 16 x 16)
`--quantus --resnet50`: the rows of one or two passes (Completeness, RandomLogit,
Sufficiency, Consistency; quantus 0.6 cannot shift a first layer without a bias for InputInvariance) on
the model users run, ResNet-50 at 224 px (random weights, 10 classes).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import torch
from torchvision.models import resnet18

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import best_time, machine  # noqa: E402

from lit_xai.metrics import Deletion, Insertion  # noqa: E402


def recorded_passes(model: torch.nn.Module, run: Callable[[], object]) -> list[tuple[tuple[int, ...], bool]]:
    """The model passes `run()` makes: (input shape, input needs a gradient) of each forward call."""
    calls: list[tuple[tuple[int, ...], bool]] = []

    def record(module: torch.nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
        calls.append((tuple(inputs[0].shape), torch.is_grad_enabled() and inputs[0].requires_grad))

    handle = model.register_forward_pre_hook(record)
    try:
        run()
    finally:
        handle.remove()
    return calls


def replay(model: torch.nn.Module, calls: list[tuple[tuple[int, ...], bool]]) -> Callable[[], None]:
    """The same passes alone on random inputs: forward, plus the input gradient where the call had one."""
    inputs = [(torch.rand(shape), grad) for shape, grad in calls]

    def run() -> None:
        for x, grad in inputs:
            if grad:
                x = x.clone().requires_grad_(True)
                torch.autograd.grad(model(x).sum(), x)
            else:
                with torch.no_grad():
                    model(x)

    return run


def ms(seconds: float) -> str:
    """Milliseconds to 3 significant figures at most (sub-millisecond rows keep their digits)."""
    return f"{seconds * 1000:.3g}" if seconds < 0.1 else f"{seconds * 1000:.0f}"


ONE_PASS_ROWS = ("Completeness", "RandomLogit", "Sufficiency", "Consistency")  # quantus 0.6 InputInvariance needs a first layer with a bias


def quantus_rows(args: argparse.Namespace) -> None:
    """Each issue-26 metric's time against quantus 0.6's on the same work (see the module docstring).
    SensitivityN and Focus are left out: quantus' SensitivityN does other work (one cumulative top-n
    removal per n instead of random subsets) and its Focus takes mosaics and their maps ready-made."""
    import numpy as np
    import quantus

    import lit_xai.metrics as ours
    from lit_xai.explainers import InputXGradient

    np.trapz = getattr(np, "trapz", np.trapezoid)  # quantus 0.6 calls np.trapz (removed in numpy 2.4)
    torch.manual_seed(0)
    size, batch = args.size, args.batch
    if args.resnet50:  # the model users run (random weights, 10 classes for RandomLogit's num_classes)
        from torchvision.models import resnet50

        model, channels, described = resnet50(num_classes=10).eval(), 3, "ResNet-50 (10 classes)"
    else:
        model, channels, described = torch.nn.Sequential(
            torch.nn.Conv2d(1, 16, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(16, 16, 3, padding=1), torch.nn.ReLU(),
            torch.nn.AdaptiveAvgPool2d(4), torch.nn.Flatten(), torch.nn.Linear(256, 10),
        ).eval(), 1, "a 2-conv CNN"
    inputs = torch.rand(batch, channels, size, size)
    targets = model(inputs).argmax(dim=1).detach()
    explainer = InputXGradient(reduce="sum")
    saliency = explainer(model, inputs, targets)
    masks = torch.zeros(batch, size, size, dtype=torch.bool)
    masks[:, size // 4 : 3 * size // 4, size // 4 : 3 * size // 4] = True

    def explain(model: torch.nn.Module, inputs: object, targets: object, **kwargs: object) -> object:
        return explainer(model, torch.as_tensor(inputs), torch.as_tensor(targets)).unsqueeze(1).detach().numpy()

    common = dict(model=model, x_batch=inputs.numpy(), y_batch=targets.numpy(), a_batch=saliency.unsqueeze(1).numpy(), device="cpu")
    quiet = dict(disable_warnings=True, display_progressbar=False)
    print(f"machine: {machine()}; {described}, {batch} images {channels} x {size} x {size}, Input x Gradient maps")
    print("| metric | settings | ours, ms | quantus, ms | ours / quantus | our passes alone, ms | quantus' passes alone, ms | ours / our passes | our passes / quantus |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    f = 4
    rows = [
        ("PixelFlipping", f"features_in_step {f}", ours.PixelFlipping(features_in_step=f), quantus.PixelFlipping(features_in_step=f, **quiet), {}),
        ("Selectivity", "patch_size 4", ours.Selectivity(patch_size=4), quantus.Selectivity(patch_size=4, **quiet), {}),
        ("FaithfulnessEstimate", f"features_in_step {f}", ours.FaithfulnessEstimate(features_in_step=f), quantus.FaithfulnessEstimate(features_in_step=f, **quiet), {}),
        ("Monotonicity", f"features_in_step {f}", ours.Monotonicity(features_in_step=f), quantus.Monotonicity(features_in_step=f, **quiet), {}),
        ("MonotonicityCorrelation", "features_in_step 16, 10 draws", ours.MonotonicityCorrelation(features_in_step=16, nr_samples=10),
         quantus.MonotonicityCorrelation(features_in_step=16, nr_samples=10, **quiet), {}),
        ("NonSensitivity", "features_in_step 1", ours.NonSensitivity(), quantus.NonSensitivity(**quiet), {}),
        ("IROF", "SLIC", ours.IROF(), quantus.IROF(return_aggregate=False, **quiet), {}),
        ("RegionPerturbation", "patch_size 4", ours.RegionPerturbation(patch_size=4), quantus.RegionPerturbation(patch_size=4, **quiet), {}),
        ("Completeness", "", ours.Completeness(), quantus.Completeness(**quiet), {}),
        ("EffectiveComplexity", "", ours.EffectiveComplexity(), quantus.EffectiveComplexity(**quiet), {}),
        ("AvgSensitivity", "20 draws", ours.AvgSensitivity(explainer=explainer, nr_samples=20), quantus.AvgSensitivity(nr_samples=20, **quiet), {"explain_func": explain}),
        ("LocalLipschitzEstimate", "20 draws", ours.LocalLipschitzEstimate(explainer=explainer, nr_samples=20),
         quantus.LocalLipschitzEstimate(nr_samples=20, **quiet), {"explain_func": explain}),
        ("Continuity", "8 steps", ours.Continuity(explainer=explainer, nr_steps=8), quantus.Continuity(nr_steps=8, **quiet), {"explain_func": explain}),
        ("RelativeInputStability", "20 draws", ours.RelativeInputStability(explainer=explainer, nr_samples=20),
         quantus.RelativeInputStability(nr_samples=20, **quiet), {"explain_func": explain}),
        ("RelativeOutputStability", "20 draws", ours.RelativeOutputStability(explainer=explainer, nr_samples=20),
         quantus.RelativeOutputStability(nr_samples=20, **quiet), {"explain_func": explain}),
        ("RelativeRepresentationStability", "20 draws, layer 5", ours.RelativeRepresentationStability(explainer=explainer, nr_samples=20, layer="5"),
         quantus.RelativeRepresentationStability(nr_samples=20, layer_names=["5"], **quiet), {"explain_func": explain}),
        ("RandomLogit", "num_classes 10", ours.RandomLogit(explainer=explainer, num_classes=10), quantus.RandomLogit(num_classes=10, **quiet), {"explain_func": explain}),
        ("EfficientMPRT", "", ours.EfficientMPRT(explainer=explainer), quantus.EfficientMPRT(**quiet), {"explain_func": explain}),
        ("InputInvariance", "", ours.InputInvariance(explainer=explainer), quantus.InputInvariance(**quiet), {"explain_func": explain}),
        ("SmoothMPRT", "5 noisy copies, fully randomised", ours.SmoothMPRT(explainer=explainer, nr_samples=5),
         quantus.SmoothMPRT(nr_samples=5, skip_layers=True, return_last_correlation=True, **quiet), {"explain_func": explain}),
        ("Sufficiency", "", ours.Sufficiency(), quantus.Sufficiency(**quiet), {}),
        ("Consistency", "", ours.Consistency(), quantus.Consistency(**quiet), {}),
    ]
    if args.resnet50:  # the rows of one or two passes; the step-walking rows take thousands of ResNet-50 passes at 224 px
        rows = [row for row in rows if row[0] in ONE_PASS_ROWS]
    print(f"lit-xai's chunks: {args.ours_chunk or 'automatic (lit_xai.chunking)'}; quantus: one pass per batch of {batch}")
    for name, settings, mine, theirs, extra in rows:
        if hasattr(mine, "internal_batch_size"):
            mine.internal_batch_size = args.ours_chunk
        ours_s = best_time(lambda: mine.update(model, inputs, saliency, targets), args.repeats, min_seconds=args.min_seconds)
        theirs_s = best_time(lambda: theirs(**common, **extra), args.repeats, min_seconds=args.min_seconds)
        our_floor = best_time(replay(model, recorded_passes(model, lambda: mine.update(model, inputs, saliency, targets))), args.repeats, min_seconds=args.min_seconds)
        their_floor = best_time(replay(model, recorded_passes(model, lambda: theirs(**common, **extra))), args.repeats, min_seconds=args.min_seconds)
        print(f"| {name} | {settings} | {ms(ours_s)} | {ms(theirs_s)} | {ours_s / theirs_s:.2f} | {ms(our_floor)} | "
              f"{ms(their_floor)} | {ours_s / our_floor:.2f} | {our_floor / theirs_s:.2f} |", flush=True)
    if args.resnet50:
        return
    s_batch = masks.unsqueeze(1).float().numpy()
    for name, mine, theirs in (
        ("AttributionLocalisation", ours.AttributionLocalisation(), quantus.AttributionLocalisation(**quiet)),
        ("TopKIntersection", ours.TopKIntersection(k=size * size // 4), quantus.TopKIntersection(k=size * size // 4, **quiet)),
        ("RelevanceRankAccuracy", ours.RelevanceRankAccuracy(), quantus.RelevanceRankAccuracy(**quiet)),
        ("RelevanceMassAccuracy", ours.RelevanceMassAccuracy(), quantus.RelevanceMassAccuracy(**quiet)),
        ("LocalisationAUC", ours.LocalisationAUC(), quantus.AUC(**quiet)),
    ):
        ours_s = best_time(lambda: mine.update(saliency, masks), args.repeats, min_seconds=args.min_seconds)
        theirs_s = best_time(lambda: theirs(**common, s_batch=s_batch), args.repeats, min_seconds=args.min_seconds)
        print(f"| {name} | masks | {ms(ours_s)} | {ms(theirs_s)} | {ours_s / theirs_s:.2f} | | | | |", flush=True)


def reference_rows(args: argparse.Namespace) -> None:
    """Each issue-18 metric's time against its reference's, same model, inputs, maps and draws."""
    import numpy as np
    import quantus
    from captum.metrics import infidelity, sensitivity_max
    from pytorch_grad_cam.metrics.road import ROADCombined as GradCamROADCombined
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputSoftmaxTarget

    from lit_xai.explainers import GradCAM
    from lit_xai.metrics import ROADCombined, Complexity, FaithfulnessCorrelation, Infidelity, MaxSensitivity, Sparseness

    torch.manual_seed(0)
    model = resnet18(num_classes=10).eval()
    inputs = torch.randn(args.batch, 3, args.size, args.size)
    targets = torch.arange(args.batch) % 10
    explainer = GradCAM(target_layer="layer3")
    saliency = torch.rand(args.batch, args.size, args.size)  # MaxSensitivity scores Grad-CAM's own maps
    x, y, a = inputs.numpy(), targets.numpy(), saliency.unsqueeze(1).numpy()
    print(f"machine: {machine()}; resnet18 (10 classes), {args.batch} images 3 x {args.size} x {args.size}, U(0, 1) maps")
    print("| metric | draws per image | ours, ms | reference | reference, ms | ours / reference |")
    print("| --- | ---: | ---: | --- | ---: | ---: |")

    def row(name: str, draws: int, ours: Callable[[], object], reference_name: str, reference: Callable[[], object]) -> None:
        mine, theirs = best_time(ours, args.repeats), best_time(reference, args.repeats)
        print(f"| {name} | {draws} | {mine * 1000:.0f} | {reference_name} | {theirs * 1000:.0f} | {mine / theirs:.2f} |", flush=True)

    def probabilities(batch: torch.Tensor) -> torch.Tensor:
        return torch.softmax(model(batch), dim=1)

    road = ROADCombined()
    grad_cam_targets = [ClassifierOutputSoftmaxTarget(int(t)) for t in targets]
    row("ROADCombined (9 percentiles x 2 orders)", 18, lambda: road.update(model, inputs, saliency, targets),
        "pytorch-grad-cam ROADCombined", lambda: GradCamROADCombined()(inputs, saliency.numpy(), grad_cam_targets, model))

    draws = 32
    ours_infidelity = Infidelity(samples=draws, internal_batch_size=args.chunk)

    def noise(batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pattern = torch.randn(batch.shape[0], 1, *batch.shape[2:]) * 0.1
        return pattern.expand_as(batch), batch - pattern * batch

    attributions = torch.zeros_like(inputs)
    attributions[:, 0] = saliency
    row("Infidelity (gaussian)", draws, lambda: ours_infidelity.update(model, inputs, saliency, targets), "captum infidelity",
        lambda: infidelity(probabilities, noise, inputs, attributions, target=targets, n_perturb_samples=draws,
                           max_examples_per_batch=args.chunk, normalize=True))

    draws = 8
    ours_sensitivity = MaxSensitivity(explainer, samples=draws, internal_batch_size=args.chunk)

    def explain(batch: torch.Tensor | tuple[torch.Tensor], target: torch.Tensor) -> tuple[torch.Tensor]:
        return (explainer(model, batch[0] if isinstance(batch, tuple) else batch, target),)

    row("MaxSensitivity (Grad-CAM, incl. its map of x)", draws,
        lambda: ours_sensitivity.update(model, inputs, explainer(model, inputs, targets), targets), "captum sensitivity_max",
        lambda: sensitivity_max(explain, inputs, n_perturb_samples=draws, max_examples_per_batch=args.chunk, target=targets))

    draws = 100
    ours_correlation = FaithfulnessCorrelation(subset=224, samples=draws, internal_batch_size=args.chunk)
    reference_correlation = quantus.FaithfulnessCorrelation(nr_runs=draws, subset_size=224, perturb_baseline=0.0,
                                                            return_aggregate=False, disable_warnings=True)
    row("FaithfulnessCorrelation (224 positions)", draws, lambda: ours_correlation.update(model, inputs, saliency, targets),
        "quantus FaithfulnessCorrelation",
        lambda: reference_correlation(model=model, x_batch=x, y_batch=y, a_batch=a, softmax=True, device="cpu", batch_size=args.batch))
    for metric, reference in ((Sparseness(), quantus.Sparseness(disable_warnings=True)), (Complexity(), quantus.Complexity(disable_warnings=True))):
        row(type(metric).__name__, 0, lambda: metric.update(model, inputs, saliency, targets), f"quantus {type(metric).__name__}",
            lambda: reference(model=model, x_batch=x, y_batch=y, a_batch=np.array(a), device="cpu"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batch", type=int, default=None, help="images (default 4; --quantus: 8)")
    parser.add_argument("--size", type=int, default=None, help="image side in pixels (default 112; --quantus: 16)")
    parser.add_argument("--steps", type=int, default=28)
    parser.add_argument("--chunk", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--min-seconds", type=float, default=1.0, help="--quantus: each timing repeats until its runs add up to this long")
    parser.add_argument("--references", action="store_true", help="the issue-18 metrics against their references")
    parser.add_argument("--quantus", action="store_true", help="the issue-26 metrics against quantus 0.6")
    parser.add_argument("--resnet50", action="store_true", help="--quantus: the rows of one or two passes on ResNet-50 (default 224 px)")
    parser.add_argument("--ours-chunk", type=int, default=None, help="--quantus: lit-xai's internal_batch_size (default: automatic)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (1 on a shared machine: steadier timings)")
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    if args.batch is None:  # --quantus: quantus loops over pixels, so small images by default
        args.batch = 8 if args.quantus else 4
    if args.size is None:
        args.size = 224 if args.resnet50 else 16 if args.quantus else 112
    if args.quantus:
        quantus_rows(args)
        return
    if args.references:
        reference_rows(args)
        return
    torch.manual_seed(0)
    model = resnet18(num_classes=1000).eval()
    inputs = torch.randn(args.batch, 3, args.size, args.size)
    saliency = torch.rand(args.batch, args.size, args.size)
    targets = torch.zeros(args.batch, dtype=torch.long)
    total = args.batch * (args.steps + 1)
    stacked = inputs.repeat(args.steps + 1, 1, 1, 1)

    def forwards() -> None:
        with torch.no_grad():
            for start in range(0, total, args.chunk):
                model(stacked[start : start + args.chunk])

    reference = best_time(forwards, args.repeats)
    print(f"machine: {machine()}; resnet18, {args.batch} images 3 x {args.size} x {args.size}, {args.steps} steps")
    print(f"{total} plain forward passes: {reference * 1000:.0f} ms")
    print("| metric | ms | / plain forward passes |")
    print("| --- | ---: | ---: |")
    timings = {}
    for metric in (Insertion(steps=args.steps, internal_batch_size=args.chunk), Deletion(steps=args.steps, internal_batch_size=args.chunk)):
        timings[type(metric).__name__] = best_time(lambda: metric.update(model, inputs, saliency, targets), args.repeats)
        print(f"| {type(metric).__name__} | {timings[type(metric).__name__] * 1000:.0f} | {timings[type(metric).__name__] / reference:.2f} |")
    try:
        import quantus
    except ImportError:
        print("(quantus is not installed: pip install quantus for the comparison)")
        return
    pixels = args.size * args.size
    flipping = quantus.PixelFlipping(
        features_in_step=pixels // args.steps, perturb_baseline="black", disable_warnings=True, return_auc_per_sample=False  # its AUC needs np.trapz, gone in numpy 2.4
    )
    x, y, a = inputs.numpy(), targets.numpy(), saliency.unsqueeze(1).numpy()
    seconds = best_time(lambda: flipping(model=model, x_batch=x, y_batch=y, a_batch=a, device="cpu", batch_size=args.chunk), args.repeats)
    print(f"| quantus PixelFlipping | {seconds * 1000:.0f} | {seconds / reference:.2f} |")
    print(f"Deletion / quantus PixelFlipping: {timings['Deletion'] / seconds:.2f}")


if __name__ == "__main__":
    main()
