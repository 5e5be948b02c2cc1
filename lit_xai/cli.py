"""`lit-xai fit|validate|test|predict`: Lightning's CLI over any LightningModule and LightningDataModule.

Models and datamodules are chosen by `class_path` (subclass mode), configs compose (`-c a.yaml -c b.yaml`),
the datamodule's `num_classes` and `input_shape` are passed to the model, the run's config is saved next
to its logs (overwriting; not saved at all when the run has no logger and no `trainer.default_root_dir`,
rather than into the current directory), the seed defaults to 0, misspelt options are errors (no abbreviations),
`--lr_scheduler OneCycleLR` / `CyclicLR` step every batch (as they are defined), a gloo process group
that Lightning creates for a CPU DDP run is destroyed at exit (lit_xai.callbacks.ProcessGroupTeardown),
and a failed download ends with its message (lit_xai.downloads), not a traceback.

The ExplainerCallback has its own top-level group, `xai` (`xai.explainers`, `xai.metrics`,
`xai.probe_size`, ...), so that a set of explainers, a set of metrics, a dataset and a model come from
separate files that compose: `-c quickstart.yaml -c all_explainers.yaml -c all_metrics.yaml`. The group is
optional: a run whose configs and arguments set nothing under `xai` has no ExplainerCallback (unless one
is attached by hand in `trainer.callbacks`, which keeps working). Giving both, an `xai` group and an
ExplainerCallback in `trainer.callbacks`, is an error rather than two callbacks that explain everything
twice and log the same keys.
"""

from __future__ import annotations

from typing import Any

import torch
from lightning.pytorch import Callback, LightningDataModule, LightningModule, Trainer
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI, SaveConfigCallback
from lightning.pytorch.utilities import rank_zero_info

import lit_xai.callbacks  # noqa: F401  (registers class names for short class_path values)
from lit_xai.callbacks import ExplainerCallback, ProcessGroupTeardown
import lit_xai.datamodules  # noqa: F401
import lit_xai.explainers  # noqa: F401
import lit_xai.metrics  # noqa: F401
import lit_xai.models  # noqa: F401
from lit_xai.downloads import DownloadError


XAI_GROUP = "xai"
"""The top-level CLI group of the ExplainerCallback's arguments."""

PER_BATCH_SCHEDULERS = (torch.optim.lr_scheduler.OneCycleLR, torch.optim.lr_scheduler.CyclicLR)
"""Schedulers defined over optimizer steps: `--lr_scheduler OneCycleLR` / `CyclicLR` step every batch."""


class SaveConfigToLogDir(SaveConfigCallback):
    """Lightning's SaveConfigCallback, except that a run without a logger and without an explicit
    `trainer.default_root_dir` saves no config: Lightning would write `config.yaml` into the current
    directory (its default root), which is how a run's config ends up in a source tree."""

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        if trainer.logger is None and not self.config.get("trainer.default_root_dir"):
            if not self.already_saved:
                rank_zero_info("lit-xai: the run has no logger and no trainer.default_root_dir, so its config.yaml is not saved")
                self.already_saved = True
            return
        super().setup(trainer, pl_module, stage)


class LitXaiCLI(LightningCLI):
    @staticmethod
    def configure_optimizers(
        lightning_module: LightningModule, optimizer: torch.optim.Optimizer, lr_scheduler: Any = None
    ) -> Any:
        """As LightningCLI's, except that per-batch schedulers (one-cycle, cyclic) step every batch."""
        if isinstance(lr_scheduler, PER_BATCH_SCHEDULERS):
            return {"optimizer": optimizer, "lr_scheduler": {"scheduler": lr_scheduler, "interval": "step"}}
        return LightningCLI.configure_optimizers(lightning_module, optimizer, lr_scheduler)

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.link_arguments("data.num_classes", "model.init_args.num_classes", apply_on="instantiate")
        parser.link_arguments("data.input_shape", "model.init_args.input_shape", apply_on="instantiate")
        # optional (None unless some `xai` key is given); subclass mode also takes a subclass of the callback
        parser.add_lightning_class_args(ExplainerCallback, XAI_GROUP, subclass_mode=True, required=False)

    def instantiate_trainer(self, **kwargs: Any) -> Trainer:
        """As LightningCLI's, except that an absent `xai` group adds no callback, and an `xai` group together
        with an ExplainerCallback in `trainer.callbacks` is refused."""
        parser = self._parser(self.subcommand)
        extra: list[Callback] = [c for c in (self._get(self.config_init, key) for key in parser.callback_keys) if c is not None]
        trainer_config = {**self._get(self.config_init, "trainer", default={}), **kwargs}
        attached = trainer_config.get("callbacks") or []
        attached = attached if isinstance(attached, list) else [attached]
        if any(isinstance(c, ExplainerCallback) for c in attached) and any(isinstance(c, ExplainerCallback) for c in extra):
            parser.error(
                f"an ExplainerCallback is given twice: in the `{XAI_GROUP}` group and in `trainer.callbacks`. Keep one: the "
                f"`{XAI_GROUP}` group (`{XAI_GROUP}.explainers`, `{XAI_GROUP}.metrics`, ...) composes across config files; "
                "move the callback's init_args there and drop it from trainer.callbacks"
            )
        return self._instantiate_trainer(trainer_config, extra)


def build_cli(args: list[str] | None = None, run: bool = True) -> LitXaiCLI:
    """The CLI object (parses `args`, or sys.argv when None; runs the subcommand when `run`)."""
    return LitXaiCLI(
        LightningModule,
        LightningDataModule,
        subclass_mode_model=True,
        subclass_mode_data=True,
        trainer_defaults={"callbacks": [ProcessGroupTeardown()]},  # always present, not configurable
        save_config_callback=SaveConfigToLogDir,
        save_config_kwargs={"overwrite": True},
        seed_everything_default=0,
        parser_kwargs={"allow_abbrev": False},  # a misspelt option is an error, never a silent expansion
        args=args,
        run=run,
    )


def main() -> None:
    """Console entry point of `lit-xai`; a failed download ends with its message, not a traceback."""
    try:
        build_cli()
    except DownloadError as error:
        raise SystemExit(f"lit-xai: {error}") from None


if __name__ == "__main__":
    main()
