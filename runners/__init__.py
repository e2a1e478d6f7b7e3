"""Reprise runner workers: lease jobs over HTTP and execute them in a backend.

This package never imports ``app``: everything it knows about the service arrives as JSON over
HTTP or as files, so a worker can run on a machine with no database access.
"""
