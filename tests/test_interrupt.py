"""KeyboardInterrupt raised from inside the model's forward, at any forward pass of any registered explainer:
no hook is left registered and the model's training and requires_grad flags are restored."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

from lit_xai.explainers.registry import default_explainers
from lit_xai.models import ImageClassifier


class Interrupting(nn.Module):
    """The digits classifier's network; the forward pass numbered `at` (1-based) raises KeyboardInterrupt."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = ImageClassifier(num_classes=10, input_shape=(1, 8, 8), width=8).net
        self.default_target_layer = "net.block3"
        self.calls, self.at = 0, 0

    def forward(self, x: Tensor) -> Tensor:
        self.calls += 1
        if self.calls == self.at:
            raise KeyboardInterrupt(f"interrupted at forward pass {self.at}")
        return self.net(x)


def hooks(model: nn.Module) -> int:
    return sum(
        len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks) + len(m._backward_pre_hooks) for m in model.modules()
    ) + sum(len(p._backward_hooks or {}) for p in model.parameters() if hasattr(p, "_backward_hooks"))


MODEL_FREE = {"random", "center", "spectral_residual"}  # baselines that never run the model
MODEL = Interrupting()
NAMES = sorted(default_explainers(MODEL))


def test_every_registered_explainer_applies() -> None:
    assert len(NAMES) >= 40


@pytest.mark.parametrize("name", NAMES)
def test_interrupt_at_any_forward_pass_leaves_no_hook_and_restores_the_flags(name: str) -> None:
    model = Interrupting()
    model.train()
    model.net.head.training = False  # a mixed state, restored as it was
    model.net.block1[0].weight.requires_grad_(False)
    modes = [m.training for m in model.modules()]
    flags = [p.requires_grad for p in model.parameters()]
    inputs = torch.randn(2, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    explainer = default_explainers(model)[name]
    reference = explainer(model, inputs)
    passes = model.calls
    if name in MODEL_FREE:
        assert passes == 0  # nothing to interrupt
        return
    assert passes >= 1
    points = sorted({1, (passes + 1) // 2, passes})  # the first pass, one inside, the last
    for at in points:
        model.calls, model.at = 0, at
        with pytest.raises(KeyboardInterrupt):
            explainer(model, inputs)
        assert hooks(model) == 0, f"{name}: hook left after an interrupt at pass {at} of {passes}"
        assert [m.training for m in model.modules()] == modes, f"{name}: training flags after pass {at}"
        assert [p.requires_grad for p in model.parameters()] == flags, f"{name}: requires_grad after pass {at}"
        assert all(p.grad is None for p in model.parameters()), name
        assert torch.is_grad_enabled() and not torch.is_inference_mode_enabled()
    model.at = 0
    torch.testing.assert_close(explainer(model, inputs), reference)  # the same map after the interrupts
