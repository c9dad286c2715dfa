"""Rebuild the embedded model, tokenizer, sample set and baseline from nothing.

    python -m pytest_mlperf.embedded.build [--out DIR]

Steps, each deterministic: generate the training articles (seeds from TRAIN_SEED on) and the
held-out sample set (seeds from SAMPLE_SEED on, disjoint); train a byte-level BPE tokenizer on the
training text; train a small Llama on prompt + highlights with the loss on the highlights and the
EOS; greedy-decode the sample set with transformers and score it the MLCommons way into
``baseline.json`` (summary figures, and each record's figures so any subset's are exact).
With ``--out`` the artifacts go to DIR/model and DIR/data instead of the package, so a
rebuild can be compared with the committed files before it replaces them.

The tokenizer and the sample set are identical on every machine. The weights are identical from
one run to the next on the same machine with the same torch version and thread count; another
CPU or torch release may round differently, which changes the weights a little and the scores in
the second decimal or so. Commit the weights and the baseline together.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from pathlib import Path

from pytest_mlperf.data.dataset import TEMPLATE

BOS, EOT = "<|begin_of_text|>", "<|end_of_text|>"
EOS, PAD = "<|eot_id|>", "<|finetune_right_pad_id|>"
SPECIAL_TOKENS = [BOS, EOT, EOS, PAD]
# Llama 3's pre-tokenizer split (tiktoken cl100k-style pattern).
SPLIT_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)

VOCAB_SIZE = 3072  # BPE tokens + the special tokens, which sit at the end as in Llama 3
TRAIN_SEED = 1_000_000  # training articles: seeds TRAIN_SEED, TRAIN_SEED + 1, ...
SAMPLE_SEED = 0  # sample set: seeds 0 .. SAMPLE_SIZE - 1, never used for training
SAMPLE_SIZE = 256
MAX_NEW_TOKENS = 128

MODEL = dict(
    hidden_size=192,
    intermediate_size=512,
    num_hidden_layers=4,
    num_attention_heads=3,
    num_key_value_heads=1,
    head_dim=64,
    max_position_embeddings=2048,
    rope_theta=500000.0,
    rms_norm_eps=1e-5,
    tie_word_embeddings=True,
)
TRAIN = dict(
    articles=10_000,
    epochs=1,
    batch_size=16,
    lr=3e-3,
    warmup=100,
    weight_decay=0.05,
    article_loss_weight=0.3,
    seed=1234,
    threads=2,
)

PACKAGE = Path(__file__).resolve().parent


def log(msg: str) -> None:
    print(f"[build {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --- tokenizer ---------------------------------------------------------------------------------


def train_tokenizer(texts: list[str]):
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tokenizer = Tokenizer(models.BPE(ignore_merges=True))
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(SPLIT_PATTERN), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=False),
    ])
    tokenizer.decoder = decoders.ByteLevel(add_prefix_space=True, trim_offsets=True, use_regex=True)
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE - len(SPECIAL_TOKENS),
        min_frequency=2,
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tokenizer.train_from_iterator(texts, trainer=trainer)
    # Added after training so they take the last ids, as Llama 3's do.
    tokenizer.add_special_tokens(SPECIAL_TOKENS)
    bos_id = tokenizer.token_to_id(BOS)
    tokenizer.post_processor = processors.Sequence([
        processors.ByteLevel(trim_offsets=False),
        processors.TemplateProcessing(
            single=f"{BOS}:0 $A:0", pair=f"{BOS}:0 $A:0 {BOS}:1 $B:1",
            special_tokens=[(BOS, bos_id)],
        ),
    ])
    return tokenizer


def save_tokenizer(tokenizer, model_dir: Path) -> None:
    tokenizer.save(str(model_dir / "tokenizer.json"), pretty=True)
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": BOS,
        "eos_token": EOS,
        "pad_token": PAD,
        "clean_up_tokenization_spaces": False,
        "model_input_names": ["input_ids", "attention_mask"],
        "model_max_length": MODEL["max_position_embeddings"],
        "padding_side": "left",
        "added_tokens_decoder": {
            str(tokenizer.token_to_id(t)): {
                "content": t, "lstrip": False, "normalized": False, "rstrip": False,
                "single_word": False, "special": True,
            }
            for t in SPECIAL_TOKENS
        },
    }
    _write_json(model_dir / "tokenizer_config.json", config)
    _write_json(model_dir / "special_tokens_map.json",
                {"bos_token": BOS, "eos_token": EOS, "pad_token": PAD})


# --- data --------------------------------------------------------------------------------------


def sample_records(tokenizer, articles) -> list[dict]:
    """The sample set in cnn_eval.json's schema and key order."""
    return [
        {
            "instruction": {"llama": TEMPLATE},
            "input": a.text,
            "tok_input": tokenizer.encode(TEMPLATE.format(input=a.text)).ids,
            "output": a.highlights,
        }
        for a in articles
    ]


def training_examples(tokenizer, articles,
                      article_weight: float) -> list[tuple[list[int], int, float]]:
    """(token ids, index where the summary starts, loss weight before it) per article: prompt,
    summary, EOS.

    The summary is the highlights on one line, " " + "A. B. C.": every word then carries its
    leading space, so it is the same token as in the article and the model copies instead of
    re-spelling. Scoring splits sentences anyway, so the newlines of the reference don't count.
    """
    eos_id = tokenizer.token_to_id(EOS)
    examples = []
    for a in articles:
        prompt = tokenizer.encode(TEMPLATE.format(input=a.text)).ids
        summary = tokenizer.encode(summary_text(a.highlights), add_special_tokens=False).ids
        examples.append((prompt + summary + [eos_id], len(prompt), article_weight))
    return examples


def summary_text(highlights: str) -> str:
    return " " + " ".join(highlights.split("\n"))


# --- model -------------------------------------------------------------------------------------


def model_config(tokenizer):
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=tokenizer.get_vocab_size(),
        bos_token_id=tokenizer.token_to_id(BOS),
        eos_token_id=[tokenizer.token_to_id(EOT), tokenizer.token_to_id(EOS)],
        pad_token_id=tokenizer.token_to_id(PAD),
        hidden_act="silu",
        initializer_range=0.02,
        attention_bias=False,
        mlp_bias=False,
        dtype="float32",
        **MODEL,
    )


def train_model(config, examples: list[tuple[list[int], int, float]], pad_id: int, train: dict):
    import torch
    from transformers import LlamaForCausalLM

    torch.manual_seed(train["seed"])
    torch.use_deterministic_algorithms(True)
    model = LlamaForCausalLM(config)
    model.train()

    batches = _batches(examples, train["batch_size"], random.Random(train["seed"]))
    batches = batches * train["epochs"]
    total = len(batches)
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": train["weight_decay"]},
         {"params": no_decay, "weight_decay": 0.0}],
        lr=train["lr"], betas=(0.9, 0.95), eps=1e-8,
    )

    def lr_at(step: int) -> float:
        if step < train["warmup"]:
            return (step + 1) / train["warmup"]
        progress = (step - train["warmup"]) / max(1, total - train["warmup"])
        return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * progress))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_at)
    start = time.time()
    running = None
    for step, batch in enumerate(batches):
        ids, weights, mask = _tensors(batch, pad_id)
        hidden = model.model(input_ids=ids, attention_mask=mask).last_hidden_state[:, :-1]
        w = weights[:, 1:]
        # The vocabulary projection only where the loss looks: most positions are the article.
        where = w > 0
        logits = model.lm_head(hidden[where])
        loss_tok = torch.nn.functional.cross_entropy(logits, ids[:, 1:][where], reduction="none")
        loss = (loss_tok * w[where]).sum() / w.sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        running = loss.item() if running is None else 0.98 * running + 0.02 * loss.item()
        if step % 50 == 0 or step == total - 1:
            elapsed = time.time() - start
            log(f"step {step + 1}/{total} loss {running:.3f} lr {sched.get_last_lr()[0]:.2e} "
                f"{elapsed:.0f}s (eta {elapsed / (step + 1) * (total - step - 1):.0f}s)")
    model.eval()
    return model, time.time() - start


def _batches(examples, batch_size: int, rng: random.Random) -> list[list]:
    """Batches of similar length (little padding), in a seeded random order."""
    order = list(range(len(examples)))
    rng.shuffle(order)
    chunk = batch_size * 32
    batches = []
    for c in range(0, len(order), chunk):
        part = sorted(order[c:c + chunk], key=lambda i: len(examples[i][0]))
        batches += [[examples[i] for i in part[b:b + batch_size]]
                    for b in range(0, len(part), batch_size)]
    rng.shuffle(batches)
    return batches


def _tensors(batch, pad_id: int):
    import torch

    width = max(len(ids) for ids, _, _ in batch)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    weights = torch.zeros((len(batch), width))
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for row, (tokens, start, context_weight) in enumerate(batch):
        ids[row, :len(tokens)] = torch.tensor(tokens)
        mask[row, :len(tokens)] = 1
        weights[row, 1:start] = context_weight
        weights[row, start:len(tokens)] = 1.0  # the summary and its EOS
    return ids, weights, mask


def save_model(model, model_dir: Path) -> None:
    model.save_pretrained(model_dir)
    # transformers 5 writes `dtype` and `rope_parameters`; readers on transformers 4 (vLLM builds
    # among them) look for `torch_dtype` and `rope_theta` and would silently take defaults.
    path = model_dir / "config.json"
    config = json.loads(path.read_text(encoding="utf-8"))
    config.setdefault("torch_dtype", config.get("dtype", "float32"))
    config.setdefault("rope_theta", config.get("rope_parameters", {}).get("rope_theta"))
    _write_json(path, dict(sorted(config.items())))
    (model_dir / "model.safetensors").chmod(0o644)


# --- evaluation --------------------------------------------------------------------------------


def generate(model, records: list[dict], pad_id: int, eos_ids: list[int], batch_size: int = 32):
    """Greedy completions (token ids, EOS stripped) for every record, in record order; the
    tokens each generated (EOS included), in record order; and their rate in tokens/s.
    Batched, left-padded, token ids in and out."""
    import torch

    order = sorted(range(len(records)), key=lambda i: len(records[i]["tok_input"]))
    outputs: list[list[int]] = [[] for _ in records]
    produced = [0 for _ in records]
    start = time.time()
    with torch.inference_mode():
        for b in range(0, len(order), batch_size):
            idx = order[b:b + batch_size]
            prompts = [records[i]["tok_input"] for i in idx]
            width = max(map(len, prompts))
            ids = torch.full((len(idx), width), pad_id, dtype=torch.long)
            mask = torch.zeros((len(idx), width), dtype=torch.long)
            for row, p in enumerate(prompts):
                ids[row, width - len(p):] = torch.tensor(p)
                mask[row, width - len(p):] = 1
            out = model.generate(
                input_ids=ids, attention_mask=mask, do_sample=False, max_new_tokens=MAX_NEW_TOKENS,
                eos_token_id=eos_ids, pad_token_id=pad_id,
            )
            for row, i in enumerate(idx):
                tokens = out[row, width:].tolist()
                for n, t in enumerate(tokens):
                    if t in eos_ids:
                        tokens = tokens[:n + 1]
                        break
                produced[i] = len(tokens)
                outputs[i] = [t for t in tokens if t not in eos_ids and t != pad_id]
    return outputs, produced, sum(produced) / (time.time() - start)


def score(predictions: list[str], references: list[str]) -> dict:
    """MLCommons scoring, by the plugin's own accuracy module (what a benchmark run reports)."""
    from pytest_mlperf.accuracy import score_texts

    return score_texts(predictions, references).as_dict()


def write_baseline(model_dir: Path, data_dir: Path) -> tuple[dict, float]:
    """Score the saved model on the saved sample set, as a user loads them (transformers, fp32,
    greedy), into data_dir/baseline.json. Returns the summary and the generation's tokens/s.

    The file holds the summary figures and, under ``per_sample``, each record's figures in
    data-set order: the four ROUGE F-measures as the scorer returns them (full float
    precision), the characters of the post-processed prediction (``gen_len``) and the tokens
    generated, EOS included (``gen_tok_len``), plus the SHA-256 of the sample set and of the
    weights they were measured on. Reducing any subset's values with the accuracy module's
    own ``aggregate`` gives that subset's figures exactly; the summary is that reduction over
    all records, so it is exactly what ``score_texts`` reports."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from pytest_mlperf.accuracy.recipe import score_chunk
    from pytest_mlperf.accuracy.scores import ROUGE_KEYS, aggregate
    from pytest_mlperf.embedded import sha256_file

    tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(model_dir, local_files_only=True).eval()
    dataset = data_dir / "cnn_eval_sample.json"
    records = json.loads(dataset.read_text(encoding="utf-8"))
    eos_ids = list(model.generation_config.eos_token_id)
    outputs, produced, tok_s = generate(model, records, tokenizer.pad_token_id, eos_ids)
    predictions = tokenizer.batch_decode(outputs, skip_special_tokens=True)
    # score_texts' own steps, kept per sample: the same rows, the same reduction.
    rows = score_chunk(list(zip(predictions, [r["output"] for r in records], strict=True)))
    baseline = aggregate([row[:4] for row in rows], gen_len=sum(row[4] for row in rows)).as_dict()
    # Generated tokens in all, each answer's EOS included (as vLLM returns it and loadgen logs it).
    baseline["gen_tok_len"] = sum(produced)
    per_sample = {
        "dataset_sha256": sha256_file(dataset),
        "model_sha256": sha256_file(model_dir / "model.safetensors"),
        **{key: [row[column] for row in rows] for column, key in enumerate(ROUGE_KEYS)},
        "gen_len": [row[4] for row in rows],
        "gen_tok_len": produced,
    }
    write_baseline_file(data_dir / "baseline.json", baseline, per_sample)
    log(f"baseline {baseline}, {tok_s:.0f} generated tokens/s")
    return baseline, tok_s


def write_baseline_file(path: Path, summary: dict, per_sample: dict) -> None:
    """The summary indented, each per-sample list on one line (floats as ``repr``: exact)."""
    shown = {key: f"@{key}@" if isinstance(value, list) else value
             for key, value in per_sample.items()}
    text = json.dumps({**summary, "per_sample": shown}, indent=2, ensure_ascii=False)
    for key, value in per_sample.items():
        if isinstance(value, list):
            text = text.replace(f'"@{key}@"', json.dumps(value), 1)
    path.write_text(text + "\n", encoding="utf-8")


# --- main --------------------------------------------------------------------------------------


def write_sample_set(path: Path, records: list[dict]) -> None:
    """Indented like a pretty-printed cnn_eval.json, each tok_input on one line."""
    placeholders = [f"@tok_input:{i}@" for i in range(len(records))]
    shown = [dict(r, tok_input=p) for r, p in zip(records, placeholders, strict=False)]
    text = json.dumps(shown, indent=4, ensure_ascii=False)
    for record, placeholder in zip(records, placeholders, strict=False):
        text = text.replace(f'"{placeholder}"', json.dumps(record["tok_input"]), 1)
    path.write_text(text + "\n", encoding="utf-8")


def _write_json(path: Path, data, indent: int | None = 2) -> None:
    path.write_text(json.dumps(data, indent=indent, ensure_ascii=False) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pytest_mlperf.embedded.build",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=None,
                        help="write DIR/model and DIR/data instead of the package's own folders")
    parser.add_argument("--articles", type=int, default=TRAIN["articles"],
                        help="training articles (experiments only; the committed model uses "
                             "the default)")
    parser.add_argument("--epochs", type=int, default=TRAIN["epochs"])
    parser.add_argument("--lr", type=float, default=TRAIN["lr"])
    parser.add_argument("--article-loss-weight", type=float, default=TRAIN["article_loss_weight"])
    parser.add_argument("--model", type=json.loads, default={},
                        help='JSON overrides of the model shape, e.g. \'{"hidden_size": 256}\'')
    parser.add_argument("--baseline-only", action="store_true",
                        help="only re-measure baseline.json from the model and sample set on disk "
                             "(after a torch or transformers upgrade, say)")
    args = parser.parse_args(argv)
    train = dict(TRAIN, articles=args.articles, epochs=args.epochs, lr=args.lr,
                 article_loss_weight=args.article_loss_weight)
    MODEL.update(args.model)

    import torch

    torch.set_num_threads(train["threads"])
    from pytest_mlperf.embedded.news import articles

    root = args.out or PACKAGE
    model_dir, data_dir = root / "model", root / "data"
    model_dir.mkdir(parents=True, exist_ok=True)
    data_dir.mkdir(parents=True, exist_ok=True)
    began = time.time()
    if args.baseline_only:
        write_baseline(model_dir, data_dir)
        return 0

    train_articles = list(articles(TRAIN_SEED, train["articles"]))
    sample_articles = list(articles(SAMPLE_SEED, SAMPLE_SIZE))
    assert TRAIN_SEED >= SAMPLE_SEED + SAMPLE_SIZE
    log(f"{len(train_articles)} training articles, {len(sample_articles)} sample articles")

    tokenizer = train_tokenizer(
        [TEMPLATE.format(input=a.text) + summary_text(a.highlights) for a in train_articles]
    )
    save_tokenizer(tokenizer, model_dir)
    pad_id, eos_ids = tokenizer.token_to_id(PAD), [tokenizer.token_to_id(t) for t in (EOT, EOS)]

    records = sample_records(tokenizer, sample_articles)
    write_sample_set(data_dir / "cnn_eval_sample.json", records)
    lengths = sorted(len(r["tok_input"]) for r in records)
    log(f"sample prompts: {lengths[0]}-{lengths[-1]} tokens, median {lengths[len(lengths) // 2]}")

    config = model_config(tokenizer)
    examples = training_examples(tokenizer, train_articles, train["article_loss_weight"])
    log(f"training on {sum(len(e[0]) for e in examples) * train['epochs']:,} tokens")
    model, train_s = train_model(config, examples, pad_id, train)
    n_params = sum(p.numel() for p in model.parameters())
    log(f"trained {n_params:,} parameters in {train_s:.0f}s")

    from transformers import GenerationConfig

    model.generation_config = GenerationConfig(
        bos_token_id=config.bos_token_id, eos_token_id=eos_ids, pad_token_id=pad_id,
        do_sample=False, max_new_tokens=MAX_NEW_TOKENS,
    )
    save_model(model, model_dir)

    baseline, tok_s = write_baseline(model_dir, data_dir)
    build_info = {
        "parameters": n_params, "train_seconds": round(train_s, 1),
        "total_seconds": round(time.time() - began, 1),
        "generate_tokens_per_second": round(tok_s, 1), "torch": torch.__version__,
        "threads": train["threads"], "train": train, "model": MODEL,
    }
    log(f"build info {json.dumps(build_info)}")
    _write_json(data_dir / "build_info.json", build_info)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
