"""Accounts, roles, API tokens and worker tokens."""
