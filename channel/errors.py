"""Errors of the radio model that a scenario or an allocation can cause.

Both derive from :class:`cosim.errors.CosimError` (so the CLI reports them as
one clear message) and from ``ValueError`` (they are bad values). Checks of a
programmer's arguments (a negative bandwidth passed by code) raise a plain
``ValueError`` instead.
"""

from __future__ import annotations

from cosim.errors import CosimError

__all__ = ["ChannelError", "PowerBudgetError", "TransferError"]


class ChannelError(CosimError, ValueError):
    """Base class of the user-facing errors of ``channel``."""


class PowerBudgetError(ChannelError):
    """A power allocation is negative or exceeds a device's power limit."""


class TransferError(ChannelError):
    """A transfer can never finish (no subchannel, no power) or exceeds the block cap."""
