"""The model host: one background process per stack that loads the models and serves the gateway."""
