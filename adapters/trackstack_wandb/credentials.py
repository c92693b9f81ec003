"""Taking back the API key wandb keeps for the whole process after a run starts with it.

``wandb.init`` with an explicit key makes it the session's credentials
(``wandb.sdk.lib.wbauth``), and a later ``wandb.init`` of another tracker,
configured without a key, would go online with it. Once the run has started
(wandb-core holds the key for that run), the session gets back what it had.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from pydantic import SecretStr

__all__ = ["session_key_returned"]


@contextmanager
def session_key_returned(key: SecretStr | None, base_url: str | None) -> Iterator[None]:
    """Around a ``wandb.init`` given ``key``: afterwards the session's credentials are as before."""
    if key is None:
        yield
        return
    from wandb.sdk.lib import wbauth

    host = wbauth.HostUrl(base_url or _default_base_url())
    before = wbauth.session_credentials(host=host)
    try:
        yield
    finally:
        after = wbauth.session_credentials(host=host)
        if after is not before and _holds(after, key):
            wbauth.unauthenticate_session()
            if before is not None:
                wbauth.use_explicit_auth(before, source="trackstack")


def _holds(auth: Any, key: SecretStr) -> bool:
    return getattr(auth, "api_key", None) == key.get_secret_value()


def _default_base_url() -> str:
    import wandb

    return str(wandb.Settings().base_url)
