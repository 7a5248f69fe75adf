"""Every Docker label ``ops`` writes, in one place.

Containers, networks and volumes of a stack carry ``ops.stack=<name>``: ``down``, ``status`` and
clean-up find a stack's objects by it and never touch anything without it. Images carry the
recipe labels, so ``ops images`` can say where an image came from and whether it is current.
"""

from __future__ import annotations

#: The stack a container, network or volume belongs to.
STACK = "ops.stack"
#: The profile service a container runs.
SERVICE = "ops.service"
#: Digest of everything that decides a container (see ``ContainerSpec.spec_hash``).
SPEC_HASH = "ops.spec-hash"
#: The Docker name of a stack's volume.
VOLUME = "ops.volume"
#: Throwaway containers ``ops doctor`` starts (never ``ops.stack``: those belong to reconcile).
DOCTOR = "ops.doctor"
#: Images ``ops`` made itself (the base image).
MANAGED = "ops.managed"
#: The recipe folder an image was built from, and the digest of its build context.
RECIPE = "ops.recipe"
RECIPE_HASH = "ops.recipe-hash"
#: The build stage an image was made by (every stage of a recipe build gets it, the final one too):
#: the untagged image a multi-stage build leaves behind is found, and removed, by it.
STAGE = "ops.stage"
#: The version a container runs (``ops.versions``): ``ops up`` tells a version change from another change.
VERSION = "ops.version"
#: Scratch volumes and trial containers of one ``ops upgrade`` run (never ``ops.stack``).
UPGRADE = "ops.upgrade"
