"""Hyper Expected Grad-CAM (Buono & Akesson, "Towards gradient faithfulness and beyond", Halmstad University
2023, sections 4.7-4.8): a multi-stage explainer built on Expected Grad-CAM, stage by stage.

1. `stage_parameters`: inflation region, neighbourhood sizes and number of stages from the highly
   activated area of the Expected Grad-CAM map at the target layer.
2. `neighbourhood_boxes`, `explain_neighbourhoods`, `assemble_supermaps`: feature-dependency extraction;
   each neighbourhood is upscaled to the input's size, explained locally, and put back at its place.
3. `frequency_layers`, `high_pass`, `frequency_decomposition`: Expected Grad-CAM maps of the layers where
   the resolution changes (+ the ReLU after each), high frequencies re-injected from coarse to fine.
4. `fuse`: accumulation and fusion of the supermaps with the frequency-decomposition map.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lit_xai.checks import check_positive_int
from lit_xai.chunking import check_internal_batch_size, index_chunks
from lit_xai.explainers.base import Explainer
from lit_xai.explainers.cam.expected_gradcam import Baselines, ExpectedGradCAM
from lit_xai.explainers.expected_gradients import ALPHAS, BankActivationCache, expected_gradients_at_layers
from lit_xai.explainers.layers import get_layer, resolve_target_layer
from lit_xai.explainers.path_baselines import as_baseline_source
from lit_xai.targets import model_outputs

HIGH_PASSES = ("laplacian", "fft")


# ----------------------------------------------------------------------------------------------------------
# 1. Stage parameters


@dataclass
class StageParameters:
    """Per sample: `kernels` `(B, S)` neighbourhood side in layer cells at each stage (0 = stage unused),
    `stages` `(B,)` how many stages it uses, `area` `(B,)` its highly activated area in cells; `inflation`
    the input pixels per layer cell (IR, per axis)."""

    inflation: tuple[int, int]
    kernels: Tensor
    stages: Tensor
    area: Tensor


def inflation_region(input_size: Sequence[int], layer_size: Sequence[int]) -> tuple[int, int]:
    """IR^l_x = (x_h / l_h, x_w / l_w) (thesis eq. 62), rounded to whole pixels (at least 1)."""
    return tuple(max(1, int(round(x / l))) for x, l in zip(input_size, layer_size))  # type: ignore[return-value]


def stage_parameters(
    layer_map: Tensor, input_size: Sequence[int], threshold: float = 0.5, max_stages: int = 3, stages: Optional[int] = None
) -> StageParameters:
    """Stage parameters from an Expected Grad-CAM map `(B, h, w)` at the target layer.

    The highly activated region is the cells with map >= `threshold` * the sample's maximum (the whole map
    when it is zero); its area A (cells) gives the first neighbourhood, a square of side
    k_0 = ceil(sqrt(A)) cells (at most min(h, w)). Each stage halves it, k_s = max(1, k_0 // 2^s), so k_s
    is always a multiple of the inflation region in pixels. The number of stages is the number of
    halvings that still change the neighbourhood plus one, 1 + floor(log2 k_0), capped at `max_stages`
    (the thesis' "max number of boxes that fit the area" read as the scales that fit it; a 7 x 7 ResNet-50
    map at 224 px with a 4 x 4 activated region gives 3 stages, as the thesis found for 224 x 224); or
    exactly `stages` when given.
    """
    batch, layer = layer_map.shape[0], tuple(layer_map.shape[1:])
    peak = layer_map.flatten(1).amax(dim=1).view(-1, 1, 1)
    hot = torch.where(peak > 0, layer_map >= threshold * peak, torch.ones_like(layer_map, dtype=torch.bool))
    area = hot.flatten(1).sum(dim=1)
    first = torch.ceil(area.double().sqrt()).long().clamp(1, min(layer))
    if stages is None:
        count = (1 + torch.floor(torch.log2(first.double())).long()).clamp(1, max_stages)
        total = max_stages
    else:
        count = torch.full((batch,), stages, dtype=torch.long, device=layer_map.device)
        total = stages
    steps = torch.arange(total, device=layer_map.device)
    kernels = torch.clamp(first.view(-1, 1) // (2 ** steps).view(1, -1), min=1)
    kernels = torch.where(steps.view(1, -1) < count.view(-1, 1), kernels, 0)
    return StageParameters(inflation_region(input_size, layer), kernels, count, area)


# ----------------------------------------------------------------------------------------------------------
# 2. Feature-dependency extraction


def neighbourhood_boxes(input_size: Sequence[int], kernel: Sequence[int], stride: Sequence[int]) -> Tensor:
    """`(N, 4)` boxes (top, left, height, width) in pixels tiling the input with a `kernel` window at `stride`;
    the last window on each axis is moved back to end at the border, so every pixel is covered."""
    starts = []
    for size, k, s in zip(input_size, kernel, stride):
        k = min(k, size)
        axis = list(range(0, size - k + 1, s))
        if axis[-1] != size - k:
            axis.append(size - k)
        starts.append(torch.tensor(axis))
    top, left = torch.meshgrid(starts[0], starts[1], indexing="ij")
    k_h, k_w = (min(k, size) for k, size in zip(kernel, input_size))
    return torch.stack([top.flatten(), left.flatten(), torch.full_like(top.flatten(), k_h), torch.full_like(top.flatten(), k_w)], dim=1)


def box_grid(boxes: Tensor, source: Sequence[int], output: Sequence[int]) -> Tensor:
    """`grid_sample` grids `(N, *output, 2)` that read box (top, left, height, width) of a `source`-sized
    image, stretched to `output` (bilinear resizing with align_corners=False)."""
    boxes = boxes.to(torch.float32)
    axes = []
    for axis, (size, out) in enumerate(zip(source, output)):
        start, extent = boxes[:, axis].view(-1, 1), boxes[:, axis + 2].view(-1, 1)
        position = start + (torch.arange(out, device=boxes.device, dtype=torch.float32) + 0.5) * extent / out  # source pixels
        axes.append(2 * position / size - 1)
    rows, cols = axes
    return torch.stack(torch.broadcast_tensors(cols.view(-1, 1, output[1]), rows.view(-1, output[0], 1)), dim=-1)


def paste_grid(boxes: Tensor, local: Sequence[int], canvas: Sequence[int]) -> tuple[Tensor, Tensor]:
    """Grids `(N, *canvas, 2)` that read a `local`-sized map stretched over each box of the canvas, and the
    boxes' masks `(N, *canvas)`."""
    boxes = boxes.to(torch.float32)
    axes, inside = [], []
    for axis, size in enumerate(canvas):
        start, extent = boxes[:, axis].view(-1, 1), boxes[:, axis + 2].view(-1, 1)
        pixel = torch.arange(size, device=boxes.device, dtype=torch.float32).view(1, -1)
        axes.append(2 * (pixel - start + 0.5) / extent - 1)
        inside.append((pixel >= start) & (pixel < start + extent))
    rows, cols = axes
    grid = torch.stack(torch.broadcast_tensors(cols.view(-1, 1, canvas[1]), rows.view(-1, canvas[0], 1)), dim=-1)
    return grid, inside[0].view(-1, canvas[0], 1) & inside[1].view(-1, 1, canvas[1])


def crop_and_upscale(inputs: Tensor, sample: Tensor, boxes: Tensor) -> Tensor:
    """Each box of its sample, resized (bilinear) to the input's size: `(N, C, H, W)`."""
    size = tuple(inputs.shape[2:])
    grid = box_grid(boxes, size, size).to(inputs.dtype)
    return F.grid_sample(inputs[sample], grid, mode="bilinear", padding_mode="border", align_corners=False)


def explain_neighbourhoods(
    model: nn.Module,
    layer_name: str,
    inputs: Tensor,
    targets: Optional[Tensor],
    sample: Tensor,
    boxes: Tensor,
    egc: ExpectedGradCAM,
    internal_batch_size: Optional[int],
) -> Tensor:
    """Expected Grad-CAM layer maps `(N, h, w)` of the neighbourhoods (sample[i], boxes[i]), each presented to
    the model at the input's own size. The crops are made a chunk at a time (`lit_xai.chunking`: as many
    as one pass takes, so memory holds one chunk of crops), and each chunk is one Expected Grad-CAM
    evaluation whose path points are chunked by `internal_batch_size` (None: automatically, for all of the
    chunk's crops together rather than crop by crop)."""
    maps = []
    like = inputs[:1]
    egc.internal_batch_size = internal_batch_size
    for chunk in index_chunks(len(sample), internal_batch_size, like, inputs.shape[0]):
        crops = crop_and_upscale(inputs, sample[chunk], boxes[chunk])
        maps.append(egc.layer_map(model, layer_name, crops, None if targets is None else targets[sample[chunk]]).detach())
    return torch.cat(maps)


def assemble_supermaps(local_maps: Tensor, slot: Tensor, boxes: Tensor, slots: int, size: Sequence[int]) -> Tensor:
    """Supermaps `(slots, H, W)`: each local map stretched (bilinear) over its box and put in its slot
    (sample x stage); where boxes overlap their values are averaged."""
    grid, inside = paste_grid(boxes, tuple(local_maps.shape[1:]), size)
    pasted = F.grid_sample(local_maps.unsqueeze(1), grid.to(local_maps.dtype), mode="bilinear", padding_mode="border", align_corners=False)
    pasted = pasted.squeeze(1) * inside
    sums = local_maps.new_zeros((slots, *size)).index_add_(0, slot, pasted)
    counts = local_maps.new_zeros((slots, *size)).index_add_(0, slot, inside.to(local_maps.dtype))
    return sums / counts.clamp_min(1)


def feature_dependency_supermaps(
    model: nn.Module,
    layer_name: str,
    inputs: Tensor,
    targets: Optional[Tensor],
    parameters: StageParameters,
    egc: ExpectedGradCAM,
    stride: Optional[int],
    internal_batch_size: Optional[int],
) -> Tensor:
    """Stage 2 for every sample and stage at once: supermaps `(B, S, H, W)` (zero for unused stages).
    Neighbourhoods are k_s x IR pixels at a stride of (`stride` or k_s) x IR, all stages batched together."""
    size = tuple(inputs.shape[2:])
    batch, total = parameters.kernels.shape
    ir = parameters.inflation
    samples, slots, all_boxes = [], [], []
    for b in range(batch):
        for s in range(total):
            cells = int(parameters.kernels[b, s])
            if cells == 0:
                continue
            step = cells if stride is None else stride
            boxes = neighbourhood_boxes(size, (cells * ir[0], cells * ir[1]), (step * ir[0], step * ir[1]))
            all_boxes.append(boxes)
            samples.append(torch.full((len(boxes),), b))
            slots.append(torch.full((len(boxes),), b * total + s))
    boxes = torch.cat(all_boxes).to(inputs.device)
    sample, slot = torch.cat(samples).to(inputs.device), torch.cat(slots).to(inputs.device)
    local = explain_neighbourhoods(model, layer_name, inputs, targets, sample, boxes, egc, internal_batch_size)
    return assemble_supermaps(local, slot, boxes, batch * total, size).view(batch, total, *size)


# ----------------------------------------------------------------------------------------------------------
# 3. Frequency decomposition


def frequency_layers(model: nn.Module, inputs: Tensor, target_layer: str) -> list[str]:
    """The "1 + 1" policy: leaf layers that run before `target_layer` (and are not inside it) whose output's
    spatial size differs from their input's, each followed by the next layer to run when it is a ReLU;
    shallow to deep. Layers that run more than once per forward pass (shared modules) are skipped. The
    choice depends on the model and the input's shape only, so one sample of `inputs` is run through it."""
    get_layer(model, target_layer)
    events: list[tuple[str, nn.Module, tuple[int, ...] | None, tuple[int, ...] | None]] = []

    def record(name: str, module: nn.Module, args: tuple, output: object) -> None:
        first = args[0] if args and isinstance(args[0], Tensor) else None
        spatial_in = tuple(first.shape[2:]) if first is not None and first.ndim == inputs.ndim else None
        spatial_out = tuple(output.shape[2:]) if isinstance(output, Tensor) and output.ndim == inputs.ndim else None
        events.append((name, module, spatial_in, spatial_out))

    with ExitStack() as stack, torch.no_grad():
        for name, module in model.named_modules():
            if name and (name == target_layer or not any(True for _ in module.children())):
                hook = module.register_forward_hook(lambda m, a, o, name=name: record(name, m, a, o))
                stack.callback(hook.remove)
        model_outputs(model, inputs[:1])
    runs: dict[str, int] = {}
    for name, *_ in events:
        runs[name] = runs.get(name, 0) + 1
    order = [event for event in events if runs[event[0]] == 1]
    end = next((i for i, event in enumerate(order) if event[0] == target_layer), len(order))
    before = [e for e in order[:end] if not e[0].startswith(target_layer + ".")]
    chosen: list[str] = []
    for i, (name, module, spatial_in, spatial_out) in enumerate(before):
        if spatial_in is not None and spatial_out is not None and spatial_in != spatial_out:
            chosen.append(name)
            if i + 1 < len(before) and isinstance(before[i + 1][1], nn.ReLU):
                chosen.append(before[i + 1][0])
    return chosen


def gaussian_blur(maps: Tensor, sigma: float) -> Tensor:
    """Separable Gaussian blur of `(B, h, w)` maps (reflect padding where the map allows it, else replicate)."""
    radius = max(1, int(math.ceil(3 * sigma)))
    offsets = torch.arange(-radius, radius + 1, dtype=maps.dtype, device=maps.device)
    kernel = torch.exp(-(offsets**2) / (2 * sigma**2))
    kernel = kernel / kernel.sum()
    out = maps.unsqueeze(1)
    for axis in (2, 3):
        size = out.shape[axis]
        pad = (0, 0, radius, radius) if axis == 2 else (radius, radius, 0, 0)
        out = F.pad(out, pad, mode="reflect" if radius < size else "replicate")
        weight = kernel.view(1, 1, -1, 1) if axis == 2 else kernel.view(1, 1, 1, -1)
        out = F.conv2d(out, weight)
    return out.squeeze(1)


def high_pass(maps: Tensor, rate: float, kind: str = "laplacian", cutoff: float = 0.5) -> Tensor:
    """The high frequencies of `(B, h, w)` maps above f_c = cutoff / (2 rate) cycles per position, i.e. `cutoff`
    times the band limit of a map `rate` times coarser (the inter-layer inflation rate):

    * "laplacian": M - G_sigma * M (a Laplacian-pyramid level), sigma = sqrt(ln 2 / 2) / (pi f_c), the
      Gaussian whose response is 1/2 at f_c;
    * "fft": an ideal high-pass, M with the FFT coefficients of radial frequency < f_c removed.
    """
    cut = cutoff / (2 * rate)
    if kind == "laplacian":
        return maps - gaussian_blur(maps, math.sqrt(math.log(2) / 2) / (math.pi * cut))
    if kind == "fft":
        fy = torch.fft.fftfreq(maps.shape[1], device=maps.device, dtype=maps.dtype).view(-1, 1)
        fx = torch.fft.fftfreq(maps.shape[2], device=maps.device, dtype=maps.dtype).view(1, -1)
        keep = (fy**2 + fx**2).sqrt() >= cut
        return torch.fft.ifft2(torch.fft.fft2(maps) * keep).real
    raise ValueError(f"high_pass must be one of {HIGH_PASSES}, got {kind!r}")


def normalised(maps: Tensor) -> Tensor:
    """Each map divided by its maximum (a zero map stays zero)."""
    peak = maps.flatten(1).amax(dim=1).view(-1, *(1,) * (maps.ndim - 1))
    return torch.where(peak > 0, maps / torch.where(peak > 0, peak, 1), 0)


def frequency_decomposition(maps: Sequence[Tensor], kind: str = "laplacian", cutoff: float = 0.5) -> Tensor:
    """Maps `(B, h_l, w_l)` ordered shallow (finest) to deep (coarsest, the target layer) -> one map at the
    finest resolution. Each map is normalised by its maximum; from the coarsest, the running map R is
    upsampled (bilinear) to the next finer layer and that layer's high frequencies are re-injected,

        R <- up(R) + high_pass(M_l, rate = size_l / size_R),

    then ReLU (the map is >= 0)."""
    running = normalised(maps[-1])
    for layer_map in reversed(maps[:-1]):
        size = tuple(layer_map.shape[1:])
        rate = math.sqrt(math.prod(size) / math.prod(running.shape[1:]))
        if tuple(running.shape[1:]) != size:
            running = F.interpolate(running.unsqueeze(1), size=size, mode="bilinear", align_corners=False).squeeze(1)
        running = running + high_pass(normalised(layer_map), max(rate, 1.0), kind, cutoff)
    return torch.relu(running)


# ----------------------------------------------------------------------------------------------------------
# 4. Accumulation and fusion


def fuse(supermaps: Tensor, stages: Tensor, frequency_map: Tensor) -> Tensor:
    """`(B, S, H, W)` supermaps (coarsest neighbourhood first; stage s used when s < stages[b]) and the
    frequency-decomposition map `(B, H, W)` -> the Hyper Expected Grad-CAM map `(B, H, W)`:

        accumulated = normalise(sum_s S_s)   (added finer to coarser),   product = prod_s normalise(S_s),
        map = accumulated * product * frequency_map.
    """
    used = (torch.arange(supermaps.shape[1], device=supermaps.device).view(1, -1) < stages.view(-1, 1)).view(*stages.shape, -1, 1, 1)
    accumulated = normalised(torch.flip(supermaps * used, dims=(1,)).sum(dim=1))
    factors = torch.where(used, normalised(supermaps.flatten(0, 1)).view_as(supermaps), 1.0)
    return accumulated * factors.prod(dim=1) * frequency_map


# ----------------------------------------------------------------------------------------------------------


class HyperExpectedGradCAM(Explainer):
    """Hyper Expected Grad-CAM (Buono & Akesson, "Towards gradient faithfulness and beyond", Halmstad
    University 2023, section 4.8): Expected Grad-CAM (thesis 4.3) at several scales and layers, fused.

    With E_l(x) the Expected Grad-CAM map of layer l (target layer L), IR = input size / layer size:
      1. stage parameters from E_L(x): first neighbourhood k_0 = ceil(sqrt(area of E_L >= threshold * max))
         cells, halved each stage (k_s = k_0 // 2^s), 1 + floor(log2 k_0) stages, at most `max_stages`;
      2. stage s: every neighbourhood of k_s x IR pixels at a stride of (`stride` or k_s) x IR is upscaled to
         the input's size (so the model sees its usual resolution), explained by E_L, and its map is put
         back over its neighbourhood: supermap S_s (overlaps averaged);
      3. frequency map F: E_l for the layers before L where the spatial size changes plus the ReLU after
         each ("1 + 1"), and E_L; from the coarsest, R <- up(R) + high_pass(E_l / max E_l), cut-off
         `cutoff` / (2 * inter-layer inflation rate), upsampled to the input, ReLU;
      4. H = normalise(sum_s S_s) * prod_s normalise(S_s) * F, rescaled by max E_L(x), so the map is in
         the units of the target layer's Expected Grad-CAM.

    Choices where the thesis is open (each a parameter): the activated area's `threshold` (0.5 of the
    maximum); the number of stages as the number of halvings of k_0 (`max_stages`, or fixed `stages`);
    non-overlapping neighbourhoods (`stride=None`; an int gives the stride in cells); bilinear resizing
    of the neighbourhoods and of their maps; the layers of step 3 found automatically (`frequency_layers`
    None; a list names them, [] uses the target layer only); per-layer max normalisation before the
    high-pass; the filter (`high_pass` "laplacian" or "fft") and its cut-off (`cutoff`); normalisation by
    the maximum in step 4.

    Args:
        target_layer: as for Expected Grad-CAM.   baselines, draws, alphas, noise_std, seed: Expected
            Grad-CAM's (each neighbourhood and layer map uses `draws` draws, seeded per neighbourhood).
        internal_batch_size: path points per forward pass (and neighbourhoods cropped at a time); None =
            automatic (`lit_xai.chunking`).

    Cost: one Expected Grad-CAM evaluation shared by the frequency layers and the target layer (the same
    path points, one forward pass per chunk capturing every layer, one backward pass to the shallowest),
    then one Expected Grad-CAM of the target layer over all neighbourhoods (N crops x `draws` path points,
    batched across samples and stages): about (draws + 1) x (B + N) passes of an image.
    """

    def __init__(
        self,
        target_layer: Optional[str] = None,
        baselines: Baselines = None,
        draws: int = 16,
        alphas: str = "uniform",
        noise_std: float = 0.0,
        seed: int = 0,
        threshold: float = 0.5,
        max_stages: int = 3,
        stages: Optional[int] = None,
        stride: Optional[int] = None,
        frequency_layers: Optional[list[str]] = None,
        high_pass: str = "laplacian",
        cutoff: float = 0.5,
        internal_batch_size: Optional[int] = None,
    ) -> None:
        check_positive_int(draws, "draws")
        check_positive_int(max_stages, "max_stages")
        if stages is not None:
            check_positive_int(stages, "stages")
        if stride is not None:
            check_positive_int(stride, "stride")
        if alphas not in ALPHAS:
            raise ValueError(f"alphas must be one of {ALPHAS}, got {alphas!r}")
        if not 0 < threshold <= 1:
            raise ValueError(f"threshold must be in (0, 1] (a fraction of the map's maximum), got {threshold!r}")
        if high_pass not in HIGH_PASSES:
            raise ValueError(f"high_pass must be one of {HIGH_PASSES}, got {high_pass!r}")
        if not cutoff > 0:
            raise ValueError(f"cutoff must be > 0 (a fraction of the coarser map's band limit), got {cutoff!r}")
        self.target_layer, self.baselines = target_layer, baselines
        self.draws, self.alphas, self.noise_std, self.seed = draws, alphas, noise_std, seed
        self.threshold, self.max_stages, self.stages, self.stride = threshold, max_stages, stages, stride
        self.frequency_layers, self.high_pass, self.cutoff = frequency_layers, high_pass, cutoff
        self.internal_batch_size = check_internal_batch_size(internal_batch_size)
        # the bank's activations (at every layer of the shared evaluation; at the target layer for the
        # neighbourhoods), recomputed only when the model, the bank or the layers change
        self._layer_cache, self._neighbourhood_cache = BankActivationCache(), BankActivationCache()
        self._frequency_key: Optional[tuple] = None
        self._frequency_names: list[str] = []

    def expected_gradcam(self, layer: str) -> ExpectedGradCAM:
        return ExpectedGradCAM(
            layer, "none", self.baselines, self.draws, 1, self.alphas, self.noise_std, internal_batch_size=self.internal_batch_size, seed=self.seed
        )

    def explain(self, model: nn.Module, inputs: Tensor, targets: Optional[Tensor]) -> Tensor:
        if inputs.ndim != 4:
            raise ValueError(f"HyperExpectedGradCAM explains images (B, C, H, W), got inputs of shape {tuple(inputs.shape)}")
        layer_name = resolve_target_layer(model, self.target_layer)
        size = tuple(inputs.shape[2:])
        names = self.frequency_layers if self.frequency_layers is not None else self.found_frequency_layers(model, inputs, layer_name)
        layer_maps, targets = self.layer_maps(model, [*(name for name in names if name != layer_name), layer_name], inputs, targets)
        target_map = layer_maps[-1]
        parameters = stage_parameters(target_map, size, self.threshold, self.max_stages, self.stages)
        egc = self.expected_gradcam(layer_name)
        egc._cache = self._neighbourhood_cache  # the bank's target-layer activations, kept between calls
        supermaps = feature_dependency_supermaps(model, layer_name, inputs, targets, parameters, egc, self.stride, self.internal_batch_size)
        frequency = frequency_decomposition(layer_maps, self.high_pass, self.cutoff)
        frequency = F.interpolate(frequency.unsqueeze(1), size=size, mode="bilinear", align_corners=False).squeeze(1).clamp_min(0)
        peak = target_map.flatten(1).amax(dim=1).view(-1, 1, 1)
        return fuse(supermaps, parameters.stages, frequency) * peak

    def found_frequency_layers(self, model: nn.Module, inputs: Tensor, layer_name: str) -> list[str]:
        """`frequency_layers`, found by one forward pass the first time and kept for the same model structure
        (the same module objects), target layer and input shape."""
        key = (id(model), tuple(id(module) for module in model.modules()), layer_name, tuple(inputs.shape[1:]), inputs.dtype)
        if self._frequency_key != key:
            self._frequency_names, self._frequency_key = frequency_layers(model, inputs, layer_name), key
        return list(self._frequency_names)

    def layer_maps(self, model: nn.Module, layers: Sequence[str], inputs: Tensor, targets: Optional[Tensor]) -> tuple[list[Tensor], Optional[Tensor]]:
        """Expected Grad-CAM of each layer at its resolution `[(B, h_l, w_l)]` (layers shallow to deep) from one
        shared evaluation (`expected_gradients_at_layers`: the same path points, one forward pass per chunk
        capturing every layer, one backward pass to the shallowest), and the targets it resolved."""
        egc = self.expected_gradcam(layers[-1])
        results = expected_gradients_at_layers(
            model, layers, inputs, targets, as_baseline_source(self.baselines), self.draws, 1, self.alphas, self.noise_std,
            self.seed, self.internal_batch_size, cache=self._layer_cache,
        )
        return [egc.group_maps(result).detach() for result in results], results[-1].targets
