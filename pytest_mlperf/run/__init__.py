"""Layer 4, run: one benchmark test in its call phase. The engine pool (:mod:`.engines`),
checks before any engine starts (:mod:`.preflight`), the test's run (:mod:`.benchmark`: start,
run loadgen, score, judge, record), the loadgen runs a test makes (:mod:`.runs`, with
:mod:`.repeat` and :mod:`.peak`) and xdist workers pinned to devices (:mod:`.devices`).
May import every layer below it (core, data/accuracy/embedded, backends/loadgen,
gate/submission); never ``live``, ``report`` or the pytest surface.
"""
