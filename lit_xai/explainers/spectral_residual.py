"""Spectral-residual saliency (Hou & Zhang, CVPR 2007): a model-free, image-only baseline."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lit_xai.explainers.base import Explainer
from lit_xai.explainers.upsample import upsample
from lit_xai.filters import gaussian_kernel

LOG_EPS = 1e-12
"""Added to the amplitude before the logarithm, so that zero Fourier coefficients stay finite."""

GAUSSIAN_TRUNCATE = 4.0
"""The Gaussian kernel has radius `int(4 * sigma + 0.5)` (scipy.ndimage's default truncation)."""


def working_size(spatial: tuple[int, ...], width: int) -> tuple[int, ...]:
    """The size the grey input is resampled to: the longer side becomes `width`, the aspect ratio is kept.

    The shorter side is `max(1, floor(side * width / longer + 0.5))`; a time series always gets `(width,)`.
    """
    longer = max(spatial)
    return tuple(max(1, math.floor(side * width / longer + 0.5)) for side in spatial)


def reflect_index(index: Tensor, size: int) -> Tensor:
    """Map any integer index into `[0, size)` by half-sample symmetric reflection (`d c b a | a b c d | d c b a`).

    The same border as scipy.ndimage's mode "reflect" and numpy.pad's mode "symmetric", valid for pads
    longer than the axis (the extension has period `2 * size`).
    """
    index = torch.remainder(index, 2 * size)
    return torch.where(index >= size, 2 * size - 1 - index, index)


def filter_matrix(kernel: Tensor, size: int) -> Tensor:
    """The `(size, size)` matrix M with `(M @ x)_i = sum_k kernel_k x_reflect(i + k - r)`, r = len(kernel) // 2.

    Filtering an axis by a matrix product handles every axis length (even one shorter than the kernel)
    and batches without a Python loop over samples.
    """
    radius = kernel.numel() // 2
    offsets = torch.arange(-radius, radius + 1, device=kernel.device)
    sources = reflect_index(torch.arange(size, device=kernel.device)[:, None] + offsets[None, :], size)
    matrix = torch.zeros(size, size, dtype=kernel.dtype, device=kernel.device)
    rows = torch.arange(size, device=kernel.device)[:, None].expand_as(sources)
    return matrix.index_put_((rows, sources), kernel.expand_as(sources), accumulate=True)


def separable_filter(maps: Tensor, kernel: Tensor) -> Tensor:
    """Filter `(B, H, W)` or `(B, T)` maps along every spatial axis with the same 1-D kernel, reflect border."""
    if maps.ndim == 2:
        return maps @ filter_matrix(kernel, maps.shape[1]).T
    rows, cols = filter_matrix(kernel, maps.shape[1]), filter_matrix(kernel, maps.shape[2])
    return rows @ maps @ cols.T


def resample(maps: Tensor, size: tuple[int, ...]) -> Tensor:
    """Resize `(B, *spatial)` maps: bilinear (linear for series), align_corners=False, antialiased when shrinking.

    torch's antialias weights (a triangle filter stretched by the shrink factor, as PIL) reduce to plain
    bilinear interpolation when enlarging. A series is resized as a `(1, T)` image.
    """
    if tuple(maps.shape[1:]) == tuple(size):
        return maps
    images = maps.unsqueeze(1) if maps.ndim == 3 else maps[:, None, None, :]
    target = tuple(size) if maps.ndim == 3 else (1, size[0])
    resized = F.interpolate(images, size=target, mode="bilinear", align_corners=False, antialias=True)
    return resized.squeeze(1) if maps.ndim == 3 else resized[:, 0, 0, :]


class SpectralResidualSaliency(Explainer):
    """Spectral-residual saliency (Hou & Zhang, "Saliency Detection: A Spectral Residual Approach", CVPR 2007).

    A model-free baseline: the map depends on the input only (the model and targets are ignored). With
    `I` the grey input (channel mean) resampled so that its longer side is `width` (aspect ratio kept),

        F = FFT(I),  L = log(|F| + 1e-12),  R = L - h_n * L,
        S = g_sigma * |IFFT(exp(R + i angle(F)))|^2,

    then S is resized back to the input's size (bilinear, align_corners=False). `h_n` is the n x n mean
    filter (`n = mean_filter`), `g_sigma` a Gaussian of standard deviation `sigma` in working-resolution
    pixels. The log amplitude of natural images is locally smooth (about 1/f); what the local mean does
    not predict (the residual R) is kept, with the original phase, and transformed back: regions that break
    the image's statistical regularity light up.

    Conventions (the paper leaves some open):

    * resampling in: bilinear, align_corners=False, antialiased when shrinking (torch's `antialias=True`);
      the longer side becomes `width` (the paper resizes the image to 64 px), the shorter side
      `max(1, floor(side * width / longer + 0.5))`. Inputs smaller than `width` are enlarged, so
      `sigma / width` is always the same fraction of the image.
    * FFT: the unshifted 2-D (or 1-D) DFT of the working image (DC at index 0, not fft-shifted; the mean
      filter runs on it in that layout); no windowing, no mean removal.
    * mean filter: `mean_filter` taps per axis, half-sample symmetric border (scipy.ndimage mode
      "reflect"); for the default 3 taps this is the same as the "replicate" border.
    * smoothing: `sigma = 8` px at the working resolution, as in the paper; sampled, normalised Gaussian
      truncated at radius `int(4 * sigma + 0.5)`, the same half-sample symmetric border.
    * arithmetic in float64 (float32 on devices without it): the residual amplifies the relative error of
      small Fourier coefficients. The output is float32, `>= 0`, raw (not normalised), and invariant (up to
      the 1e-12) to a positive rescaling of the input: log|cF| - h * log|cF| = R.

    Time series `(B, C, T)`: the 1-D analogue, the channel mean resampled to `width` samples (linear),
    1-D FFT, mean filter of `mean_filter` samples, 1-D Gaussian, linear resampling back to `T`.
    `mean_filter = 1` gives R = 0, i.e. the phase-only transform (Guo et al., 2008).

    Limits (of the method, kept as published): an exact zero of the spectrum (log amplitude log(1e-12) =
    -27.6) lifts the residual of each neighbour by (its log amplitude + 27.6) / 9 per zero tap, and those
    frequencies dominate the map. Natural or noisy images have none, but synthetic ones can: an even-sized
    square on a constant background has a zero row and column at the Nyquist frequency (residual up to 13.7
    there; the map then peaks far from the square); a smooth background, noise or an odd size removes them.
    A perfectly periodic texture is not suppressed either: its isolated spectral peaks only shrink from A to
    about A^(8/9) under a 3 x 3 mean, so an odd patch in it barely stands out.
    """

    def __init__(self, width: int = 64, mean_filter: int = 3, sigma: float = 8.0) -> None:
        if isinstance(width, bool) or not isinstance(width, int) or width < 8:
            raise ValueError(f"width must be an integer >= 8 (the working resolution in pixels, 64 in the paper), got {width!r}")
        if isinstance(mean_filter, bool) or not isinstance(mean_filter, int) or mean_filter < 1 or mean_filter % 2 == 0:
            raise ValueError(f"mean_filter must be an odd positive integer (taps of the centred mean filter, 3 in the paper), got {mean_filter!r}")
        if mean_filter > width:
            raise ValueError(f"mean_filter ({mean_filter}) must not be longer than width ({width})")
        if isinstance(sigma, bool) or not isinstance(sigma, (int, float)) or not math.isfinite(sigma) or sigma <= 0:
            raise ValueError(f"sigma must be a finite number > 0 (Gaussian std in working-resolution pixels, 8 in the paper), got {sigma!r}")
        self.width = width
        self.mean_filter = mean_filter
        self.sigma = float(sigma)

    def explain(self, model: nn.Module, inputs: Tensor, targets: Tensor | None) -> Tensor:
        spatial = tuple(inputs.shape[2:])
        dtype = torch.float32 if inputs.device.type == "mps" else torch.float64
        grey = inputs.detach().to(dtype).mean(dim=1)
        work = resample(grey, working_size(spatial, self.width))
        dims = tuple(range(1, work.ndim))
        spectrum = torch.fft.fftn(work, dim=dims)
        log_amplitude = torch.log(spectrum.abs() + LOG_EPS)
        box = torch.full((self.mean_filter,), 1.0 / self.mean_filter, dtype=dtype, device=inputs.device)
        residual = log_amplitude - separable_filter(log_amplitude, box)
        reconstruction = torch.fft.ifftn(torch.polar(torch.exp(residual), torch.angle(spectrum)), dim=dims)
        saliency = reconstruction.abs().square()
        radius = int(GAUSSIAN_TRUNCATE * self.sigma + 0.5)
        saliency = separable_filter(saliency, gaussian_kernel(2 * radius + 1, self.sigma, dtype, inputs.device))
        return upsample(saliency, spatial, "bilinear").clamp_min(0).to(torch.float32)
