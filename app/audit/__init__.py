"""The append-only audit log of who did what."""
