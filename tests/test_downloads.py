"""Offline, every download (datasets with download=True, pretrained weights) fails with one clear message:
what it tried to fetch and from where, where to put the files by hand, and how to turn the download off."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from urllib.error import URLError

import pytest
import torch

from lit_xai.datamodules import CIFARDataModule, Food101DataModule
from lit_xai.downloads import DownloadError, download_message, explain_download_failure
from lit_xai.models import ImageClassifier, WeightsUnavailableError


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """No network: name resolution and connections fail as they do on a machine without one; returns the
    hosts that were tried."""
    tried: list[str] = []

    def no_address(host: object, *args: object, **kwargs: object) -> None:
        tried.append(str(host))
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    def no_connection(self: socket.socket, address: object) -> None:
        raise OSError(101, "Network is unreachable")

    monkeypatch.setattr(socket, "getaddrinfo", no_address)
    monkeypatch.setattr(socket.socket, "connect", no_connection)
    return tried


def test_message_names_what_where_by_hand_and_how_to_turn_it_off() -> None:
    with pytest.raises(DownloadError) as info, explain_download_failure("X (x.tar)", "https://h/x.tar", "put x.tar in /d", "download=false"):
        raise URLError("no network")
    assert str(info.value) == (
        "could not download X (x.tar) from https://h/x.tar (URLError: <urlopen error no network>).\n"
        "  to put it in place by hand: put x.tar in /d\n"
        "  to turn the download off: download=false"
    )
    assert isinstance(info.value.__cause__, URLError)
    assert download_message("X", "u", "b", "s") == "could not download X from u.\n  to put it in place by hand: b\n  to turn the download off: s"
    with pytest.raises(ValueError, match="not a network error"), explain_download_failure("X", "u", "b", "s"):
        raise ValueError("not a network error")  # only network failures are rewritten


@pytest.mark.parametrize("variant", [10, 100])
def test_cifar_offline(tmp_path: Path, offline: list[str], variant: int) -> None:
    data = CIFARDataModule(data_dir=tmp_path, variant=variant, download=True)  # type: ignore[arg-type]
    with pytest.raises(DownloadError) as info:
        data.prepare_data()
    message = str(info.value)
    folder = "cifar-10-batches-py" if variant == 10 else "cifar-100-python"
    assert message.startswith(f"could not download CIFAR-{variant} (cifar-{variant}-python.tar.gz) from https://www.cs.toronto.edu/~kriz/cifar-{variant}-python.tar.gz (")
    assert f"extract it into {tmp_path}, so that {tmp_path / folder} holds the python pickle batches" in message
    assert "to turn the download off: download=false (--data.init_args.download=false)" in message
    assert isinstance(info.value.__cause__, OSError) and offline[0] == "www.cs.toronto.edu"
    assert not list(tmp_path.glob("*.tar.gz"))  # nothing half-written left behind


def test_food101_offline(tmp_path: Path, offline: list[str]) -> None:
    data = Food101DataModule(data_dir=tmp_path, download=True)
    with pytest.raises(DownloadError) as info:
        data.prepare_data()
    message = str(info.value)
    assert message.startswith("could not download Food-101 (food-101.tar.gz, 5 GB) from http://data.vision.ee.ethz.ch/cvl/food-101.tar.gz (")
    assert f"extract it into {tmp_path}, so that {tmp_path / 'food-101'} holds images/ and meta/" in message
    assert "download=false (--data.init_args.download=false)" in message
    assert offline == ["data.vision.ee.ethz.ch"] * len(offline) and offline


def test_pretrained_weights_offline(tmp_path: Path, offline: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(WeightsUnavailableError) as info:
        ImageClassifier(num_classes=7, input_shape=(3, 32, 32), backbone="resnet18", weights="DEFAULT")
    message = str(info.value)
    cache = os.path.join(str(tmp_path), "hub", "checkpoints")
    assert isinstance(info.value, DownloadError)
    assert message.startswith(
        f"could not download pretrained weights ResNet18_Weights.IMAGENET1K_V1 (not in the torch hub cache {cache}) "
        "from https://download.pytorch.org/models/resnet18-f37072fd.pth ("
    )
    assert f"into {cache} here" in message
    assert "to turn the download off: weights=null (--model.init_args.weights=null)" in message
    assert offline == ["download.pytorch.org"]
    assert torch.hub.get_dir() == os.path.join(str(tmp_path), "hub")


def test_cli_fit_offline_ends_with_the_message_not_a_traceback(
    tmp_path: Path, offline: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`lit-xai fit -c configs/cifar10_resnet18.yaml` on a machine without network."""
    import sys

    from lit_xai.cli import main

    root = Path(__file__).resolve().parents[1]
    monkeypatch.setattr(sys, "argv", [
        "lit-xai", "fit", "-c", str(root / "configs" / "cifar10_resnet18.yaml"), f"--data.init_args.data_dir={tmp_path / 'cifar'}",
        f"--trainer.logger.init_args.save_dir={tmp_path}", "--trainer.accelerator=cpu", "--trainer.devices=1",
    ])
    with pytest.raises(SystemExit) as info:
        main()
    assert str(info.value).startswith("lit-xai: could not download CIFAR-10 (cifar-10-python.tar.gz) from https://www.cs.toronto.edu/")
    assert "to turn the download off: download=false" in str(info.value)
