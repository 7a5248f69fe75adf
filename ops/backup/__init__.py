"""``ops backup`` and ``ops restore``: a stack's volumes and state in one checked archive (:mod:`ops.archive`).

- :mod:`ops.backup.volumes` copies named volumes (to a tar, back, or volume to volume);
- :mod:`ops.backup.take` writes a backup (:func:`take`), :mod:`ops.backup.restoring` reads one back;
- :mod:`ops.backup.secretbox` encrypts the secrets with the passphrase.
"""

from __future__ import annotations

from ops.backup.restoring import RestoreReport, needs_passphrase, restore
from ops.backup.take import BackupReport, default_output, take

__all__ = ["BackupReport", "RestoreReport", "default_output", "needs_passphrase", "restore", "take"]
