"""Layer 3, submission: what MLCommons reads. ``accuracy.txt`` as MLCommons' evaluation writes
it, the run's settings as a ``user.conf``, the results tree the official checker reads
(``--mlperf-submission-dir``; :mod:`.system_type`, :mod:`.predict`: which benchmarks a system
holds, what the checker will reject) and TEST06 (:mod:`.compliance`). Beside ``gate/`` in its layer;
may import ``core``, ``data``/``accuracy``/``embedded`` and ``backends``/``loadgen``."""
