"""MLPerf submission artifacts: ``accuracy.txt`` as MLCommons' evaluation writes it, the
run's settings as a ``user.conf``, and the results tree the official checker reads
(``--mlperf-submission-dir``)."""
