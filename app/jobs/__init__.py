"""The job queue and the HTTP worker protocol."""
