"""A plug-in module whose named attribute is not a function."""
sdpa = 42
encoding = "sinusoidal"
