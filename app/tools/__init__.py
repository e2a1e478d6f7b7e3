"""Researcher tools: compare a claim with reproduced values, and plan how many seeds to run."""

from app.tools.service import compare, power

__all__ = ["compare", "power"]
