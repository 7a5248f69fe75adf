"""``ops backup`` and ``ops restore``: a stack's volumes and state in one checked archive (:mod:`ops.archive`).

:mod:`ops.backup.volumes` copies named volumes (to a tar, back, or volume to volume).
"""
