"""Tables of this feature (added by its own Alembic revision)."""

from __future__ import annotations
