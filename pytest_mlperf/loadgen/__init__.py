"""Layer 2, loadgen: MLPerf's load generator driven from Python. Settings from mlperf.conf,
the profile, user.conf, the marker and the command line (:mod:`.settings`,
:mod:`.mlperf_conf`, :mod:`.userconf`, :mod:`.ranges`), a run's time limit
(:mod:`.budget`), the SUT bridge to a backend (:mod:`.sut`), one run into one folder
(:mod:`.runner`) and the log readers (:mod:`.logs`). Beside ``backends/`` in its layer; may
import ``core``, ``data`` and ``backends``.
"""
