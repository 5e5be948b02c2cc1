"""One message for every download that fails (datasets with `download=True`, pretrained weights).

Offline, torchvision and torch.hub end in a raw `urllib.error.URLError` traceback. `explain_download_failure`
turns any network failure (an `OSError`: URLError, HTTPError, socket and connection errors, time-outs)
inside its block into a `DownloadError` that says what it tried to fetch and from where, how to put the
files in place by hand, and how to turn the download off.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


class DownloadError(RuntimeError):
    """A download failed (e.g. no network); the message says what, where the files go by hand, and how to
    turn the download off. The network error is its `__cause__`."""


def download_message(what: str, url: str, by_hand: str, switch_off: str, error: BaseException | None = None) -> str:
    """The text of a failed download."""
    cause = f" ({type(error).__name__}: {error})" if error is not None else ""
    return (
        f"could not download {what} from {url}{cause}.\n"
        f"  to put it in place by hand: {by_hand}\n"
        f"  to turn the download off: {switch_off}"
    )


@contextmanager
def explain_download_failure(
    what: str, url: str, by_hand: str, switch_off: str, error_class: type[DownloadError] = DownloadError
) -> Iterator[None]:
    """Run a download; a network failure (`OSError`) becomes `error_class(download_message(...))`."""
    try:
        yield
    except OSError as error:  # urllib's URLError / HTTPError, socket and connection errors, time-outs
        raise error_class(download_message(what, url, by_hand, switch_off, error)) from error
