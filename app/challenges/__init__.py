"""Replication challenges: a claim, independent attempts, a pooled estimate and a consensus."""
