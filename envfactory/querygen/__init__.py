"""Chains -> gold execution -> queries (explicit + calibrated refinement) -> rollouts -> datasets."""
