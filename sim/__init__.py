"""cocotb co-simulation of generated cores against the NumPy reference."""
