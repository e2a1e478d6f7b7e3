"""The worked example of STATISTICS.md §7, shared by the tests."""

C = [97.1, 96.8, 97.4, 97.0, 97.2]  # claimed per seed
R1 = [97.0, 96.9, 97.3, 96.8, 97.1]  # an honest reproduction
R2 = [95.9, 96.2, 96.0, 95.7, 96.1]  # a clear shortfall
DELTA = 0.5
ALPHA = 0.05
