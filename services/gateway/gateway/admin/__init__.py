"""The pod's closed admin surface: drain, undrain, state and metrics on the admin port."""
