"""Leaderboards, cross-benchmark rankings, reproduction-rate statistics, badges and exports."""
