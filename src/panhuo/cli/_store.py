"""Shared pieces of the store-backed commands: the store of this workspace and the acting user option.

The store (and SQLAlchemy) is imported on use, so other commands do not pay for it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from panhuo.cli._common import workspace

if TYPE_CHECKING:
    from panhuo.store.db import Store

__all__ = ["AsUser", "store"]

AsUser = Annotated[
    str | None,
    typer.Option("--as", envvar="PANHUO_USER", show_envvar=True, help="the user you act as (required to change anything)"),
]


def store() -> Store:
    """The workspace's operational store, migrated on first use (SQLAlchemy is imported only here)."""
    from panhuo.store.db import open_store

    return open_store(workspace())
