"""Re-score an accuracy log without re-running anything.

    python -m pytest_mlperf.accuracy --accuracy-log mlperf_log_accuracy.json \\
        --dataset cnn_eval.json --tokenizer meta-llama/Llama-3.1-8B-Instruct \\
        [--dtype int32|int64] [--benchmark llama3.1-8b | --baseline rouge1=..,rouge2=..] \\
        [--ratio 0.99] [--workers N] [--json out.json]

Prints what ``language/llama3.1-8b/evaluation.py`` prints (``Results`` and the figures' dict),
then the verdict against the baseline: the one given, or on the embedded sample set (by
content) with the embedded tokenizer, the embedded model's own figures for the records in the
log. A baseline's ``gen_len`` is scaled to the samples scored by the plugin's rule
(:meth:`Baseline.scaled_to`), and the output says so. Exit status: 0 when the scores pass (or
nothing was checked), 1 when a figure misses, 2 when an input cannot be used (the message
names the file and the entry or field).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

from pytest_mlperf.accuracy.baselines import BaselineChoice, choose_baseline
from pytest_mlperf.accuracy.targets import TARGETS, Baseline, check

_BASELINE_KEYS = {f.name for f in fields(Baseline)} - {"name"}
EMBEDDED = "embedded"


def parse_baseline(text: str) -> Baseline:
    """``rouge1=38.7792,rouge2=15.9075,...[,gen_len=8167644][,samples=13368][,ratio=0.99]``
    -> Baseline (``samples``: the count its figures are for, from which gen_len is scaled)."""
    values: dict[str, Any] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or key not in _BASELINE_KEYS:
            raise argparse.ArgumentTypeError(
                f"{item!r}: expected KEY=VALUE with KEY one of {', '.join(sorted(_BASELINE_KEYS))}")
        try:
            values[key] = int(raw) if key in ("gen_len", "samples") else float(raw)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{item!r}: {raw.strip()!r} is not a number") from None
    if not values.keys() - {"ratio", "samples"}:
        raise argparse.ArgumentTypeError("a baseline needs at least one figure, e.g. rouge1=38.78")
    try:
        return Baseline(name="--baseline", **values)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _ratio(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"{value} is not in (0, 1]")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pytest_mlperf.accuracy",
        description="Score an MLPerf accuracy log with the MLCommons ROUGE recipe "
                    "(no download, every core) and check it against a baseline.")
    parser.add_argument("--accuracy-log", required=True, type=Path,
                        help="mlperf_log_accuracy.json written by loadgen in accuracy mode")
    parser.add_argument("--dataset", required=True,
                        help=f"cnn_eval.json-schema file whose 'output' are the references "
                             f"('{EMBEDDED}': the embedded sample set)")
    parser.add_argument("--tokenizer", required=True,
                        help=f"Hugging Face tokenizer folder or name ('{EMBEDDED}': the "
                             "embedded tiny model's)")
    parser.add_argument("--dtype", choices=("int32", "int64"), default="int32",
                        help="token id type in the log (default int32, the reference SUT's)")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--benchmark", choices=sorted(TARGETS),
                       help="check against the MLCommons targets of this benchmark (gen_len "
                            "scaled to the samples scored; a subset is not an MLPerf result)")
    which.add_argument("--baseline", type=parse_baseline, metavar="KEY=VALUE,...",
                       help="check against these figures (keys: "
                            f"{', '.join(sorted(_BASELINE_KEYS))}; samples: the count the "
                            "figures are for). Neither: on the embedded set with the embedded "
                            "tokenizer, the embedded model's own figures for the logged records")
    parser.add_argument("--ratio", type=_ratio, default=None,
                        help="fraction of each baseline ROUGE figure to reach (default: the "
                             "baseline's, 0.99; 0.999 for llama2-70b-99.9)")
    parser.add_argument("--workers", type=int, default=None,
                        help="processes to score with (default: every available core)")
    parser.add_argument("--json", type=Path, metavar="OUT",
                        help="also write the scores, the baseline and the verdict here")
    return parser


def _dataset_path(dataset: str) -> Path:
    if dataset == EMBEDDED:
        from pytest_mlperf import embedded

        return embedded.DATASET_PATH
    return Path(dataset)


def _references(dataset: str) -> list[str]:
    from pytest_mlperf.data.dataset import load_dataset

    return load_dataset(_dataset_path(dataset)).references


def _tokenizer_path(name: str) -> str:
    if name == EMBEDDED:
        from pytest_mlperf import embedded

        return str(embedded.MODEL_DIR)
    return name


def _tokenizer(name: str):
    from transformers import AutoTokenizer

    name = _tokenizer_path(name)
    try:
        return AutoTokenizer.from_pretrained(name)
    except (OSError, ValueError) as e:
        raise ValueError(f"tokenizer {name}: cannot load it ({e})") from e


def _choose(args: argparse.Namespace, scores, references: list[str]) -> BaselineChoice | None:
    """The baseline the scores are judged against, by the plugin's policy; None: nothing to
    check (no baseline given, and not the embedded model on the embedded set)."""
    from pytest_mlperf import embedded

    if args.baseline is not None:  # figures given here: the same gen_len rule, no policy
        ratio = args.baseline.ratio if args.ratio is None else args.ratio
        return BaselineChoice(args.baseline.scaled_to(scores.gen_num).with_ratio(ratio),
                              official=False)
    dataset_sha256 = embedded.sha256_file(_dataset_path(args.dataset))
    model_is_embedded = embedded.is_embedded_model(_tokenizer_path(args.tokenizer))
    if args.benchmark is not None:
        indices: list[int] = list(range(scores.gen_num))  # only their count matters here
    elif not embedded.is_embedded_dataset(dataset_sha256):
        return None
    elif not model_is_embedded:
        print("\nnothing checked: the embedded sample set's baseline is the embedded model's "
              "own and this is another tokenizer; give --baseline or --benchmark")
        return None
    else:
        from pytest_mlperf.accuracy.log import read_accuracy_log

        # The records the log holds, in its order: the figures are reduced in that order.
        samples = read_accuracy_log(args.accuracy_log, n_references=len(references),
                                    dtype=args.dtype)
        indices = [sample.qsl_idx for sample in samples]
    return choose_baseline(
        benchmark=args.benchmark or "llama3.1-8b", declared=args.benchmark, ratio=args.ratio,
        dataset_sha256=dataset_sha256, model_is_embedded=model_is_embedded,
        sample_indices=indices, dataset_total=len(references))


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from pytest_mlperf.accuracy.recipe import score_log

    try:
        references = _references(args.dataset)
        tokenizer = _tokenizer(args.tokenizer)
        scores = score_log(args.accuracy_log, references, tokenizer, dtype=args.dtype,
                           workers=args.workers)
    except (ValueError, OSError) as e:  # AccuracyLogError and DatasetError are ValueErrors
        print(f"error: {e}", file=sys.stderr)
        return 2

    print("\nResults\n")
    print(scores.reference_line(args.benchmark or "llama3.1-8b"))
    misses = None
    try:
        choice = _choose(args, scores, references)
        baseline = choice.baseline if choice is not None else None
        if baseline is not None:
            misses = check(scores, baseline)
    except (ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if baseline is not None:
        verdict = "PASS" if not misses else "FAIL"
        print(f"\naccuracy against {baseline.name} "
              f"(ROUGE >= {baseline.ratio:g} x baseline): {verdict}")
        for miss in misses or []:
            print(f"  {miss}")
        if choice is not None and choice.note:
            print(f"note: {choice.note}")

    if args.json is not None:
        report = {
            "accuracy_log": str(args.accuracy_log),
            "dtype": args.dtype,
            "scores": scores.as_dict(),
            "baseline": asdict(baseline) if baseline is not None else None,
            "ratio": baseline.ratio if baseline is not None else None,
            "official": choice.official if choice is not None else None,
            "note": choice.note if choice is not None else None,
            "passed": None if misses is None else not misses,
            "misses": [{**asdict(m), "message": str(m)} for m in misses or []],
        }
        try:
            args.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        except OSError as e:
            print(f"error: {args.json}: {e}", file=sys.stderr)
            return 2
    return 1 if misses else 0


if __name__ == "__main__":
    sys.exit(main())
