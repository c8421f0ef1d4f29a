"""Amaranth cores generated from manifests, and their cycle model."""
