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
    # a fresh explainer each time: some keep what their first call found (Hyper Expected Grad-CAM's frequency
    # layers), so a later call runs fewer passes than the first
    reference = default_explainers(model)[name](model, inputs)
    passes = model.calls
    if name in MODEL_FREE:
        assert passes == 0  # nothing to interrupt
        return
    assert passes >= 1
    points = sorted({1, (passes + 1) // 2, passes})  # the first pass, one inside, the last
    for at in points:
        model.calls, model.at = 0, at
        with pytest.raises(KeyboardInterrupt):
            default_explainers(model)[name](model, inputs)
        assert hooks(model) == 0, f"{name}: hook left after an interrupt at pass {at} of {passes}"
        assert [m.training for m in model.modules()] == modes, f"{name}: training flags after pass {at}"
        assert [p.requires_grad for p in model.parameters()] == flags, f"{name}: requires_grad after pass {at}"
        assert all(p.grad is None for p in model.parameters()), name
        assert torch.is_grad_enabled() and not torch.is_inference_mode_enabled()
    model.at = 0
    torch.testing.assert_close(default_explainers(model)[name](model, inputs), reference)  # the same map after the interrupts


def test_ctrl_c_inside_the_callback_round_leaves_the_module_as_the_round_found_it() -> None:
    """KeyboardInterrupt from the module's forward during ExplainerCallback's round inside `fit`: Lightning
    shuts down (SystemExit), and the module has no hook left and the flags it had when the round began."""
    import signal

    import lightning.pytorch as pl

    from lit_xai.callbacks import ExplainerCallback
    from lit_xai.explainers import GradCAM, SmoothGradCAMPlusPlus
    from lit_xai.metrics import Deletion
    from tests.fault_helpers import InterruptedModule
    from tests.helpers import TinyData

    class Snapshot(pl.Callback):
        def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
            self.modes = [m.training for m in pl_module.modules()]
            self.flags = [p.requires_grad for p in pl_module.parameters()]
            pl_module.armed = True  # type: ignore[assignment]

    # the round's passes: 1 the divergence check, 2 the targets, 3 Grad-CAM, 4 Deletion's perturbed inputs,
    # 5 SmoothGrad-CAM++'s first chunk, 6 its second chunk of noisy draws
    for at in (3, 4, 6):
        snapshot, module = Snapshot(), InterruptedModule(at)
        callback = ExplainerCallback(
            {"gradcam": GradCAM(), "smooth": SmoothGradCAMPlusPlus(samples=4, internal_batch_size=4)},
            metrics=[Deletion(steps=2)], probe_size=4, print_table=False, log_images=0,
        )
        run = pl.Trainer(
            max_epochs=1, accelerator="cpu", devices=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
            enable_model_summary=False, num_sanity_val_steps=0, callbacks=[snapshot, callback],
        )
        handler = signal.getsignal(signal.SIGINT)
        try:
            with pytest.raises(SystemExit):  # Lightning's graceful shutdown after a KeyboardInterrupt
                run.fit(module, TinyData())
        finally:
            signal.signal(signal.SIGINT, handler)  # Lightning ignores further Ctrl-C while it shuts down
        assert module.passes == at
        assert hooks(module) == 0
        assert [m.training for m in module.modules()] == snapshot.modes
        assert [p.requires_grad for p in module.parameters()] == snapshot.flags
