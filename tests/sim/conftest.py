"""Fixtures of the co-simulation tests: ``cosim`` checks a manifest's core bit-exact in this test's tmp_path."""

from tangentcore.sim.testing import cosim, cosim_cache_dir  # noqa: F401
