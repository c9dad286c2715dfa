"""Layer 0, core: the plain data every other layer shares, and the process-level helpers.

Owns the words (:mod:`.vocabulary`: Scenario, Mode, Profile), what a benchmark module declares
(:mod:`.declaration`), where a run stands in its session (:mod:`.place`), the record of a test
and what it ran on (:mod:`.record`, :mod:`.system`, :mod:`.details`: what crosses process and
file boundaries), the StashKeys the plugin's state lives under (:mod:`.stash`), the CPU's thread
facts (:mod:`.cpu`), calls that must end (:mod:`.bounded`) and the one path signals take to the
reports (:mod:`.shutdown`). May import nothing of the package outside ``core``.
"""
