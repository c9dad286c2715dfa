"""Layer 5, report: everything people read, built from records on the controller. The
terminal table (:mod:`.terminal`), the gate's sections (:mod:`.gating`), the live line
(:mod:`.live`), pytest-html panels and plots (:mod:`.html`, :mod:`.plots`), ``--mlperf-json``
(:mod:`.results_json`), CI files (:mod:`.ci`), the files of xdist workers on other hosts
(:mod:`.remote`) and their registration (:mod:`.hooks`). May
import every layer below it; never the pytest surface.
"""
