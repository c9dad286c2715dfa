"""Checks that run before any engine starts, once per session, each naming the option, file,
record or field at fault and saying how to fix it.

- At collection (:func:`check_collection`): the backend ``--mlperf-backend`` names exists; every
  scenario ``--mlperf-scenario`` names is declared by some collected benchmark (else every test
  would be skipped and a mistyped CI command would pass); a built-in backend's engine
  arguments are ones it takes; with ``--mlperf-submission-dir``, every benchmark is of the
  system type the description file gives (``system_type``). A miss is a
  ``pytest.UsageError``: no test runs.
- At the first benchmark's call (:func:`check_inputs`): the data set's prompts fit the model,
  no token id outside its vocabulary (checked first: the likelier cause of both misses) and
  none longer than its context. A miss fails that test
  and stops the session (every later test would fail the same way).

Option values, the marker, loadgen settings and user.conf are checked where they are read
(:mod:`pytest_mlperf.options`, :mod:`pytest_mlperf.spec`, :mod:`pytest_mlperf.loadgen.settings`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from pytest_mlperf.core import stash
from pytest_mlperf.core.vocabulary import Scenario

#: (system, data set, QSL size) -> the problem found, or None; filled once per session
_CHECKED = pytest.StashKey[dict[Any, "str | None"]]()
#: how many offending records a message lists
_SHOWN = 3


#: the session, for :func:`refuse`; a check's message an xdist worker defers to the first test
_SESSION = pytest.StashKey[pytest.Session]()
_DEFERRED = pytest.StashKey[str]()


def refuse(config: pytest.Config, message: str) -> None:
    """End the session before any engine starts: a usage error. On an xdist worker, where
    that would crash the worker, the current test fails with ``message`` and the session
    stops after it."""
    session = config.stash.get(_SESSION, None)
    if hasattr(config, "workerinput") and session is not None:
        session.shouldfail = f"mlperf: {message}"
        pytest.fail(message, pytrace=False)
    pytest.exit(message, returncode=pytest.ExitCode.USAGE_ERROR)


def check_collection(session: pytest.Session) -> None:
    """:class:`pytest.UsageError` for a session that cannot run as asked (see the module doc);
    an xdist worker keeps it for its first benchmark test (:func:`raise_deferred`)."""
    config = session.config
    config.stash[_SESSION] = session
    try:
        _check_items(config, session.items)
    except pytest.UsageError as exc:
        if not hasattr(config, "workerinput"):
            raise
        config.stash[_DEFERRED] = str(exc)


def raise_deferred(config: pytest.Config) -> None:
    message = config.stash.get(_DEFERRED, None)
    if message:
        refuse(config, message)


def _check_items(config: pytest.Config, items: Sequence[pytest.Item]) -> None:
    specs = [item.stash[stash.SPEC] for item in items if stash.SPEC in item.stash]
    if not specs:
        return
    opts = config.stash[stash.OPTIONS]
    declared: dict[str, tuple[Scenario, ...]] = {}
    for spec in specs:
        declared[spec.benchmark] = tuple(dict.fromkeys((*declared.get(spec.benchmark, ()), *spec.scenarios)))
    missing = [s for s in opts.scenarios if not any(s in ss for ss in declared.values())]
    if missing:
        what = "; ".join(f"{b} declares {', '.join(s.value for s in ss)}" for b, ss in declared.items())
        raise pytest.UsageError(
            f"--mlperf-scenario (ini mlperf_scenario): no collected benchmark runs "
            f"{', '.join(s.value for s in missing)} ({what}), so its tests would all be skipped; "
            "name a scenario a benchmark declares, or select the benchmark that declares it"
        )
    names = {n for found in config.hook.pytest_mlperf_backend_names(config=config) for n in found}
    if opts.backend not in names and not _custom_factories(config):
        # Only the built-in factory answers: nothing can make this backend. (With a factory of
        # a conftest or plugin, which need not list its names, the pool finds out on first
        # use and ends the session there, still before any engine starts.)
        raise pytest.UsageError(unknown_backend(opts.backend, names))
    _check_options_apply(config, items, opts)
    _check_engine_args(opts, specs)
    if opts.submission_dir is not None:
        _check_system_type(opts, specs)


def _check_system_type(opts: Any, specs: Sequence[Any]) -> None:
    """Every collected benchmark belongs in the system the tree will file it under."""
    from pytest_mlperf.submission.system_type import explain_misplaced, misplaced, system_types
    from pytest_mlperf.submission.tree import SystemDescError, load_system_desc

    try:
        desc = load_system_desc(opts.system_desc, opts.submitter)
    except SystemDescError as exc:  # already refused at configure; a file changed since
        raise pytest.UsageError(f"--mlperf-system-desc: {exc}") from None
    wrong = misplaced((s.benchmark for s in specs), system_types(desc) or frozenset())
    if wrong:
        raise pytest.UsageError("--mlperf-system-desc: "
                                + explain_misplaced(opts.system_desc, desc["system_type"], wrong))


def _selected_runs(items: Sequence[pytest.Item]) -> set[tuple[str, Scenario, str]]:
    """(benchmark, scenario, mode) of every collected benchmark test that will run."""
    runs = set()
    for item in items:
        spec = item.stash.get(stash.SPEC, None)
        params = getattr(getattr(item, "callspec", None), "params", {})
        scenario, mode = params.get("mlperf_scenario"), params.get("mlperf_mode")
        if spec is None or scenario is None or not spec.supports(scenario):
            continue
        runs.add((spec.benchmark, scenario, getattr(mode, "value", str(mode))))
    return runs


def _check_options_apply(config: pytest.Config, items: Sequence[pytest.Item], opts: Any) -> None:
    """An option that cannot apply to any collected test would silently do nothing: a usage
    error naming it and why."""
    runs = _selected_runs(items)
    if not runs:
        return
    performance = {(b, s) for b, s, m in runs if m == "performance"}
    if opts.find_peak is not None and not any(s in (Scenario.SERVER, Scenario.INTERACTIVE) for _, s in performance):
        raise pytest.UsageError(
            "--mlperf-find-peak (ini mlperf_find_peak): searches the target QPS of Server and "
            "Interactive performance runs, and no collected test makes one (they run "
            f"{', '.join(sorted({f'{s.value} {m}' for _, s, m in runs}))}); add "
            "--mlperf-scenario=Server or drop the option")
    if opts.user_conf is not None:
        _check_user_conf_applies(opts.user_conf, runs)
    benchmarks = {b for b, _, _ in runs}
    from_command_line = bool(config.getoption("mlperf_threshold", None))
    for rule in opts.thresholds:
        if rule.benchmark is not None and rule.benchmark not in benchmarks:
            raise pytest.UsageError(
                f"--mlperf-threshold (ini mlperf_threshold) {rule.text}: no collected test "
                f"declares benchmark '{rule.benchmark}' (they declare {', '.join(sorted(benchmarks))}), "
                "so it would gate nothing")
        if not from_command_line:
            continue  # an ini's rules may cover scenarios this session does not run
        matching = [s for b, s in performance
                    if (rule.benchmark in (None, b)) and (rule.scenario in (None, s))]
        if rule.gate in ("max_ttft_ms", "max_tpot_ms"):
            matching = [s for s in matching if s.streaming]
        if not matching:
            raise pytest.UsageError(
                f"--mlperf-threshold {rule.text}: no collected performance test it applies to "
                f"(they run {', '.join(sorted({f'{b} {s.value} {m}' for b, s, m in runs}))}"
                + ("; TTFT and TPOT are measured in the streaming scenarios only: Server, "
                   "SingleStream, Interactive" if rule.gate in ("max_ttft_ms", "max_tpot_ms") else "")
                + "), so it would gate nothing")


def unknown_backend(name: str, known: set[str]) -> str:
    return (f"--mlperf-backend (ini mlperf_backend): unknown backend '{name}'; known: "
            f"{', '.join(sorted(known))} (add one with the pytest_mlperf_make_backend hook or "
            "the pytest_mlperf.backends entry-point group)")


def _custom_factories(config: pytest.Config) -> bool:
    from pytest_mlperf import backends

    impls = config.hook.pytest_mlperf_make_backend.get_hookimpls()
    return any(impl.plugin is not backends for impl in impls)


def _check_engine_args(opts: Any, specs: Sequence[Any]) -> None:
    from pytest_mlperf.backends import backend_class

    try:
        cls = backend_class(opts.backend)
    except Exception:  # noqa: BLE001 - a broken entry point is reported when the backend is made
        return
    _check_installed(opts.backend, cls)
    check = getattr(cls, "check_engine_args", None)
    if check is None:
        return
    seen = set()
    for spec in specs:
        args = {**spec.engine_args, **opts.engine_args}
        key = repr(sorted(args.items(), key=lambda kv: kv[0]))
        if not args or key in seen:
            continue
        seen.add(key)
        problems = check(args)
        if problems:
            source = ("--mlperf-engine-arg (ini mlperf_engine_arg)" if not spec.engine_args
                      else f"the mlperf marker's engine_args of {spec.benchmark} or --mlperf-engine-arg")
            raise pytest.UsageError(f"{source}: backend '{opts.backend}': " + "; ".join(problems))


def _check_installed(name: str, cls: Any) -> None:
    """The packages a backend needs (its ``requires``), found before anything imports them: an
    ImportError at collection is an INTERNALERROR traceback."""
    import importlib.util
    import sys

    def missing(module: str) -> bool:
        try:
            return importlib.util.find_spec(module) is None
        except (ImportError, ValueError):
            return True

    absent = [m for m in getattr(cls, "requires", ()) if missing(m)]
    if absent:
        raise pytest.UsageError(
            f"--mlperf-backend (ini mlperf_backend): backend '{name}' needs {', '.join(absent)}, "
            f"which this Python ({sys.executable}) cannot import; install it there "
            f"(pip install {' '.join(absent)}) or choose another backend (hf runs on any CPU)")


def check_inputs(request: pytest.FixtureRequest) -> None:
    """Once per session for each system and data set: the prompts fit the model. On a miss,
    fail this test and stop the session."""
    get = request.getfixturevalue
    system = get("mlperf_model")
    dataset = get("mlperf_dataset")
    qsl = get("mlperf_qsl")
    engine_args = {**get("mlperf_spec").engine_args, **get("mlperf_engine_args")}
    checked = request.config.stash.setdefault(_CHECKED, {})
    key = (system, dataset.path, dataset.sha256, qsl.total_count, repr(sorted(engine_args.items())))
    if key not in checked:
        vocab = context = None
        where = ""
        from pytest_mlperf.data.modelinfo import model_limits

        limits = model_limits(system.path)
        if limits is not None:
            vocab, context, where = limits.vocab_size, limits.context, str(limits.config)
            max_len = engine_args.get("max_model_len")
            if isinstance(max_len, int) and max_len > 0 and (context is None or max_len < context):
                context, where = max_len, "the engine argument max_model_len"
        elif system.tokenizer_source is not None:
            tokenizer = get("mlperf_tokenizer")
            vocab = len(tokenizer) if hasattr(tokenizer, "__len__") else None
            where = f"the tokenizer {system.tokenizer_source}"
        checked[key] = prompt_problem(qsl.prompts, dataset.path, vocab=vocab, context=context, where=where)
    problem = checked[key]
    if problem:
        request.session.shouldfail = "mlperf: the data set does not fit the model (see the first failure)"
        pytest.fail(problem, pytrace=False)


def prompt_problem(prompts: Sequence[Sequence[int]], path: Path, *, vocab: int | None,
                   context: int | None, where: str) -> str | None:
    """Why ``prompts`` cannot be given to a model of ``vocab`` ids and ``context`` positions
    (``where`` says where those come from), or None. Ids outside the vocabulary come first:
    records tokenized for another model are most often too long for this one too, and
    re-tokenizing them is the fix for both."""
    long = [(i, len(p)) for i, p in enumerate(prompts) if len(p) > context] if context is not None else []
    if vocab is not None:
        bad = []
        for i, prompt in enumerate(prompts):
            if prompt and (max(prompt) >= vocab):
                j = next(j for j, t in enumerate(prompt) if t >= vocab)
                bad.append((i, j, prompt[j]))
        if bad:
            shown = ", ".join(f"record {i} field 'tok_input' item {j} = {t}" for i, j, t in bad[:_SHOWN])
            more = f" and {len(bad) - _SHOWN} more" if len(bad) > _SHOWN else ""
            also = (f" ({len(long)} prompt(s) are also longer than the model's context of {context} "
                    "positions, as tokenized now)") if long else ""
            return (f"{path}: token ids outside the model's vocabulary of {vocab} ids ({where}): "
                    f"{shown}{more}; the records were tokenized for another model{also}: drop "
                    "'tok_input' to tokenize them with this model's tokenizer, or use the model "
                    "they were made for")
    if long:
        shown = ", ".join(f"record {i} ({n} tokens)" for i, n in long[:_SHOWN])
        more = f" and {len(long) - _SHOWN} more" if len(long) > _SHOWN else ""
        return (f"{path}: {len(long)} prompt(s) longer than the model's context of {context} "
                f"positions ({where}): {shown}{more}; use a model with a longer context, or "
                "leave those records out (--mlperf-total-samples takes the first N)")
    return None


def _check_user_conf_applies(path: Path, runs: set[tuple[str, Scenario, str]]) -> None:
    """A user.conf none of whose lines any collected test reads (every line names another
    benchmark or scenario) would change nothing."""
    from pytest_mlperf.loadgen.settings import SettingsError, conf_model
    from pytest_mlperf.loadgen.userconf import read_user_conf

    try:
        lines = read_user_conf(path)
    except SettingsError:
        return  # configure said so already
    wanted = {(conf_model(b, s), s.loadgen_name) for b, s, _ in runs}
    if not lines or any(line.applies_to(m, sc) for line in lines for m, sc in wanted):
        return
    named = sorted({f"{line.model}.{line.scenario}" for line in lines})
    raise pytest.UsageError(
        f"--mlperf-user-conf (ini mlperf_user_conf) {path}: no line applies to a collected test "
        f"(its lines name {', '.join(named)}; the tests run "
        f"{', '.join(sorted(f'{m}.{sc}' for m, sc in wanted))}), so it would change nothing; "
        "name the collected benchmark and scenario (or *) in it")
