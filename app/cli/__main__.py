"""``python -m app.cli`` (used to start the embedded worker with this interpreter)."""

from app.cli import main

main()
