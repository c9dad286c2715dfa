"""The regression gate: thresholds from the command line, stored sessions, comparisons.

A plugin object (:class:`Gate`) registered by ``pytest_configure``:

- at collection, ``--mlperf-threshold`` rules are merged into each benchmark's gates
  (:mod:`.thresholds`);
- on the controller at start, the stored session ``--mlperf-compare`` names is found
  (:mod:`.storage`) and handed to xdist workers through ``workerinput``;
- where a benchmark ran, :func:`after_run` adds its repeats, peak search and compliance
  results to the record and fails the test on a TEST06 miss or a ``--mlperf-compare-fail``
  regression against its stored run (:mod:`.compare`), naming the old value, the new one and
  the bound; a stored run from other hardware or settings gives a warning, not a comparison;
- on the controller at the end, ``--mlperf-save`` stores the session's records, and the
  terminal shows the deltas, the spread of repeats, the peak searches and compliance results.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pytest

from pytest_mlperf.core import stash
from pytest_mlperf.gate import compare, storage

#: the stored session this process compares with (None: none)
STORED = pytest.StashKey["storage.StoredSession | None"]()
#: the file --mlperf-save wrote, for the summary
SAVED = pytest.StashKey["Path | None"]()
#: header lines about the gate (what is compared, what is saved, audit.config found)
NOTES = pytest.StashKey[list[str]]()
WORKERINPUT_KEY = "mlperf_compare_path"


class GateWarning(pytest.PytestWarning):
    """A comparison that could not be made, a stray audit.config, a threshold for no test."""


def _is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def _this_machine() -> str:
    from pytest_mlperf.core.system import device

    return storage.machine_id(device())


class Gate:
    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        opts = config.stash[stash.OPTIONS]
        config.stash[NOTES] = []
        config.stash[SAVED] = None
        config.stash[STORED] = self._stored(opts)
        if not _is_worker(config):
            self._check_audit_config()

    # -- the stored session -------------------------------------------------------------------
    def _stored(self, opts: Any) -> storage.StoredSession | None:
        if opts.compare is None:
            return None
        notes = self.config.stash[NOTES]
        if _is_worker(self.config):
            path = self.config.workerinput.get(WORKERINPUT_KEY)  # type: ignore[attr-defined]
            return storage.load(Path(path)) if path else None
        machine = _this_machine()
        try:
            found = storage.find(opts.storage, machine, opts.compare)
        except storage.StorageError as exc:
            if opts.compare == "last" and isinstance(exc, storage.NoStoredSession):
                # The first pipeline on a runner has nothing to compare with yet.
                notes.append(f"nothing to compare with: {exc}")
                self.config.issue_config_time_warning(GateWarning(f"--mlperf-compare: {exc}"), 2)
                return None
            raise pytest.UsageError(f"--mlperf-compare (ini mlperf_compare): {exc}") from None
        notes.append(f"comparing with {found.path} (saved {found.saved}, commit "
                     f"{found.commit or 'unknown'}, {len(found.records)} records)")
        if found.machine != machine:
            notes.append(f"  stored on machine {found.machine}; this is {machine}: figures are "
                         "shown, not compared")
        return found

    def _check_audit_config(self) -> None:
        from pytest_mlperf.submission.compliance import stray_audit_config

        for path in stray_audit_config(Path.cwd(), self.config.invocation_params.dir):
            message = (f"{path} exists: loadgen would turn a run into a compliance run if handed it. "
                       "pytest-mlperf never hands it to loadgen (use --mlperf-compliance=TEST06); "
                       "remove the file")
            self.config.stash[NOTES].append(f"WARNING: {message}")
            self.config.issue_config_time_warning(GateWarning(message), 2)

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        stored = self.config.stash[STORED]
        node.workerinput[WORKERINPUT_KEY] = str(stored.path) if stored is not None else ""

    # -- collection ---------------------------------------------------------------------------
    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        rules = self.config.stash[stash.OPTIONS].thresholds
        if not rules:
            return
        from pytest_mlperf.gate import thresholds
        from pytest_mlperf.spec import MARKER

        for item in items:
            spec = item.stash.get(stash.SPEC, None)
            marker = item.get_closest_marker(MARKER)
            if spec is None or marker is None:
                continue
            item.stash[stash.SPEC] = thresholds.apply(spec, marker.kwargs, rules)
        # a rule that gates nothing collected is a usage error (run/preflight.py)

    # -- the controller: header, save, summary -------------------------------------------------
    def pytest_report_header(self, config: pytest.Config) -> list[str]:
        opts = config.stash[stash.OPTIONS]
        lines = [f"mlperf: {note}" for note in config.stash[NOTES]]
        if opts.save is not None:
            lines.append(f"mlperf: saving this session's records to {opts.storage / _this_machine()}/")
        return lines

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        config = session.config
        opts = config.stash[stash.OPTIONS]
        if _is_worker(config) or opts.save is None:
            return
        records = config.stash.get(stash.RECORDS, [])
        if not records:
            return
        from pytest_mlperf.core.system import git_commit

        commit = records[0].system.commit or git_commit(str(config.rootpath))
        from pytest_mlperf.gate.outputs import outputs_to_store

        try:
            config.stash[SAVED] = storage.save(opts.storage, records, commit=commit, label=opts.save or None,
                                               outputs=outputs_to_store(records))
        except OSError as exc:  # named, fails the exit status, stops nothing else
            from pytest_mlperf.report.outputs import write_failed

            write_failed(session, f"the stored session in {opts.storage}", exc)

    @pytest.hookimpl(trylast=True)
    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        from pytest_mlperf.report import gating as gating_report

        config = self.config
        records = config.stash.get(stash.RECORDS, [])
        stored = config.stash[STORED]
        opts = config.stash[stash.OPTIONS]
        width = max(60, min(160, config.get_terminal_writer().fullwidth))  # the terminal's, in reason
        for title, lines in gating_report.sections(records, stored, opts.compare_fail,
                                                   config.stash[SAVED], width):
            terminalreporter.section(title)
            for line in lines:
                terminalreporter.write_line(line)


def after_run(item: pytest.Item, result: Any) -> None:
    """Where the benchmark ran, before its verdict is final: the runs' extras into the record,
    TEST06 misses and regressions against the stored run into the verdict."""
    from pytest_mlperf.run.runs import EXTRAS

    extras = item.stash.get(EXTRAS, None)
    reasons: list[str] = list(extras.reasons) if extras is not None else []
    if extras is not None:
        result.amend(**extras.record_fields())
    stored = item.config.stash.get(STORED, None)
    if stored is not None:
        opts = item.config.stash[stash.OPTIONS]
        found = compare.comparison(stored, result.record, opts.compare_fail)
        if found.skipped is not None:
            if not found.skipped.startswith("no stored run"):
                warnings.warn(GateWarning(f"{item.nodeid}: not compared with {stored.label}: "
                                          f"{found.skipped}"), stacklevel=1)
        else:
            for delta in found.deltas:
                if delta.change is not None:
                    item.user_properties.append((f"mlperf.change.{delta.figure}", round(delta.change, 2)))
            if found.regressions and opts.compare_confirm and extras is not None and extras.rerun is not None:
                found = _confirm(item, stored, result.record, extras.rerun, opts.compare_fail, found)
            reasons.extend(found.regressions)
            gates = found.gates
            if any(b.figure is compare.OUTPUTS for b in opts.compare_fail):
                outputs = _outputs_gate(stored, result.record)
                if outputs is not None:
                    gates = (*gates, outputs.gate)
                    reasons.extend([outputs.reason] if outputs.reason else [])
            result.amend(compared_with=stored.label, gates=gates)
            for note in found.notes:
                warnings.warn(GateWarning(f"{item.nodeid}: {note}"), stacklevel=1)
    if reasons:
        result.amend(reasons)


def _confirm(item: pytest.Item, stored: storage.StoredSession, record: Any, rerun: Any, bounds: Any,
             first: compare.Comparison) -> compare.Comparison:
    """``--mlperf-compare-confirm``: measure once more; a bound fails only if the rerun fails it
    too. Both values are in the gate's detail and the reason."""
    import dataclasses

    from pytest_mlperf.run.peak import attempt
    from pytest_mlperf.run.repeat import median_figures

    run, runs = rerun()
    attempts = tuple(attempt(r, None) for r in runs) or (attempt(run, None),)
    again = dataclasses.replace(record, figures=median_figures([a.figures for a in attempts]) if runs else run.figures,
                                repeats=attempts if runs else ())
    second = compare.comparison(stored, again, bounds)
    failed_again = {g.name for g in second.gates if not g.passed}
    gates = []
    for gate in first.gates:
        twin = next((g for g in second.gates if g.name == gate.name), None)
        rerun_note = "" if twin is None else f"rerun: {twin.value:.6g} ({'failed' if not twin.passed else 'passed'})"
        passed = gate.passed or gate.name not in failed_again
        gates.append(dataclasses.replace(gate, passed=passed,
                                         detail="; ".join(filter(None, [gate.detail, rerun_note]))))
    regressions = tuple(f"{r}; confirmed by a rerun ({run.outdir})" for r in first.regressions
                        if r.split(" ", 1)[0] in failed_again)
    if len(regressions) < len(first.regressions):
        warnings.warn(GateWarning(f"{item.nodeid}: a --mlperf-compare-fail bound failed, its rerun "
                                  f"({run.outdir}) passed: not failed (--mlperf-compare-confirm)"), stacklevel=1)
    return dataclasses.replace(first, regressions=regressions, gates=tuple(gates))


def _outputs_gate(stored: storage.StoredSession, record: Any) -> Any:
    """The outputs gate of an accuracy test (None for a performance test, which logs none)."""
    from pytest_mlperf.gate import outputs

    if record.mode != "accuracy":
        return None
    old = compare.match(stored.records, record)
    kept = stored.outputs.get(old.nodeid) if old is not None else None
    now = outputs.read_outputs(record)
    if kept is None or now is None:
        missing = "the stored session has none (saved before outputs were kept?)" if kept is None \
            else f"today's accuracy log is unreadable ({record.run.outdir})"
        warnings.warn(GateWarning(f"{record.nodeid}: --mlperf-compare-fail=outputs not checked: {missing}"),
                      stacklevel=1)
        return None
    return outputs.compare_outputs(kept, now, stored.label)


def register(config: pytest.Config) -> None:
    config.pluginmanager.register(Gate(config), "mlperf-gate")
