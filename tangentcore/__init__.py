"""tangentcore: FPGA co-design for binary and spiking neural-network inference.

The subpackages are ``tangentcore.sw`` (training, datasets, the integer
reference, kernels), ``tangentcore.hw`` (Amaranth cores) and
``tangentcore.sim`` (cocotb co-simulation). This package contains what all
three share: the command line, the config schema and the manifest schema.
"""

__version__ = "0.1.0"
