"""Framework bridges: training code logs through any trackstack tracker.

One module per framework, each behind its own extra and importing its framework
when imported itself (never from the core):

- ``trackstack.integrations.lightning``: ``TrackstackLogger``, a Lightning ``Logger``;
- ``trackstack.integrations.transformers``: ``TrackstackCallback``, a ``TrainerCallback``;
- ``trackstack.integrations.accelerate``: ``TrackstackTracker``, a ``GeneralTracker``.

What they share (finding the tracker, the run on rank 0, logging that never raises
into training) lives in ``trackstack.integrations.bridge``.
"""
