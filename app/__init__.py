"""Reprise: community replication challenges for machine-learning claims."""

__version__ = "0.1.0"
