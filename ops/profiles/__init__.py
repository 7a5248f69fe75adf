"""Profiles: the YAML files that describe a stack, parsed once into typed objects."""

from ops.profiles.loader import LoadedProfile, ProfileRef, discover, load, load_path, resolve
from ops.profiles.schema import (
    BuildSpec,
    GatewaySpec,
    HealthSpec,
    ModelSpec,
    PortMapping,
    Profile,
    ServiceSpec,
    VolumeMount,
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
