"""Layer 3, gate: judging a run, from its figures alone. The verdict of one run
(:mod:`.verdict`), ``--mlperf-threshold`` rules (:mod:`.thresholds`), stored sessions per
machine (:mod:`.storage`) and comparisons with them (:mod:`.compare`). Light: no engine, no
loadgen import. May import ``core``, ``data``/``accuracy``/``embedded`` and
``backends``/``loadgen``; the gate's pytest plugin is :mod:`pytest_mlperf.gating`, on the
surface.
"""
