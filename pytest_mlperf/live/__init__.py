"""Layer 5, live: a session as it runs. Per-run trackers that turn loadgen's progress into
status files and figures (:mod:`.progress`), the status files themselves (:mod:`.status`,
atomic JSON) and ``python -m pytest_mlperf.watch`` (:mod:`.watch`). May import every layer
below it; never the pytest surface. Beside ``report/`` in its layer.
"""
