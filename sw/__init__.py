"""Software half of tangentcore: datasets, surrogate-gradient training, export,
the NumPy integer reference and the kernels (NNGP, NTK, SG-NTK)."""
