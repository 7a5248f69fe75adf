"""Model providers and the bundled tiny model."""
