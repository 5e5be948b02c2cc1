"""Model-free baselines: CenterSaliency (hand-computed values) and SpectralResidualSaliency (parity with an
independent numpy/scipy re-implementation, with OpenCV's StaticSaliencySpectralResidual ("opencv" preset) and
with a transcription of the authors' MATLAB lines ("matlab" preset), and behaviour on scenes with one salient
object)."""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest
import torch
from scipy import ndimage
from torch import nn

from lit_xai.explainers.baselines.center_saliency import CenterSaliency
from lit_xai.explainers.baselines.spectral_residual import SpectralResidualSaliency
from tests.conftest import SmallNet

# ----------------------------------------------------------------------------------------------------------
# CenterSaliency


def test_center_values_by_hand(small_net: SmallNet) -> None:
    maps = CenterSaliency(sigma=0.25)(small_net, torch.randn(2, 3, 5, 5))
    assert maps.shape == (2, 5, 5) and maps.dtype == torch.float32
    s = 0.25 * 5  # std in pixels; centre c = (5 - 1) / 2 = 2
    assert maps[0, 2, 2].item() == 1.0
    assert maps[0, 0, 0].item() == pytest.approx(math.exp(-(4 / (2 * s**2) + 4 / (2 * s**2))), rel=1e-6)  # 0.0773
    assert maps[0, 2, 4].item() == pytest.approx(math.exp(-4 / (2 * s**2)), rel=1e-6)  # 0.2780
    assert maps[0, 1, 3].item() == pytest.approx(math.exp(-2 / (2 * s**2)), rel=1e-6)  # 0.5273

    # non-square, even sides: centre between pixels, no pixel reaches 1; per-axis std sigma * side
    rect = CenterSaliency(sigma=0.5)(small_net, torch.randn(1, 3, 4, 6))[0]
    sh, sw = 0.5 * 4, 0.5 * 6
    assert rect[0, 0].item() == pytest.approx(math.exp(-(1.5**2 / (2 * sh**2) + 2.5**2 / (2 * sw**2))), rel=1e-6)
    assert rect[2, 3].item() == pytest.approx(math.exp(-(0.5**2 / (2 * sh**2) + 0.5**2 / (2 * sw**2))), rel=1e-6)
    assert rect.max().item() < 1 and rect.min().item() > 0

    # symmetry about both axes
    torch.testing.assert_close(rect, rect.flip(0), rtol=0, atol=0)
    torch.testing.assert_close(rect, rect.flip(1), rtol=0, atol=0)
    torch.testing.assert_close(maps[0], maps[0].T, rtol=0, atol=0)


def test_center_time_series() -> None:
    series = CenterSaliency(sigma=0.5)(nn.Identity(), torch.randn(3, 2, 7))
    assert series.shape == (3, 7)
    s = 0.5 * 7
    expected = torch.tensor([math.exp(-((t - 3) ** 2) / (2 * s**2)) for t in range(7)])
    torch.testing.assert_close(series, expected.expand(3, 7), rtol=1e-6, atol=0)
    assert series[0, 3].item() == 1.0


def test_center_ignores_model_and_values(small_net: SmallNet) -> None:
    inputs = torch.randn(4, 3, 9, 11, generator=torch.Generator().manual_seed(0))
    maps = CenterSaliency()(small_net, inputs)
    other = CenterSaliency()(nn.Identity(), 100 * torch.rand(4, 3, 9, 11) - 3, targets=torch.tensor([0, 1, 2, 0]))
    torch.testing.assert_close(maps, other, rtol=0, atol=0)
    for sample in maps[1:]:
        torch.testing.assert_close(sample, maps[0], rtol=0, atol=0)
    with torch.inference_mode():
        torch.testing.assert_close(CenterSaliency()(small_net, inputs), maps, rtol=0, atol=0)


@pytest.mark.parametrize("sigma", [0, -0.1, float("nan"), float("inf"), "0.2", True])
def test_center_rejects_bad_sigma(sigma: object) -> None:
    with pytest.raises(ValueError, match="sigma"):
        CenterSaliency(sigma=sigma)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------------------------------------
# SpectralResidualSaliency: an independent numpy / scipy reference


def _antialiased_linear_matrix(n_in: int, n_out: int) -> np.ndarray:
    """Linear interpolation with half-pixel centres whose triangle widens by the shrink factor (PIL-style)."""
    scale = n_in / n_out
    support = max(scale, 1.0)
    centres = (np.arange(n_out) + 0.5) * scale  # in input coordinates, pixel j covers [j, j + 1)
    weights = np.maximum(0.0, 1.0 - np.abs(np.arange(n_in)[None, :] + 0.5 - centres[:, None]) / support)
    return weights / weights.sum(axis=1, keepdims=True)


def _bilinear_matrix(n_in: int, n_out: int) -> np.ndarray:
    """Plain linear interpolation, align_corners=False: source x = (i + 0.5) * n_in / n_out - 0.5, clamped at 0."""
    source = np.maximum((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0.0)
    low = np.minimum(np.floor(source).astype(int), n_in - 1)
    high = np.minimum(low + 1, n_in - 1)
    frac = source - low
    matrix = np.zeros((n_out, n_in))
    np.add.at(matrix, (np.arange(n_out), low), 1 - frac)
    np.add.at(matrix, (np.arange(n_out), high), frac)
    return matrix


def reference_spectral_residual(x: np.ndarray, width: int = 64, mean_filter: int = 3, sigma: float = 8.0) -> np.ndarray:
    """One sample `(C, H, W)` or `(C, T)` -> map `(H, W)` or `(T,)`, step by step with numpy.fft / scipy.ndimage."""
    grey = x.astype(np.float64).mean(axis=0)
    shape = grey.shape
    longer = max(shape)
    work_shape = tuple(max(1, int(math.floor(n * width / longer + 0.5))) for n in shape)
    work = grey
    for axis, (n_in, n_out) in enumerate(zip(shape, work_shape)):
        work = np.moveaxis(np.tensordot(_antialiased_linear_matrix(n_in, n_out), np.moveaxis(work, axis, 0), axes=1), 0, axis)
    spectrum = np.fft.fftn(work)
    log_amplitude = np.log(np.abs(spectrum) + 1e-12)
    residual = log_amplitude - ndimage.uniform_filter(log_amplitude, size=mean_filter, mode="reflect")
    saliency = np.abs(np.fft.ifftn(np.exp(residual) * np.exp(1j * np.angle(spectrum)))) ** 2
    saliency = ndimage.gaussian_filter(saliency, sigma=sigma, mode="reflect", truncate=4.0)
    for axis, (n_in, n_out) in enumerate(zip(work_shape, shape)):
        saliency = np.moveaxis(np.tensordot(_bilinear_matrix(n_in, n_out), np.moveaxis(saliency, axis, 0), axes=1), 0, axis)
    return saliency


@pytest.mark.parametrize(
    ("shape", "params"),
    [
        ((3, 64, 64), {}),  # no resampling
        ((3, 100, 80), {}),  # shrink (antialiased), working size 64 x 51
        ((1, 24, 40), {"mean_filter": 5, "sigma": 3.0}),  # enlarge, working size 38 x 64
        ((3, 30, 96), {"width": 32, "sigma": 2.5}),  # working size 10 x 32: the Gaussian radius 10 is as long as an axis
        ((2, 100), {}),  # time series, shrink to 64 samples
        ((4, 37), {"width": 48, "mean_filter": 5, "sigma": 4.0}),  # time series, enlarge
    ],
)
def test_spectral_residual_matches_numpy_reference(shape: tuple[int, ...], params: dict) -> None:
    inputs = torch.rand(3, *shape, generator=torch.Generator().manual_seed(1))
    maps = SpectralResidualSaliency(**params)(nn.Identity(), inputs)
    assert maps.shape == (3, *shape[1:]) and maps.dtype == torch.float32
    expected = np.stack([reference_spectral_residual(x, **params) for x in inputs.numpy()])
    np.testing.assert_allclose(maps.numpy(), expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())


# ----------------------------------------------------------------------------------------------------------
# SpectralResidualSaliency presets: "opencv" against OpenCV itself, "matlab" against a numpy / scipy / PIL
# transcription of the authors' MATLAB lines


@functools.cache
def _sample_images() -> tuple[np.ndarray, ...]:
    from sklearn.datasets import load_sample_images

    return tuple(load_sample_images().images)


def _photographs(step: int) -> list[np.ndarray]:
    """scikit-learn's two sample photographs (427 x 640 RGB uint8), every `step`-th pixel, as float32 in [0, 1]."""
    return [np.ascontiguousarray(image[::step, ::step]).astype(np.float32) / 255 for image in _sample_images()]


@pytest.mark.parametrize("step", [4, 13])  # 107 x 160 (shrunk to 64 x 64) and 33 x 50 (enlarged)
def test_opencv_preset_equals_opencv_on_photographs(step: int) -> None:
    cv2 = pytest.importorskip("cv2")
    saliency = cv2.saliency.StaticSaliencySpectralResidual_create()
    explainer = SpectralResidualSaliency(preset="opencv")
    for image in _photographs(step):
        # Compared: OpenCV's own output (its map divided by its maximum at 64 x 64, then resized) and ours, both
        # unnormalised otherwise, on the same float image: OpenCV gets it as BGR (its channel order), we as RGB.
        # Float input, because OpenCV rounds uint8 grey and resized images to integers.
        ok, expected = saliency.computeSaliency(np.ascontiguousarray(image[..., ::-1]))
        assert ok and expected.shape == image.shape[:2]
        maps = explainer(nn.Identity(), torch.from_numpy(image).permute(2, 0, 1)[None])[0].numpy()
        # measured max abs difference 2.7e-5 - 3.8e-5 (on maps whose maximum is 0.90 - 0.99): OpenCV's
        # cartToPolar computes the phase with a fast atan approximation (1.6e-4 rad max error), we exactly
        np.testing.assert_allclose(maps, expected, rtol=0, atol=1e-3)
        assert np.abs(maps - expected).max() < 1e-4
        # a single-channel image is used as it is, by both
        grey = np.ascontiguousarray(image.mean(axis=-1))
        ok, expected = saliency.computeSaliency(grey)
        maps = explainer(nn.Identity(), torch.from_numpy(grey)[None, None])[0].numpy()
        np.testing.assert_allclose(maps, expected, rtol=0, atol=1e-4)


def reference_matlab_spectral_residual(x: np.ndarray) -> np.ndarray:
    """One image `(3, H, W)` -> map `(H, W)`, the authors' MATLAB lines in numpy / scipy / PIL:

        I = imresize(rgb2gray(x), 64 / size(I, 2))           (PIL's antialiased bicubic, a = -0.5, to ceil(H * 64 / W) x 64)
        F = fft2(I);  R = log(abs(F)) - imfilter(log(abs(F)), fspecial('average', 3), 'replicate')
        S = imfilter(abs(ifft2(exp(R + i angle(F)))).^2, fspecial('gaussian', [10 10], 2.5))   (zero border)

    then resized back bilinearly (their code stops at 64 px and min-max normalises for display)."""
    from PIL import Image

    grey = np.tensordot([0.298936021293775, 0.587043074451121, 0.114020904255103], x.astype(np.float64), axes=1)
    rows = math.ceil(grey.shape[0] * 64 / grey.shape[1])
    work = np.asarray(Image.fromarray(grey.astype(np.float32), mode="F").resize((64, rows), Image.Resampling.BICUBIC), dtype=np.float64)
    spectrum = np.fft.fft2(work)
    log_amplitude = np.log(np.abs(spectrum) + 1e-12)
    residual = log_amplitude - ndimage.uniform_filter(log_amplitude, size=3, mode="nearest")
    saliency = np.abs(np.fft.ifft2(np.exp(residual + 1j * np.angle(spectrum)))) ** 2
    taps = np.exp(-((np.arange(10) - 4.5) ** 2) / (2 * 2.5**2))
    kernel = np.outer(taps, taps) / np.outer(taps, taps).sum()
    # imfilter's anchor of an even kernel is tap floor((10 + 1) / 2) = 5 (from 1): scipy's default centre is tap
    # 10 // 2 + 1 = 6 (from 1), so origin -1
    saliency = ndimage.correlate(saliency, kernel, mode="constant", cval=0.0, origin=-1)
    for axis, (n_in, n_out) in enumerate(zip(saliency.shape, grey.shape)):
        saliency = np.moveaxis(np.tensordot(_bilinear_matrix(n_in, n_out), np.moveaxis(saliency, axis, 0), axes=1), 0, axis)
    return saliency


def test_matlab_preset_matches_the_authors_lines() -> None:
    images = _photographs(6)  # 72 x 107 -> 44 x 64
    inputs = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2)
    maps = SpectralResidualSaliency(preset="matlab")(nn.Identity(), inputs)
    assert maps.shape == (2, 72, 107)
    for saliency, image in zip(maps.numpy(), inputs.numpy()):
        expected = reference_matlab_spectral_residual(image)
        # measured max abs difference 1.6e-7 and 2.3e-7 of the map's maximum
        np.testing.assert_allclose(saliency, expected, rtol=1e-4, atol=1e-5 * expected.max())


def test_presets_differ_and_paper_is_the_default() -> None:
    inputs = torch.from_numpy(np.stack(_photographs(8))).permute(0, 3, 1, 2)
    paper = SpectralResidualSaliency()(nn.Identity(), inputs)
    torch.testing.assert_close(SpectralResidualSaliency(preset="paper", sigma=8.0)(nn.Identity(), inputs), paper, rtol=0, atol=0)
    normalised = {}
    for preset in ("paper", "matlab", "opencv"):
        maps = SpectralResidualSaliency(preset=preset)(nn.Identity(), inputs)
        normalised[preset] = maps / maps.flatten(1).amax(1)[:, None, None]
    # the sigma-8 blur of "paper" and "opencv" vs the sigma-2.5 one of "matlab", and the other details: the maps
    # differ well beyond round-off (measured max abs differences of the max-normalised maps: 0.54 - 0.89)
    for a, b in (("paper", "matlab"), ("paper", "opencv"), ("matlab", "opencv")):
        assert (normalised[a] - normalised[b]).abs().max() > 0.1, (a, b)
    # sigma and kernel_size override the preset's Gaussian (measured: 0.54, 0.67)
    wide = SpectralResidualSaliency(preset="matlab", sigma=8.0, kernel_size=33)(nn.Identity(), inputs)
    assert (wide / wide.flatten(1).amax(1)[:, None, None] - normalised["matlab"]).abs().max() > 0.1
    # the 1-D analogue of every preset runs on series
    series = torch.randn(2, 3, 50, generator=torch.Generator().manual_seed(0))
    for preset in ("matlab", "opencv"):
        out = SpectralResidualSaliency(preset=preset)(nn.Identity(), series)
        assert out.shape == (2, 50) and out.min() >= 0 and out.max() > 0


def test_filter_borders_by_hand() -> None:
    from lit_xai.explainers.baselines.spectral_residual import filter_matrix

    # a 3-tap kernel (a, b, c) on 4 samples: row i holds a at i - 1, b at i, c at i + 1, outside positions read
    # through the border: -1 -> 0 (reflect), 1 (reflect101), 0 (replicate), dropped (zeros); 4 -> 3, 2, 3, dropped
    kernel = torch.tensor([1.0, 10.0, 100.0], dtype=torch.float64)
    first = {"reflect": [11.0, 100, 0, 0], "reflect101": [10.0, 101, 0, 0], "replicate": [11.0, 100, 0, 0], "zeros": [10.0, 100, 0, 0]}
    last = {"reflect": [0.0, 0, 1, 110], "reflect101": [0.0, 0, 101, 10], "replicate": [0.0, 0, 1, 110], "zeros": [0.0, 0, 1, 10]}
    for border in first:
        matrix = filter_matrix(kernel, 4, border)
        assert matrix[0].tolist() == first[border] and matrix[3].tolist() == last[border], border
        assert matrix[1].tolist() == [1.0, 10, 100, 0]
    # an even kernel (a, b, c, d): one tap before the output position, two after (MATLAB's imfilter anchor)
    assert filter_matrix(torch.tensor([1.0, 2, 3, 4], dtype=torch.float64), 5, "zeros")[1].tolist() == [1.0, 2, 3, 4, 0]


def _scene(size: tuple[int, int], top: int, left: int, side: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A smooth, off-centre Gaussian illumination (0.3 at its peak) plus one bright square (+1)."""
    height, width = size
    yy, xx = torch.meshgrid(torch.arange(height, dtype=torch.float64), torch.arange(width, dtype=torch.float64), indexing="ij")
    image = 0.3 * torch.exp(-((yy - 0.3 * height) ** 2 + (xx - 0.7 * width) ** 2) / (2 * (0.5 * max(size)) ** 2))
    mask = torch.zeros(size, dtype=torch.bool)
    mask[top : top + side, left : left + side] = True
    return (image + mask).float(), mask


# Measured (mean saliency inside the square / mean elsewhere): 7.92, 7.72, 7.30, 6.66, 6.03, and the argmax
# inside the square (distance 0) in every case. Squares are >= 12 px from the border: near a border the reflected
# Gaussian pulls the maximum onto the border row (measured up to 7 px away for squares 4 px from the border).
SCENES = [((64, 64), 40, 12, 5), ((64, 64), 20, 30, 4), ((64, 64), 24, 36, 6), ((96, 80), 30, 50, 6), ((48, 64), 18, 22, 5)]


@pytest.mark.parametrize(("size", "top", "left", "side"), SCENES)
def test_spectral_residual_finds_the_square(size: tuple[int, int], top: int, left: int, side: int) -> None:
    image, mask = _scene(size, top, left, side)
    saliency = SpectralResidualSaliency()(nn.Identity(), image.expand(1, 3, *size).clone())[0]
    row, col = divmod(int(saliency.argmax()), size[1])
    distance = max(0, top - row, row - (top + side - 1), left - col, col - (left + side - 1))
    assert distance <= 1
    assert (saliency[mask].mean() / saliency[~mask].mean()).item() >= 5.0


def test_spectral_residual_finds_a_spike_in_a_periodic_series() -> None:
    # Two cycles of a sine (periodic over the window) with one spike of +2 at t = 41 (out of 64).
    # Measured: argmax 41 for both phases, (mean within +-3 samples) / (mean elsewhere) = 2.33, 2.04,
    # max / median = 3.10, 2.49; without the spike the maps are flat: max / median 1.05, 1.06.
    t = torch.arange(64, dtype=torch.float64)
    smooth = torch.stack([torch.sin(2 * math.pi * 2 * t / 64), torch.cos(2 * math.pi * 2 * t / 64)])
    spiky = smooth.clone()
    spiky[:, 41] += 2.0
    explainer = SpectralResidualSaliency()
    maps = explainer(nn.Identity(), spiky.float().unsqueeze(1))
    near = (t - 41).abs() <= 3
    for saliency in maps:
        assert abs(int(saliency.argmax()) - 41) <= 2
        assert (saliency[near].mean() / saliency[~near].mean()).item() >= 1.6
        assert (saliency.max() / saliency.median()).item() >= 2.0
    for saliency in explainer(nn.Identity(), smooth.float().unsqueeze(1)):
        assert (saliency.max() / saliency.median()).item() <= 1.2


def test_spectral_residual_shape_device_and_batch_independence(small_net: SmallNet) -> None:
    generator = torch.Generator().manual_seed(0)
    inputs = torch.randn(5, 3, 40, 56, generator=generator)
    explainer = SpectralResidualSaliency()
    maps = explainer(small_net, inputs)
    assert maps.shape == (5, 40, 56) and maps.dtype == torch.float32 and maps.device == inputs.device
    assert maps.min().item() >= 0 and maps.max().item() > 0
    # a sample's map does not depend on the other samples, on the model, on targets, or on grad mode
    alone = torch.cat([explainer(nn.Identity(), inputs[i : i + 1]) for i in (3, 0)])
    torch.testing.assert_close(alone, maps[[3, 0]], rtol=1e-5, atol=1e-6 * maps.max().item())
    torch.testing.assert_close(explainer(small_net, inputs, targets=torch.tensor([0, 1, 2, 0, 1])), maps, rtol=0, atol=0)
    with torch.inference_mode():
        torch.testing.assert_close(explainer(small_net, inputs), maps, rtol=0, atol=0)
    # only the channel mean matters, and a positive rescaling of the input changes nothing
    swapped = explainer(small_net, inputs[:, [2, 0, 1]])
    torch.testing.assert_close(swapped, maps, rtol=1e-5, atol=1e-6 * maps.max().item())
    torch.testing.assert_close(explainer(small_net, 7.5 * inputs), maps, rtol=1e-5, atol=1e-6 * maps.max().item())
    series = explainer(small_net, torch.randn(2, 4, 30, generator=generator))
    assert series.shape == (2, 30) and series.min().item() >= 0


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_spectral_residual_on_cuda() -> None:
    inputs = torch.rand(2, 3, 50, 70, generator=torch.Generator().manual_seed(0))
    explainer = SpectralResidualSaliency()
    on_gpu = explainer(nn.Identity().cuda(), inputs.cuda())
    assert on_gpu.device.type == "cuda"
    torch.testing.assert_close(on_gpu.cpu(), explainer(nn.Identity(), inputs), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"width": 7}, "width"),
        ({"width": 64.0}, "width"),
        ({"width": True}, "width"),
        ({"mean_filter": 4}, "mean_filter"),
        ({"mean_filter": 0}, "mean_filter"),
        ({"mean_filter": -3}, "mean_filter"),
        ({"mean_filter": 3.0}, "mean_filter"),
        ({"width": 8, "mean_filter": 9}, "mean_filter"),
        ({"sigma": 0}, "sigma"),
        ({"sigma": -1.0}, "sigma"),
        ({"sigma": float("nan")}, "sigma"),
        ({"sigma": float("inf")}, "sigma"),
        ({"preset": "cv2"}, "preset must be one of"),
        ({"kernel_size": 0}, "kernel_size"),
        ({"kernel_size": 5.0}, "kernel_size"),
    ],
)
def test_spectral_residual_rejects_bad_hyper_parameters(params: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SpectralResidualSaliency(**params)
