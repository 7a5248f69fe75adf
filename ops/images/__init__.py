"""Images ``ops`` builds locally, starting from a Debian base that needs no registry.

``ops.images.base`` makes sure the base image exists; ``ops.images.debootstrap`` makes
its root filesystem when no registry can be reached.
"""
