"""Reading the user's batches: what the callback explains, with which labels, regions and extra inputs.

A batch is read, in this order, by:

* `batch_transform`: a callable `batch -> XaiBatch` (anything the user's data has: several inputs,
  nested dicts, Hugging Face `BatchEncoding`s);
* `batch_keys` for mapping batches (torchgeo, Hugging Face datasets): `{"inputs": "image", "labels": "label",
  "regions": "mask", "forward_args": ["meta"]}` (only "inputs" is required);
* the default rule: a tensor (inputs only), or a sequence `(inputs, labels, masks_or_boxes, ...)`.

A batch none of these can read is an error that names the two options.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple, Optional, Union

from torch import Tensor

BATCH_KEYS = ("inputs", "labels", "regions", "forward_args")


class XaiBatch(NamedTuple):
    """What the callback reads from a batch: the inputs it explains, their labels (for `targets="label"`),
    the objects' masks or boxes (localisation metrics; a segmentation model's `RegionTarget` masks) and
    the model's extra per-sample inputs (`model(inputs, *forward_args)`)."""

    inputs: Tensor
    labels: Optional[Tensor] = None
    regions: Optional[Tensor] = None
    forward_args: Optional[tuple[Tensor, ...]] = None

    def head(self, count: int) -> XaiBatch:
        """The first `count` samples."""
        args = None if self.forward_args is None else tuple(arg[:count] for arg in self.forward_args)
        return XaiBatch(self.inputs[:count], *(None if p is None else p[:count] for p in (self.labels, self.regions)), args)


BatchTransform = Callable[[Any], XaiBatch]
BatchKeys = Mapping[str, Union[str, Sequence[str]]]


def check_batch_keys(batch_keys: Optional[BatchKeys]) -> Optional[dict[str, Any]]:
    if batch_keys is None:
        return None
    if not isinstance(batch_keys, Mapping) or "inputs" not in batch_keys or set(batch_keys) - set(BATCH_KEYS):
        raise ValueError(
            f"batch_keys must map {BATCH_KEYS} (inputs required) to the batch's keys, e.g. {{'inputs': 'image', 'labels': "
            f"'label'}}, got {batch_keys!r}"
        )
    return dict(batch_keys)


def options_hint() -> str:
    return (
        "set the callback's batch_keys (for dict batches, e.g. batch_keys={'inputs': 'image', 'labels': 'label'}; in YAML "
        "xai.batch_keys) or batch_transform (a callable batch -> lit_xai.callbacks.XaiBatch(inputs, labels, regions, forward_args))"
    )


def as_args(value: Any) -> Optional[tuple[Tensor, ...]]:
    if value is None:
        return None
    return (value,) if isinstance(value, Tensor) else tuple(value)


def read_batch(batch: Any, batch_transform: Optional[BatchTransform] = None, batch_keys: Optional[dict[str, Any]] = None) -> XaiBatch:
    """The batch as an `XaiBatch` by the rules of the module docstring, or a ValueError naming the options."""
    if batch_transform is not None:
        read = batch_transform(batch)
        if isinstance(read, XaiBatch) and isinstance(read.inputs, Tensor):
            return read._replace(forward_args=as_args(read.forward_args))
        raise ValueError(f"batch_transform must return lit_xai.callbacks.XaiBatch(inputs, labels, regions, forward_args), got {type(read).__name__}")
    if batch_keys is not None:
        if not isinstance(batch, Mapping):
            raise ValueError(f"batch_keys is set but the batch is a {type(batch).__name__}, not a mapping; {options_hint()}")
        missing = [key for name, keys in batch_keys.items() for key in ([keys] if isinstance(keys, str) else keys) if key not in batch]
        if missing:
            raise ValueError(f"the batch has keys {sorted(map(str, batch))}, not {missing} named in batch_keys; {options_hint()}")
        args = batch_keys.get("forward_args")
        forward_args = None if args is None else tuple(batch[k] for k in ([args] if isinstance(args, str) else args))
        return XaiBatch(batch[batch_keys["inputs"]], *(batch.get(batch_keys[k]) if k in batch_keys else None for k in ("labels", "regions")), forward_args)
    if isinstance(batch, Tensor):
        return XaiBatch(batch)
    if isinstance(batch, (list, tuple)) and batch and isinstance(batch[0], Tensor):
        parts = [part if isinstance(part, Tensor) else None for part in batch[1:3]]
        return XaiBatch(batch[0], *parts)
    kind = f"a mapping with keys {sorted(map(str, batch))}" if isinstance(batch, Mapping) else f"a {type(batch).__name__}"
    raise ValueError(f"ExplainerCallback cannot read the batch: it is {kind}, not a tensor or (inputs, labels, ...); {options_hint()}")
