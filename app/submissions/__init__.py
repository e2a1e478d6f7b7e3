"""Submissions: intake of reproduction packages, versions, the lint."""
