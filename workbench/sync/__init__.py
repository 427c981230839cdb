"""Diff sync of segments to Mailchimp, Klaviyo, Meta, Google and CSV routes.

Entry point: :func:`run_sync` (the ``workbench sync`` command). See ``docs/sync.md``.
"""

from workbench.sync.engine import DESTINATIONS, default_state_path, run_sync
from workbench.sync.errors import SyncConfigError, SyncError, SyncInputError
from workbench.sync.settings import SyncSettings
from workbench.sync.synclog import sync_summary

__all__ = [
    "DESTINATIONS",
    "SyncConfigError",
    "SyncError",
    "SyncInputError",
    "SyncSettings",
    "default_state_path",
    "run_sync",
    "sync_summary",
]
