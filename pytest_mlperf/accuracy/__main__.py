"""Re-score an accuracy log without re-running anything.

    python -m pytest_mlperf.accuracy --accuracy-log mlperf_log_accuracy.json \\
        --dataset cnn_eval.json --tokenizer meta-llama/Llama-3.1-8B-Instruct \\
        [--dtype int32|int64] [--benchmark llama3.1-8b | --baseline rouge1=..,rouge2=..] \\
        [--ratio 0.99] [--workers N] [--json out.json]

Prints what ``language/llama3.1-8b/evaluation.py`` prints (``Results`` and the figures' dict),
then the verdict against the baseline when one is given. Exit status: 0 when the scores pass
(or nothing was checked), 1 when a figure misses, 2 when an input cannot be used (the message
names the file and the entry or field).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

from pytest_mlperf.accuracy.targets import TARGETS, Baseline, check

_BASELINE_KEYS = {f.name for f in fields(Baseline)} - {"name"}
EMBEDDED = "embedded"


def parse_baseline(text: str) -> Baseline:
    """``rouge1=38.7792,rouge2=15.9075,...[,gen_len=8167644][,ratio=0.99]`` -> Baseline."""
    values: dict[str, Any] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or key not in _BASELINE_KEYS:
            raise argparse.ArgumentTypeError(
                f"{item!r}: expected KEY=VALUE with KEY one of {', '.join(sorted(_BASELINE_KEYS))}")
        try:
            values[key] = int(raw) if key == "gen_len" else float(raw)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{item!r}: {raw.strip()!r} is not a number") from None
    if not values.keys() - {"ratio"}:
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
                       help="check against the MLCommons targets of this benchmark")
    which.add_argument("--baseline", type=parse_baseline, metavar="KEY=VALUE,...",
                       help="check against these figures (keys: "
                            f"{', '.join(sorted(_BASELINE_KEYS))})")
    parser.add_argument("--ratio", type=_ratio, default=None,
                        help="fraction of each baseline ROUGE figure to reach (default: the "
                             "baseline's, 0.99; 0.999 for llama2-70b-99.9)")
    parser.add_argument("--workers", type=int, default=None,
                        help="processes to score with (default: every available core)")
    parser.add_argument("--json", type=Path, metavar="OUT",
                        help="also write the scores, the baseline and the verdict here")
    return parser


def _references(dataset: str) -> list[str]:
    from pytest_mlperf.dataset import load_dataset

    if dataset == EMBEDDED:
        from pytest_mlperf import embedded

        return load_dataset(embedded.DATASET_PATH).references
    return load_dataset(Path(dataset)).references


def _tokenizer(name: str):
    from transformers import AutoTokenizer

    if name == EMBEDDED:
        from pytest_mlperf import embedded

        name = str(embedded.MODEL_DIR)
    try:
        return AutoTokenizer.from_pretrained(name)
    except (OSError, ValueError) as e:
        raise ValueError(f"tokenizer {name}: cannot load it ({e})") from e


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

    baseline = TARGETS[args.benchmark] if args.benchmark else args.baseline
    print("\nResults\n")
    print(scores.reference_line(args.benchmark or "llama3.1-8b"))
    misses = None
    ratio = None
    if baseline is not None:
        ratio = baseline.ratio if args.ratio is None else args.ratio
        try:
            misses = check(scores, baseline, ratio)
        except ValueError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        verdict = "PASS" if not misses else "FAIL"
        print(f"\naccuracy against {baseline.name} (ROUGE >= {ratio:g} x baseline): {verdict}")
        for miss in misses:
            print(f"  {miss}")

    if args.json is not None:
        report = {
            "accuracy_log": str(args.accuracy_log),
            "dtype": args.dtype,
            "scores": scores.as_dict(),
            "baseline": asdict(baseline) if baseline is not None else None,
            "ratio": ratio,
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
