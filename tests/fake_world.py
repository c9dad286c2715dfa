"""A self-contained world for testing plugin logic with pytester: a word-level tokenizer double,
a copy-task data set, and backends that are correct, slow, wrong or broken. Loadgen is real."""

CONFTEST = r'''
import json, threading, time
import pytest
from pytest_mlperf import Backend, SystemSpec

WORDS = ["<pad>", "<bos>", "<eos>"] + [f"w{i}" for i in range(200)]


class WordTokenizer:
    """Just enough of a HF tokenizer for the accuracy recipe: ids -> words."""

    def batch_decode(self, batch, skip_special_tokens=True):
        return [" ".join(WORDS[i] for i in ids if i > 2) for ids in batch]


def make_dataset(path, n=12):
    records = []
    for i in range(n):
        ref = [3 + (i * 7 + k * 3) % 190 for k in range(12)]
        text = " ".join(WORDS[t] for t in ref)
        records.append({"instruction": {"llama": "Summarize:\n{input}\n\nSummary:"},
                        "input": text, "tok_input": [1] + ref, "output": text})
    path.write_text(json.dumps(records))
    return path


class CopyBackend(Backend):
    """Answers each prompt with its text: a perfect summary in this world."""
    name = "copy"
    streaming = True
    delay_s = 0.0

    def start(self):
        self.started = True

    def answer(self, prompt):
        return list(prompt[1:]) + [2]

    def issue(self, queries, responder):
        def work():
            for q in queries:
                out = self.answer(q.prompt)
                if self.delay_s:
                    time.sleep(self.delay_s)
                responder.first_token(q, out[0])
                responder.complete(q, out)
        threading.Thread(target=work, daemon=True).start()


class SlowBackend(CopyBackend):
    """One query at a time, 0.6 s each: an engine that cannot keep up with a busy server."""
    name = "slow"
    delay_s = 0.6

    def start(self):
        import queue
        self.pending = queue.Queue()

        def work():
            while True:
                q, responder = self.pending.get()
                time.sleep(self.delay_s)
                out = self.answer(q.prompt)
                responder.first_token(q, out[0])
                responder.complete(q, out)
        threading.Thread(target=work, daemon=True).start()

    def issue(self, queries, responder):
        for q in queries:
            self.pending.put((q, responder))


class GarbleBackend(CopyBackend):
    name = "garble"

    def answer(self, prompt):
        return [3 + (t * 13) % 190 for t in prompt[1:]] + [2]


class CrashBackend(CopyBackend):
    name = "crash"

    def issue(self, queries, responder):
        raise RuntimeError("CUDA error: an illegal memory access was encountered")


class HangBackend(CopyBackend):
    """Answers nothing, ever: a wedged engine."""
    name = "hang"

    def issue(self, queries, responder):
        pass


class OfflineOnlyBackend(CopyBackend):
    name = "offline-only"
    streaming = False


BACKENDS = {c.name: c for c in (CopyBackend, SlowBackend, GarbleBackend, CrashBackend, HangBackend, OfflineOnlyBackend)}


def pytest_mlperf_make_backend(config, name, scenario, system, engine_args, generation, tokenizer):
    cls = BACKENDS.get(name)
    return None if cls is None else cls(system, engine_args, generation, tokenizer)


def pytest_mlperf_backend_names(config):
    return list(BACKENDS)


@pytest.fixture(scope="session")
def mlperf_model(tmp_path_factory):
    return SystemSpec.local(tmp_path_factory.mktemp("model"))


@pytest.fixture(scope="session")
def mlperf_tokenizer():
    return WordTokenizer()
'''

BENCHMARK = r'''
import pytest

pytestmark = pytest.mark.mlperf(
    benchmark="llama3.1-8b",
    scenarios={SCENARIOS},
    baseline={"rouge1": 100.0, "rouge2": 100.0, "rougeL": 100.0, "rougeLsum": 100.0},
    settings={SETTINGS},
)


def test_bench(mlperf_result):
    pass
'''


#: the session's records as the plugin writes them (the controller's, under xdist): add this
#: option to a run and read them back with :func:`session_records`
RECORDS_JSON = "--mlperf-json=records.json"


def session_records(pytester):
    from pytest_mlperf.report.results_json import read_results_json

    return read_results_json(pytester.path / "records.json")


def setup(pytester, settings="{}", n=12, scenarios='("Offline", "Server")'):
    import importlib

    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_bench=BENCHMARK.replace("{SETTINGS}", settings).replace("{SCENARIOS}", scenarios))
    conf = importlib.util.module_from_spec(importlib.util.spec_from_loader("fake_conf", loader=None))
    exec(CONFTEST, conf.__dict__)
    data = conf.make_dataset(pytester.path / "data.json", n)
    return ["--mlperf-dataset", str(data), "--mlperf-output", str(pytester.path / "results"), "-p", "no:cacheprovider"]
