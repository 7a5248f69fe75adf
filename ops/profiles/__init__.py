"""Profiles: the YAML files that describe a stack, parsed once into typed objects."""

from ops.profiles.loader import LoadedProfile, ProfileRef, discover, load, load_path, resolve
from ops.profiles.mappings import PortMapping, VolumeMount
from ops.profiles.schema import (
    BuildSpec,
    GatewaySpec,
    HealthSpec,
    ModelSpec,
    Profile,
    ServiceSpec,
    VolumeSpec,
)

__all__ = [
    "BuildSpec",
    "GatewaySpec",
    "HealthSpec",
    "LoadedProfile",
    "ModelSpec",
    "PortMapping",
    "Profile",
    "ProfileRef",
    "ServiceSpec",
    "VolumeMount",
    "VolumeSpec",
    "discover",
    "load",
    "load_path",
    "resolve",
]
