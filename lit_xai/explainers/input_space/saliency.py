"""Plain input gradients: Saliency and Input x Gradient (one forward and one backward pass)."""

from __future__ import annotations

from torch import Tensor, nn

from lit_xai.explainers.attributions import InputSpaceExplainer, input_gradients


class Saliency(InputSpaceExplainer):
    """Saliency (Simonyan et al., "Deep Inside Convolutional Networks: Visualising Image Classification
    Models and Saliency Maps", ICLR workshop 2014): the gradient of the target score (the raw logit; a
    one-output regressor's prediction) with respect to the input,

        phi_i = |d y^c / d x_i|   (abs=True, captum's default)    or    d y^c / d x_i   (abs=False),

    then reduced over channels by `reduce` (the paper's map is `max_abs`; default "abs_sum").
    """

    def __init__(self, abs: bool = True, reduce: str = "abs_sum") -> None:  # noqa: A002 (captum's name)
        super().__init__(reduce)
        self.abs = bool(abs)

    def attributions(self, model: nn.Module, inputs: Tensor, targets: Tensor | None) -> Tensor:
        gradients, _, _ = input_gradients(model, inputs, targets)
        return gradients.abs() if self.abs else gradients


class InputXGradient(InputSpaceExplainer):
    """Input x Gradient (Shrikumar et al., "Not Just a Black Box: Learning Important Features Through
    Propagating Activation Differences", 2016): phi_i = x_i * d y^c / d x_i, reduced over channels by
    `reduce` (default "abs_sum")."""

    def attributions(self, model: nn.Module, inputs: Tensor, targets: Tensor | None) -> Tensor:
        gradients, _, _ = input_gradients(model, inputs, targets)
        return inputs * gradients
