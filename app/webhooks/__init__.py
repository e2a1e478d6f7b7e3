"""Outgoing webhooks: signed, retried with backoff, with a delivery log for their owner."""
