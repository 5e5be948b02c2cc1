"""`lit-xai fit|validate|test|predict`: Lightning's CLI over any LightningModule and LightningDataModule.

Models and datamodules are chosen by `class_path` (subclass mode), configs compose (`-c a.yaml -c b.yaml`),
the datamodule's `num_classes` and `input_shape` are passed to the model, the run's config is saved next
to its logs (overwriting; not saved at all when the run has no logger and no `trainer.default_root_dir`,
rather than into the current directory), the seed defaults to 0, misspelt options are errors (no abbreviations), and
`--lr_scheduler OneCycleLR` / `CyclicLR` step every batch (as they are defined).
"""

from __future__ import annotations

from typing import Any

import torch
from lightning.pytorch import LightningDataModule, LightningModule, Trainer
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI, SaveConfigCallback
from lightning.pytorch.utilities import rank_zero_info

import lit_xai.callbacks  # noqa: F401  (registers class names for short class_path values)
import lit_xai.datamodules  # noqa: F401
import lit_xai.explainers  # noqa: F401
import lit_xai.metrics  # noqa: F401
import lit_xai.models  # noqa: F401


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


def build_cli(args: list[str] | None = None, run: bool = True) -> LitXaiCLI:
    """The CLI object (parses `args`, or sys.argv when None; runs the subcommand when `run`)."""
    return LitXaiCLI(
        LightningModule,
        LightningDataModule,
        subclass_mode_model=True,
        subclass_mode_data=True,
        save_config_callback=SaveConfigToLogDir,
        save_config_kwargs={"overwrite": True},
        seed_everything_default=0,
        parser_kwargs={"allow_abbrev": False},  # a misspelt option is an error, never a silent expansion
        args=args,
        run=run,
    )


def main() -> None:
    """Console entry point of `lit-xai`."""
    build_cli()


if __name__ == "__main__":
    main()
