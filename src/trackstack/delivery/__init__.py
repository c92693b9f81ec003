"""Journal-first delivery: the run journal, its senders, sync and the recovery of dead runs.

It reaches a backend only through ``protocol.Backend`` and imports nothing of
the tracker or config layers above it.
"""
