"""Spectral-residual saliency (Hou & Zhang, CVPR 2007): a model-free, image-only baseline.

Three presets: the paper's text ("paper"), the authors' MATLAB code ("matlab") and OpenCV's
`cv2.saliency.StaticSaliencySpectralResidual` ("opencv"); see `SpectralResidualSaliency`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lit_xai.explainers.base import Explainer
from lit_xai.explainers.upsample import upsample
from lit_xai.filters import gaussian_kernel

LOG_EPS = 1e-12
"""Added to the amplitude before the logarithm ("paper", "matlab"), so that zero Fourier coefficients stay finite."""

GAUSSIAN_TRUNCATE = 4.0
"""The "paper" Gaussian has radius `int(4 * sigma + 0.5)` (scipy.ndimage's default truncation)."""

MATLAB_GREY = (0.298936021293775, 0.587043074451121, 0.114020904255103)
"""MATLAB's `rgb2gray` weights of R, G, B."""

OPENCV_GREY = (0.299, 0.587, 0.114)
"""OpenCV's `COLOR_BGR2GRAY` weights of R, G, B (ITU-R BT.601)."""

BORDERS = ("reflect", "reflect101", "replicate", "zeros")


@dataclass(frozen=True)
class Preset:
    """How one source computes the map (see `SpectralResidualSaliency` for what each field means)."""

    grey: tuple[float, float, float] | None  # weights of R, G, B for 3-channel images; None: channel mean
    working: str  # "longer" (longer side = width, aspect kept), "columns" (columns = width), "square"
    resample: str  # "bilinear-aa", "bicubic-aa", "bilinear"
    log_offset: float  # L = log(|F| + log_offset)
    mean_border: str
    sigma: float
    kernel_size: int | None  # None: 2 * int(4 sigma + 0.5) + 1
    gaussian_border: str
    blur_before_square: bool
    divide_by_max: bool


PRESETS: dict[str, Preset] = {
    "paper": Preset(None, "longer", "bilinear-aa", LOG_EPS, "reflect", 8.0, None, "reflect", False, False),
    "matlab": Preset(MATLAB_GREY, "columns", "bicubic-aa", LOG_EPS, "replicate", 2.5, 10, "zeros", False, False),
    "opencv": Preset(OPENCV_GREY, "square", "bilinear", 1.0, "reflect101", 8.0, 5, "reflect101", True, True),
}


def working_size(spatial: tuple[int, ...], width: int, rule: str = "longer") -> tuple[int, ...]:
    """The size the grey input is resampled to; a time series always gets `(width,)`.

    "longer": the longer side becomes `width`, the aspect ratio is kept, the shorter side is
    `max(1, floor(side * width / longer + 0.5))`. "columns": the number of columns becomes `width` and the
    rows `ceil(rows * width / columns)` (MATLAB's `imresize(I, width / columns)`). "square": `(width, width)`.
    """
    if len(spatial) == 1 or rule == "square":
        return (width,) * len(spatial)
    if rule == "columns":
        rows, columns = spatial
        return (-(-rows * width // columns), width)
    longer = max(spatial)
    return tuple(max(1, math.floor(side * width / longer + 0.5)) for side in spatial)


def reflect_index(index: Tensor, size: int) -> Tensor:
    """Map any integer index into `[0, size)` by half-sample symmetric reflection (`d c b a | a b c d | d c b a`).

    The same border as scipy.ndimage's mode "reflect" and numpy.pad's mode "symmetric", valid for pads
    longer than the axis (the extension has period `2 * size`).
    """
    index = torch.remainder(index, 2 * size)
    return torch.where(index >= size, 2 * size - 1 - index, index)


def reflect101_index(index: Tensor, size: int) -> Tensor:
    """Map any integer index into `[0, size)` by whole-sample reflection (`d c b | a b c d | c b a`), OpenCV's
    BORDER_REFLECT_101 (its BORDER_DEFAULT), for pads of any length (period `2 * size - 2`)."""
    if size == 1:
        return torch.zeros_like(index)
    index = torch.remainder(index, 2 * size - 2)
    return torch.where(index >= size, 2 * size - 2 - index, index)


def filter_matrix(kernel: Tensor, size: int, border: str = "reflect") -> Tensor:
    """The `(size, size)` matrix M with `(M @ x)_i = sum_k kernel_k x(i + k - a)`, `a = (len(kernel) - 1) // 2`.

    For an odd kernel `a` is its centre; an even one has one more tap after the output position than before
    it (MATLAB's `imfilter` anchor, `floor((n + 1) / 2)` counted from 1). Positions outside `[0, size)` are
    read through `border`: "reflect" (half-sample symmetric, scipy.ndimage "reflect"), "reflect101" (OpenCV's
    default), "replicate" (the edge value) or "zeros". Filtering an axis by a matrix product handles every
    axis length (even one shorter than the kernel) and batches without a Python loop over samples.
    """
    if border not in BORDERS:
        raise ValueError(f"border must be one of {BORDERS}, got {border!r}")
    anchor = (kernel.numel() - 1) // 2
    offsets = torch.arange(kernel.numel(), device=kernel.device) - anchor
    positions = torch.arange(size, device=kernel.device)[:, None] + offsets[None, :]
    weights = kernel.expand(size, -1)
    if border == "reflect":
        sources = reflect_index(positions, size)
    elif border == "reflect101":
        sources = reflect101_index(positions, size)
    else:
        sources = positions.clamp(0, size - 1)
        if border == "zeros":
            weights = torch.where((positions >= 0) & (positions < size), weights, torch.zeros_like(weights))
    matrix = torch.zeros(size, size, dtype=kernel.dtype, device=kernel.device)
    rows = torch.arange(size, device=kernel.device)[:, None].expand_as(sources)
    return matrix.index_put_((rows, sources), weights, accumulate=True)


def separable_filter(maps: Tensor, kernel: Tensor, border: str = "reflect") -> Tensor:
    """Filter `(B, H, W)` or `(B, T)` maps along every spatial axis with the same 1-D kernel (`filter_matrix`)."""
    if maps.ndim == 2:
        return maps @ filter_matrix(kernel, maps.shape[1], border).T
    rows, cols = filter_matrix(kernel, maps.shape[1], border), filter_matrix(kernel, maps.shape[2], border)
    return rows @ maps @ cols.T


def resample(maps: Tensor, size: tuple[int, ...], method: str = "bilinear-aa") -> Tensor:
    """Resize `(B, *spatial)` maps, half-pixel centres (align_corners=False). A series is resized as a `(1, T)` image.

    "bilinear-aa": bilinear (linear for series), antialiased when shrinking (torch's `antialias=True`: a
    triangle filter stretched by the shrink factor, as PIL; plain bilinear when enlarging). "bicubic-aa":
    torch's antialiased bicubic (Keys' cubic with a = -0.5, MATLAB's `imresize` kernel, stretched by the
    shrink factor). "bilinear": plain bilinear without antialiasing, OpenCV's `INTER_LINEAR`.
    """
    if tuple(maps.shape[1:]) == tuple(size):
        return maps
    images = maps.unsqueeze(1) if maps.ndim == 3 else maps[:, None, None, :]
    target = tuple(size) if maps.ndim == 3 else (1, size[0])
    mode = "bicubic" if method == "bicubic-aa" else "bilinear"
    resized = F.interpolate(images, size=target, mode=mode, align_corners=False, antialias=method != "bilinear")
    return resized.squeeze(1) if maps.ndim == 3 else resized[:, 0, 0, :]


def grey_values(inputs: Tensor, weights: tuple[float, float, float] | None) -> Tensor:
    """`(B, *spatial)`: the weighted sum of R, G, B for 3-channel images when `weights` is given (channels in
    torch's RGB order), otherwise (and for time series or other channel counts) the channel mean."""
    if weights is None or inputs.ndim != 4 or inputs.shape[1] != 3:
        return inputs.mean(dim=1)
    return torch.einsum("bchw,c->bhw", inputs, torch.tensor(weights, dtype=inputs.dtype, device=inputs.device))


class SpectralResidualSaliency(Explainer):
    """Spectral-residual saliency (Hou & Zhang, "Saliency Detection: A Spectral Residual Approach", CVPR 2007).

    A model-free baseline: the map depends on the input only (the model and targets are ignored). With
    `I` the grey input resampled to a small working size (`width` = 64 px),

        F = FFT(I),  L = log(|F| + e),  R = L - h_n * L,  Z = IFFT(exp(R + i angle(F))),
        S = g * |Z|^2            ("paper", "matlab")        S = (g * |Z|)^2 / max   ("opencv")

    then S is resized back to the input's size (bilinear, align_corners=False). `h_n` is the n x n mean
    filter (`n = mean_filter`, 3 in every source), `g` a Gaussian of standard deviation `sigma` in
    working-resolution pixels. The log amplitude of natural images is locally smooth (about 1/f); what the
    local mean does not predict (the residual R) is kept, with the original phase, and transformed back:
    regions that break the image's statistical regularity light up.

    `preset` picks the source the details come from (`sigma` and `kernel_size` override its Gaussian):

    | | "paper" (default) | "matlab" | "opencv" |
    | --- | --- | --- | --- |
    | source | the paper's text | the authors' MATLAB code | `cv2.saliency.StaticSaliencySpectralResidual` |
    | grey (3-channel images) | channel mean | `rgb2gray`: .2989 R + .5870 G + .1140 B | `BGR2GRAY`: .299 R + .587 G + .114 B |
    | working size | longer side 64, aspect kept | 64 columns, `ceil(rows * 64 / cols)` rows | 64 x 64, aspect not kept |
    | resampling in | bilinear, antialiased | bicubic (a = -0.5), antialiased | bilinear (`INTER_LINEAR`), no antialiasing |
    | e in log(abs(F) + e) | 1e-12 | 1e-12 (the code has none) | 1 |
    | mean filter border | half-sample symmetric | replicate | reflect-101 |
    | Gaussian | sigma 8, radius int(4 sigma + 0.5) | 10 x 10, sigma 2.5 | 5 x 5, sigma 8 |
    | Gaussian border | half-sample symmetric | zeros (`imfilter`'s default) | reflect-101 |
    | order | square, then blur | square, then blur | blur the magnitude, then square |
    | scale | raw | raw (the code's `mat2gray` is left to display) | divided by its maximum, as OpenCV |

    Shared conventions: the unshifted 2-D (or 1-D) DFT of the working image (DC at index 0; the mean filter
    runs on it in that layout), no windowing, no mean removal; an even-sized kernel has one more tap after
    the output position than before it (MATLAB's anchor); the resize back is bilinear, align_corners=False,
    without antialiasing (OpenCV's `INTER_LINEAR`). Other channel counts (and every time series) are
    reduced by the channel mean. Arithmetic is in float64 (float32 on devices without it): the residual
    amplifies the relative error of small Fourier coefficients. The output is float32 and `>= 0`.

    Faithfulness: "opencv" computes OpenCV's algorithm (staticSaliencySpectralResidual.cpp) step for step:
    its `INTER_LINEAR` resize of float images is torch's bilinear with align_corners=False and no
    antialiasing, and its unscaled inverse DFT only changes S by a constant, which the division by the
    maximum removes. On float photographs it equals OpenCV's map to ~4e-5 (on maps whose maximum is ~1):
    OpenCV's `cartToPolar` takes the phase with a fast atan approximation (errors up to 1.6e-4 rad), this
    code exactly. OpenCV given uint8 images also rounds the grey and resized images to integers. "matlab" follows the published MATLAB lines
    (`imresize(I, 64 / size(I, 2))`, `fspecial('average', 3)` with 'replicate', `fspecial('gaussian',
    [10, 10], 2.5)`), but torch's antialiased bicubic renormalises its weights at the image border where
    MATLAB mirrors the image, and MATLAB resizes the rows by the same scale as the columns, where here
    rows are scaled by the ratio of their sizes (a difference below one working pixel). "paper": sigma = 8
    on the 64 px map as the paper states; its other choices are the paper's text read literally.

    Time series `(B, C, T)`: the 1-D analogue, the channel mean resampled to `width` samples (linear or
    cubic), 1-D FFT, mean filter of `mean_filter` samples, 1-D Gaussian, linear resampling back to `T`.
    `mean_filter = 1` gives R = 0, i.e. the phase-only transform (Guo et al., 2008).

    Limits (of the method, kept as published): with e = 1e-12 an exact zero of the spectrum (log amplitude
    log(1e-12) = -27.6) lifts the residual of each neighbour by (its log amplitude + 27.6) / 9 per zero tap,
    and those frequencies dominate the map. Natural or noisy images have none, but synthetic ones can: an
    even-sized square on a constant background has a zero row and column at the Nyquist frequency (residual
    up to 13.7 there; the map then peaks far from the square); a smooth background, noise or an odd size
    removes them ("opencv"'s e = 1 does not have this problem). A perfectly periodic texture is not
    suppressed either: its isolated spectral peaks only shrink from A to about A^(8/9) under a 3 x 3 mean,
    so an odd patch in it barely stands out. The "paper" and "matlab" maps are invariant (up to the 1e-12)
    to a positive rescaling of the input: log|cF| - h * log|cF| = R; "opencv"'s log(|F| + 1) is not.
    """

    def __init__(
        self,
        width: int = 64,
        mean_filter: int = 3,
        sigma: float | None = None,
        preset: str = "paper",
        kernel_size: int | None = None,
    ) -> None:
        if preset not in PRESETS:
            raise ValueError(
                f"preset must be one of {tuple(PRESETS)} (the paper's text, the authors' MATLAB code, OpenCV's "
                f"StaticSaliencySpectralResidual), got {preset!r}"
            )
        if isinstance(width, bool) or not isinstance(width, int) or width < 8:
            raise ValueError(f"width must be an integer >= 8 (the working resolution in pixels, 64 in the paper), got {width!r}")
        if isinstance(mean_filter, bool) or not isinstance(mean_filter, int) or mean_filter < 1 or mean_filter % 2 == 0:
            raise ValueError(f"mean_filter must be an odd positive integer (taps of the centred mean filter, 3 in the paper), got {mean_filter!r}")
        if mean_filter > width:
            raise ValueError(f"mean_filter ({mean_filter}) must not be longer than width ({width})")
        if sigma is not None and (isinstance(sigma, bool) or not isinstance(sigma, (int, float)) or not math.isfinite(sigma) or sigma <= 0):
            raise ValueError(
                f"sigma must be None (the preset's) or a finite number > 0 (Gaussian std in working-resolution pixels, "
                f"8 in the paper), got {sigma!r}"
            )
        if kernel_size is not None and (isinstance(kernel_size, bool) or not isinstance(kernel_size, int) or kernel_size < 1):
            raise ValueError(f"kernel_size must be None (the preset's) or a positive integer (Gaussian taps per axis), got {kernel_size!r}")
        self.width = width
        self.mean_filter = mean_filter
        self.preset = preset
        self.sigma = float(sigma) if sigma is not None else PRESETS[preset].sigma
        self.kernel_size = kernel_size if kernel_size is not None else PRESETS[preset].kernel_size

    def explain(self, model: nn.Module, inputs: Tensor, targets: Tensor | None) -> Tensor:
        preset = PRESETS[self.preset]
        spatial = tuple(inputs.shape[2:])
        dtype = torch.float32 if inputs.device.type == "mps" else torch.float64
        grey = grey_values(inputs.detach().to(dtype), preset.grey)
        work = resample(grey, working_size(spatial, self.width, preset.working), preset.resample)
        dims = tuple(range(1, work.ndim))
        spectrum = torch.fft.fftn(work, dim=dims)
        log_amplitude = torch.log(spectrum.abs() + preset.log_offset)
        box = torch.full((self.mean_filter,), 1.0 / self.mean_filter, dtype=dtype, device=inputs.device)
        residual = log_amplitude - separable_filter(log_amplitude, box, preset.mean_border)
        magnitude = torch.fft.ifftn(torch.polar(torch.exp(residual), torch.angle(spectrum)), dim=dims).abs()
        size = self.kernel_size if self.kernel_size is not None else 2 * int(GAUSSIAN_TRUNCATE * self.sigma + 0.5) + 1
        gaussian = gaussian_kernel(size, self.sigma, dtype, inputs.device)
        if preset.blur_before_square:
            saliency = separable_filter(magnitude, gaussian, preset.gaussian_border).square()
        else:
            saliency = separable_filter(magnitude.square(), gaussian, preset.gaussian_border)
        if preset.divide_by_max:
            saliency = saliency / saliency.flatten(1).amax(dim=1).view(-1, *(1,) * len(spatial))
        return upsample(saliency, spatial, "bilinear").clamp_min(0).to(torch.float32)
