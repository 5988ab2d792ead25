"""Deterministic demo data: web events and call Tasks with a recorded truth."""
