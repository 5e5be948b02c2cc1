"""The modified backward pass of LRP: temporary forward hooks that make each layer's output carry its rule.

Inside `lrp_backward(model, ...)` one ordinary forward pass builds an autograd graph whose backward pass
is LRP: what flows back is relevance. Per module type:

* Conv1d / Conv2d / Linear: the rule assigned to it (`lrp_rules`); a BatchNorm registered right after it
  (in `model.named_modules()` order, as zennit's canonizers pair them) and taking its output is merged
  into it: the rule sees the pair as one affine layer with merged weights (computed on the fly; the
  modules are never modified);
* ReLU, and a BatchNorm that follows no Conv/Linear: relevance passes through unchanged (zennit's `Pass`);
* AvgPool / AdaptiveAvgPool: `R_in = x * P^T (R / s(P x))` (zennit's `Norm`, stabiliser `stabilizer`);
* MaxPool / AdaptiveMaxPool, Flatten, Unflatten, Dropout (eval: identity), Identity: the plain gradient
  (max pooling sends a unit's relevance to its winning input);
* torchvision `BasicBlock` / `Bottleneck`: the residual sum `out + identity` splits the relevance of the
  block's output in proportion to each branch's contribution, `R_branch = branch * R / s(out + identity)`
  (zennit's ResNet canonizer with its `Norm` rule on the sum), then the block's ReLU passes it.

Any other leaf module that runs in the forward pass raises `UnsupportedLayerError` naming it. Operations
written inside a module's `forward` (`torch.flatten`, `x.view`, `F.relu`, `a + b` outside the torchvision
blocks) are not modules and keep their plain gradient. Every hook is removed on exit, also on error.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from torch import Tensor, nn
from torch.utils.hooks import RemovableHandle

from lit_xai.explainers.layers import get_layer
from lit_xai.explainers.lrp.composites import AFFINE
from lit_xai.explainers.lrp.rules import (
    RECORDS_OUTPUT,
    RULE_FUNCTIONS,
    AffineLayer,
    DerivedWeights,
    RuleSettings,
    combine,
    inverse,
    relay,
    stabilize,
    substitute,
)

BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d)
AVG_POOLS = (nn.AvgPool1d, nn.AvgPool2d, nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d)
GRADIENT_LAYERS = (
    nn.MaxPool1d, nn.MaxPool2d, nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d,
    nn.Flatten, nn.Unflatten, nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Identity,
)
SUPPORTED = (*AFFINE, *BATCH_NORMS, nn.ReLU, *AVG_POOLS, *GRADIENT_LAYERS)


class UnsupportedLayerError(ValueError):
    """A layer without an LRP rule ran in the forward pass."""


def residual_blocks() -> tuple[type, ...]:
    from torchvision.models.resnet import BasicBlock, Bottleneck

    return (BasicBlock, Bottleneck)


def leaves(model: nn.Module) -> list[tuple[str, nn.Module]]:
    return [(name, module) for name, module in model.named_modules() if next(module.children(), None) is None]


def unsupported_layers(model: nn.Module) -> list[str]:
    """Names of leaf modules from `torch.nn` (loss modules aside) that LRP has no rule for."""
    blocks = residual_blocks()
    names = []
    for name, module in leaves(model):
        if isinstance(module, SUPPORTED) or isinstance(module, blocks) or isinstance(module, nn.modules.loss._Loss):
            continue
        if type(module).__module__.startswith("torch.nn"):
            names.append(name)
    return names


def affine_layers(model: nn.Module, cache: DerivedWeights | None = None) -> list[AffineLayer]:
    """Every Conv/Linear module, paired with the BatchNorm registered right after it (zennit's canonizer order);
    derived weights are kept in `cache` when given."""
    layers: list[AffineLayer] = []
    previous: AffineLayer | None = None
    for name, module in leaves(model):
        if isinstance(module, BATCH_NORMS) and previous is not None:
            if module.running_var is None or module.running_mean is None:
                raise ValueError(
                    f"BatchNorm {name!r} has no running statistics (track_running_stats=False), so it normalises with the "
                    "batch's own statistics and cannot be merged into the preceding layer for LRP"
                )
            previous.batch_norm, previous.batch_norm_name = module, name
        previous = None
        if isinstance(module, AFFINE):
            previous = AffineLayer(name, module, cache=cache)
            layers.append(previous)
    return layers


def _first_tensor(args: tuple[Any, ...], name: str) -> Tensor:
    if not args or not isinstance(args[0], Tensor):
        raise ValueError(f"LRP expects layer {name!r} to take a tensor as its first argument")
    return args[0]


class _Hooks:
    """Registers the hooks of one LRP pass and keeps what they exchange during it."""

    def __init__(self, model: nn.Module, rules: Mapping[str, str], settings: RuleSettings) -> None:
        self.model = model
        self.rules = rules
        self.settings = settings
        self.handles: list[RemovableHandle] = []
        self.stash: dict[Any, Any] = {}
        self.names = {module: name for name, module in model.named_modules()}

    def forward_hook(self, module: nn.Module, hook: Any) -> None:
        self.handles.append(module.register_forward_hook(hook))

    def pre_hook(self, module: nn.Module, hook: Any) -> None:
        self.handles.append(module.register_forward_pre_hook(hook))

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()
        self.handles.clear()
        self.stash.clear()

    # --- Conv / Linear (+ BatchNorm) ---------------------------------------------------------------
    def affine(self, layer: AffineLayer) -> None:
        rule = self.rules[layer.name]
        module, norm = layer.module, layer.batch_norm
        records = rule in RECORDS_OUTPUT

        def prepare_input(mod: nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...] | None:
            x = _first_tensor(args, layer.name)
            if not x.requires_grad:
                return None
            # a rule that reuses the layer's own pass gets it recorded on the relayed input; the others build
            # their graph from `x` and the layer itself runs without one
            fed = relay(x, x, x) if records else x.detach()
            self.stash[(mod, "input")] = (x, fed if records else None)
            return (fed, *args[1:])

        def after_layer(mod: nn.Module, args: tuple[Any, ...], output: Tensor) -> Tensor | None:
            x, relayed = self.stash.pop((mod, "input"), (None, None))
            x = _first_tensor(args, layer.name) if x is None else x
            if norm is not None:
                self.stash[mod] = (x, relayed, output)
                return None
            return self.apply_rule(layer, rule, x, relayed, output)

        self.pre_hook(module, prepare_input)
        self.forward_hook(module, after_layer)
        if norm is None:
            return

        def merged_output(mod: nn.Module, args: tuple[Any, ...], output: Tensor) -> Tensor | None:
            x, relayed, linear_output = self.stash.pop(module, (None, None, None))
            if linear_output is None or args[0] is not linear_output:
                raise ValueError(
                    f"BatchNorm {layer.batch_norm_name!r} is registered right after {layer.name!r} but does not take its "
                    "output in the forward pass; LRP merges such pairs, so register modules in the order forward uses them"
                )
            return self.apply_rule(layer, rule, x, relayed, output)

        self.forward_hook(norm, merged_output)

    def apply_rule(self, layer: AffineLayer, rule: str, x: Tensor, relayed: Tensor | None, output: Tensor) -> Tensor | None:
        if not isinstance(output, Tensor) or not (x.requires_grad or output.requires_grad):
            return None
        return RULE_FUNCTIONS[rule](layer, x, relayed, output, self.settings)

    # --- layers that pass relevance unchanged -------------------------------------------------------
    def passthrough(self, module: nn.Module) -> None:
        def keep_input(mod: nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...] | None:
            x = _first_tensor(args, self.names[mod])
            self.stash[mod] = x
            if x.requires_grad and getattr(mod, "inplace", False):
                return (x.clone(), *args[1:])  # the in-place op must not rewrite the input we route to
            return None

        def pass_relevance(mod: nn.Module, args: tuple[Any, ...], output: Tensor) -> Tensor | None:
            x = self.stash.pop(mod)
            return substitute(output, x) if x.requires_grad else None

        self.pre_hook(module, keep_input)
        self.forward_hook(module, pass_relevance)

    # --- average pooling: zennit's Norm rule ------------------------------------------------------------
    def average_pool(self, module: nn.Module) -> None:
        stabilizer = self.settings.stabilizer

        def relay_input(mod: nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...] | None:
            x = _first_tensor(args, self.names[mod])
            return (relay(x, x, x), *args[1:]) if x.requires_grad else None

        def normalise(mod: nn.Module, args: tuple[Any, ...], output: Tensor) -> Tensor | None:
            return combine(output, (output, inverse(output, stabilizer))) if output.requires_grad else None

        self.pre_hook(module, relay_input)
        self.forward_hook(module, normalise)

    # --- torchvision residual blocks -------------------------------------------------------------------
    def residual_block(self, block: nn.Module) -> None:
        stabilizer = self.settings.stabilizer

        def split_sum(mod: nn.Module, args: tuple[Any, ...], output: Tensor) -> Tensor | None:
            parts = self.stash.pop(mod, {})
            if "branch" not in parts:
                raise ValueError(f"residual block {self.names[mod]!r} did not run its last BatchNorm; LRP supports torchvision's own forward")
            branch = parts["branch"]
            identity = parts.get("identity", args[0])
            if not (branch.requires_grad or identity.requires_grad):
                return None
            scale = 1.0 / stabilize(branch.detach() + identity.detach(), stabilizer)
            return combine(output, (identity, identity.detach() * scale), (branch, branch.detach() * scale))

        self.forward_hook(block, split_sum)

    def residual_parts(self, block: nn.Module) -> None:
        """Capture a block's branch output (before the in-place `out += identity`) and its shortcut output."""
        end = block.bn3 if hasattr(block, "bn3") else block.bn2

        def keep_branch(mod: nn.Module, args: tuple[Any, ...], output: Tensor) -> Tensor:
            self.stash.setdefault(block, {})["branch"] = output
            return output.clone()

        self.forward_hook(end, keep_branch)
        if block.downsample is not None:

            def keep_identity(mod: nn.Module, args: tuple[Any, ...], output: Tensor) -> None:
                self.stash.setdefault(block, {})["identity"] = output

            self.forward_hook(block.downsample, keep_identity)

    # --- layers without a rule --------------------------------------------------------------------------
    def refuse(self, name: str, module: nn.Module) -> None:
        def raise_error(mod: nn.Module, args: tuple[Any, ...]) -> None:
            raise UnsupportedLayerError(
                f"LRP has no rule for layer {name!r} ({type(module).__name__}); supported layers: Conv1d, Conv2d, Linear, "
                "BatchNorm1d/2d, ReLU, (adaptive) max and average pooling, Flatten, Dropout, Identity, and torchvision ResNet "
                "blocks. Replace the layer, or explain this model with another method"
            )

        self.pre_hook(module, raise_error)


def _capture(name: str, captured: list[Tensor]) -> Any:
    def hook(module: nn.Module, args: tuple[Any, ...], output: object) -> Tensor:
        if not isinstance(output, Tensor):
            raise TypeError(f"target layer {name!r} returns {type(output).__name__}, not a tensor; choose a layer that returns one")
        if captured:
            raise ValueError(f"target layer {name!r} runs more than once per forward pass; choose a layer that runs once")
        leaf = output.detach().requires_grad_(True)
        captured.append(leaf)
        return leaf.clone()

    return hook


@contextmanager
def lrp_backward(
    model: nn.Module,
    rules: Mapping[str, str],
    settings: RuleSettings,
    target_layer: str | None = None,
    cache: DerivedWeights | None = None,
) -> Iterator[list[Tensor]]:
    """Inside the block, forward passes of `model` build LRP's backward graph (rules per Conv/Linear name).

    With `target_layer`, that layer's output is captured as a new leaf (yielded list; the graph below it
    is not built when the inputs do not require grad): the gradient of the scores with respect to it is
    the layer's relevance. A Conv/Linear merged with its BatchNorm is read at the BatchNorm's output.
    Weights the rules derive are kept in `cache` across calls when given (see `DerivedWeights`).
    """
    hooks = _Hooks(model, rules, settings)
    captured: list[Tensor] = []
    blocks = residual_blocks()
    try:
        layers = affine_layers(model, cache)
        merged = {layer.batch_norm for layer in layers if layer.batch_norm is not None}
        for layer in layers:
            hooks.affine(layer)
        for name, module in model.named_modules():
            if isinstance(module, blocks):
                hooks.residual_block(module)
            elif isinstance(module, nn.ReLU) or (isinstance(module, BATCH_NORMS) and module not in merged):
                hooks.passthrough(module)
            elif isinstance(module, AVG_POOLS):
                hooks.average_pool(module)
            elif next(module.children(), None) is None and not isinstance(module, SUPPORTED):
                hooks.refuse(name, module)
        if target_layer is not None:
            target = get_layer(model, target_layer)
            end = next((layer.end for layer in layers if layer.module is target), target)
            hooks.forward_hook(end, _capture(target_layer, captured))
        for module in model.modules():
            if isinstance(module, blocks):
                hooks.residual_parts(module)
        yield captured
    finally:
        hooks.remove()


def lrp_applies(model: nn.Module) -> bool:
    """Whether `LRP` applies to `model`: it has a Conv/Linear layer and a ReLU, and every `torch.nn` leaf
    layer has a rule (checked by type; a custom layer is only found out when it runs)."""
    modules = list(model.modules())
    return (
        any(isinstance(m, AFFINE) for m in modules)
        and any(isinstance(m, nn.ReLU) for m in modules)
        and not unsupported_layers(model)
    )
