"""``ops bundle``: carry what a profile needs to a machine with no network, in one archive.

A bundle is an :mod:`ops.archive` of kind ``bundle``. Its members:

* ``models/<folder>/...``: the recipe models' folders from the model cache (bundled models ship
  with ``ops``; catalog models need the catalog online and are left out, said so in the manifest);
* ``wheels/<file>.whl``: ``ops`` itself and its pinned dependencies for this platform, so
  ``pip install --no-index --find-links DIR ops`` works on a fresh machine;
* ``profile/<file>.yaml``: the profile the bundle was made for;
* ``images/images.tar``: one ``docker save`` of the services' images and the base image (shared
  layers once; image ids and labels kept, so a loaded build still counts as current), last, so
  that everything else is staged before Docker changes.

The manifest's ``meta`` says what each member is (see :mod:`ops.bundle.create`). Loading
(:mod:`ops.bundle.load`) verifies the whole archive before it changes anything, and registers what
it loaded (:mod:`ops.bundle.registry`) so ``ops up`` uses the loaded images instead of building.
"""

from __future__ import annotations

#: The archive kind of a bundle.
KIND = "bundle"
IMAGES_MEMBER = "images/images.tar"
MODELS_DIR = "models"
WHEELS_DIR = "wheels"
PROFILE_DIR = "profile"
