"""Training and decoding speed against JoeyNMT 2.3.0 (the peer), at equal size, interleaved in one run.

The models (see ../shared/peer/README.md):

- JoeyNMT: `../shared/peer/joeynmt_rnn_bahdanau.yaml` (biGRU encoder 256 per direction, GRU decoder
  512, Bahdanau attention, input feeding, bridge, embeddings 256, untied, dropout 0.3), PyTorch on
  the CPU with 2 threads;
- ours: `translation(attention="bahdanau", units=512, embedding_dim=256, tie_embeddings=False,
  dropout=0.3, bridge="dense")` with the same vocabulary sizes.

The data: the training split of `../shared/data/bible_en_es.tsv.gz`, cut into pieces by a joint
SentencePiece BPE model of 8,000 pieces trained here on train.en + train.es (as for the peer's
runs; cached), with one vocabulary per language of the pieces that occur in it (4,701 en / 5,308
es, as JoeyNMT builds them). `--batches` random batches of `--batch-size` verses (no bucketing: each
batch is padded to its longest verse) are fed to every candidate, the same batches in the same order.
With `--bucketed`, each batch is drawn from one target-length bucket instead, as `attn-zoo train`
drew them up to session 14 (`TARGET_BUCKETS`; little padding; it now sorts pools of pairs by both
lengths, `keras_attn_zoo.data.make_dataset`, with less: the bucketed figures stay comparable).

Each candidate runs in a process of its own (`--worker`, speaking JSON lines on stdin/stdout): ours
on every backend of `--backends` (one process each, `KERAS_BACKEND` set before Keras is imported)
and JoeyNMT with the Python of its virtual environment (`--peer-python`, default
`../peer-venv/bin/python`), once per torch thread count of `--threads` (default 1 and 2: on a busy
2-core machine torch with 2 threads can be several times slower than with 1); "joeynmt" in the
results is, round by round, the faster of them. Install it as the peer README says:

    python3 -m venv ../peer-venv
    ../peer-venv/bin/pip install torch==2.13.0
    echo "torch==2.13.0" > /tmp/constraints.txt
    ../peer-venv/bin/pip install -c /tmp/constraints.txt joeynmt==2.3.0 sacrebleu importlib_metadata "sentencepiece==0.1.99"

Without it the script says so and still measures ours.

Ours runs with `keras_attn_zoo.allocator.keep_freed_memory()` set, as every `attn-zoo` command
runs; `--compare-allocator` adds a candidate per backend with glibc's malloc defaults, and JoeyNMT
workers with the same settings (`GLIBC_TUNABLES`), which count towards the peer's best.

Training. One step is forward, backward, gradient clipping at norm 1.0 and an Adam (1e-3) update,
in training mode (dropout on). Ours runs `model.train_on_batch`, the step `fit` runs (compiled as
`keras_attn_zoo.training.train` compiles it; on JAX with the batch's lengths rounded up as
`attn-zoo train` rounds them, see `keras_attn_zoo.training.length_multiples`); JoeyNMT runs its own
training step (sort by source length, `model(return_type="loss")`, normalisation by batch, backward,
`clip_grad_norm_`, `optimizer.step`). Every batch is run once untimed first (tracing, compiling:
printed), then every round times each candidate on every batch, the candidates' order rotating from
round to round. The rate is target tokens (labels that are not padding) per second of wall clock.

Decoding (skip with `--skip-decoding`), random weights, the first batch's sources: greedy and beam 5
with every output forced to `--decode-length` tokens. Ours: `model.generate` in its default mode
(`jit_compile="auto"`) with `min_length = max_length - 1` (eos is forced at the last position) and
no source-length limit (`max_length_ratio=0`, `max_length_offset=max_length`);
JoeyNMT: `joeynmt.search.search` with `min_output_length = max_output_length` (its command line
does not pass `min_output_length` to the search). Sentences per second.

Every ratio printed is the median over rounds of the ratio within one round: these machines are
shared and noisy, the absolute figures move with the load.

    python benchmarks/peer_training.py                                   # ours (TensorFlow) vs JoeyNMT
    python benchmarks/peer_training.py --backends tensorflow jax         # and ours on JAX vs TensorFlow
    python benchmarks/peer_training.py --bucketed --skip-decoding        # batches as `attn-zoo train` makes them
    python benchmarks/peer_training.py --compare-allocator --skip-decoding --peer-python /nonexistent
                                                                         # ours with and without keep_freed_memory
    python benchmarks/peer_training.py --quick                           # smoke run
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data" / "bible_en_es.tsv.gz"
PEER_CONFIG = ROOT.parent / "shared" / "peer" / "joeynmt_rnn_bahdanau.yaml"
PEER_PYTHON = ROOT.parent / "peer-venv" / "bin" / "python"
SPM_PIECES = 8000
SPECIALS = 4  # ours: pad 0, bos 1, eos 2, unk 3; JoeyNMT: unk 0, pad 1, bos 2, eos 3; pieces from 4 in both
OURS = dict(attention="bahdanau", units=512, embedding_dim=256, tie_embeddings=False, dropout=0.3, bridge="dense")


# --------------------------------------------------------------------------------------------
# Data: the same batches for every candidate.


def prepare_batches(args):
    """Writes the batches (ours' conventions: pad 0, bos 1, eos 2) to an .npz file; returns its path."""
    import sentencepiece as spm

    from keras_attn_zoo.data import read_pairs

    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    english, spanish = read_pairs(args.data, "en", "es", split="train")
    model_file = cache / f"spm_joint{SPM_PIECES // 1000}k.model"
    if not model_file.exists():
        start = time.perf_counter()
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(english + spanish),
            model_prefix=str(model_file.with_suffix("")),
            vocab_size=SPM_PIECES,
            model_type="bpe",
            character_coverage=1.0,
            unk_id=0, pad_id=1, bos_id=2, eos_id=3,
            minloglevel=2,
        )
        print(f"  trained the joint SentencePiece model ({time.perf_counter() - start:.0f}s): {model_file}", flush=True)
    sp = spm.SentencePieceProcessor(model_file=str(model_file))
    pieces_en, pieces_es = sp.encode(english), sp.encode(spanish)
    vocabularies = []
    for corpus in (pieces_en, pieces_es):
        counts = Counter(p for sentence in corpus for p in sentence)
        order = sorted(counts, key=lambda p: (-counts[p], p))  # by frequency, as JoeyNMT's vocabulary
        vocabularies.append({p: SPECIALS + i for i, p in enumerate(order)})
    rng = np.random.default_rng(args.seed)
    arrays = {}
    chosen = _bucketed_rows(pieces_es, args, rng) if args.bucketed else None
    for b in range(args.batches):
        rows = chosen[b] if args.bucketed else rng.choice(len(english), args.batch_size, replace=False)
        source = [[vocabularies[0][p] for p in pieces_en[r][: args.max_length]] for r in rows]
        target = [[vocabularies[1][p] for p in pieces_es[r][: args.max_length - 1]] for r in rows]
        arrays[f"source_{b}"] = _pad([s for s in source])
        arrays[f"target_ids_{b}"] = _pad([[1] + t for t in target])
        arrays[f"labels_{b}"] = _pad([t + [2] for t in target])
    kind = "_bucketed" if args.bucketed else ""
    path = cache / f"batches{kind}_{args.batches}x{args.batch_size}_seed{args.seed}.npz"
    np.savez(path, source_vocab=len(vocabularies[0]) + SPECIALS, target_vocab=len(vocabularies[1]) + SPECIALS, **arrays)
    return path


TARGET_BUCKETS = (8, 16, 24, 32, 48, 64, 96)  # `attn-zoo train`'s target-length buckets up to session 14


def _bucketed_rows(pieces, args, rng):
    """`--bucketed`: the rows of each batch drawn as `attn-zoo train` drew them up to session 14: from one
    target-length bucket.

    Every training verse goes to its bucket of `TARGET_BUCKETS` by
    its target length (pieces + eos, as the labels); each batch picks a bucket with a probability
    proportional to its verses (as a shuffled, bucketed epoch meets them), then its verses at random.
    """
    lengths = np.array([min(len(p), args.max_length - 1) + 1 for p in pieces])
    buckets = np.digitize(lengths, TARGET_BUCKETS)
    members = [np.flatnonzero(buckets == k) for k in range(len(TARGET_BUCKETS) + 1)]
    usable = [k for k, rows in enumerate(members) if len(rows) >= args.batch_size]
    weights = np.array([len(members[k]) for k in usable], float)
    picks = rng.choice(usable, args.batches, p=weights / weights.sum())
    return [rng.choice(members[k], args.batch_size, replace=False) for k in picks]


def _pad(rows):
    out = np.zeros((len(rows), max(len(r) for r in rows)), "int32")
    for i, r in enumerate(rows):
        out[i, : len(r)] = r
    return out


# --------------------------------------------------------------------------------------------
# Workers: one candidate per process, JSON lines in and out.


class Worker:
    def __init__(self, name, command, env=None):
        self.name = name
        self.process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env, cwd=str(ROOT)
        )
        self.info = self.receive()

    def receive(self):
        while True:
            line = self.process.stdout.readline()
            if not line:
                raise RuntimeError(f"worker {self.name} exited (code {self.process.wait()})")
            if line.startswith("{"):
                return json.loads(line)

    def ask(self, **request):
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        return self.receive()

    def close(self):
        try:
            self.ask(command="quit")
        except (RuntimeError, BrokenPipeError):
            pass
        self.process.wait(timeout=60)


def _serve(handlers, info):
    print(json.dumps(info), flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        if request["command"] == "quit":
            print(json.dumps({"bye": True}), flush=True)
            return
        start = time.perf_counter()
        extra = handlers[request["command"]](request) or {}
        print(json.dumps({"seconds": time.perf_counter() - start, **extra}), flush=True)


def ours_worker(args):
    # Keras is imported here, after KERAS_BACKEND was set by the parent.
    from keras_attn_zoo.allocator import keep_freed_memory
    from keras_attn_zoo.native_logs import quiet_import

    if not args.allocator_defaults:  # as `attn-zoo` does, before TensorFlow or JAX start threads
        keep_freed_memory()

    keras = quiet_import("keras")  # TensorFlow's load-time log lines silenced; oneDNN stays on
    quiet_import("tensorflow")  # also loaded on JAX (tf.data, tensorflow-text)

    from keras_attn_zoo.data import bounded_length
    from keras_attn_zoo.recipes import translation
    from keras_attn_zoo.training import length_multiples

    data = np.load(args.batches_file)
    keras.utils.set_random_seed(args.seed)
    model = translation(source_vocab_size=int(data["source_vocab"]), target_vocab_size=int(data["target_vocab"]), **OURS)
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3, clipnorm=1.0),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=0),
    )
    multiples = length_multiples()

    def batch(b):
        source, target_ids, labels = data[f"source_{b}"], data[f"target_ids_{b}"], data[f"labels_{b}"]
        if multiples:  # as `attn-zoo train` pads on this backend
            def pad_to(ids, multiple):
                return np.pad(ids, ((0, 0), (0, bounded_length(ids.shape[1], multiple) - ids.shape[1])))

            source = pad_to(source, multiples[0])
            target_ids, labels = pad_to(target_ids, multiples[1]), pad_to(labels, multiples[1])
        return {"source_ids": source, "target_ids": target_ids}, labels

    batches = {}

    def train(request):
        b = request["batch"]
        if b not in batches:
            batches[b] = batch(b)
        x, y = batches[b]
        loss = model.train_on_batch(x, y)
        return {"loss": float(loss if np.ndim(loss) == 0 else loss[0])}

    def decode(request):
        source = data["source_0"]
        length = request["length"]
        # Every output `length` tokens, eos included: no length limit from the source length
        # (ratio 0, offset `length`), eos forbidden until the last position.
        out = model.generate(
            source, beam_size=request["beam"], max_length=length, min_length=length - 1,
            max_length_ratio=0.0, max_length_offset=length,
        )
        return {"lengths": sorted(set(int(v) for v in out["lengths"]))}

    _serve(
        {"train": train, "decode": decode},
        {
            "name": f"ours ({keras.backend.backend()})",
            "parameters": model.count_params(),
            "versions": f"Keras {keras.__version__}, {keras.backend.backend()} {_backend_version()}",
            "length_multiples": multiples,
        },
    )


def _backend_version():
    import keras

    module = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}[keras.backend.backend()]
    return __import__(module).__version__


def peer_worker(args):
    from types import SimpleNamespace

    import torch
    import yaml
    from joeynmt.batch import Batch
    from joeynmt.builders import build_gradient_clipper, build_optimizer
    from joeynmt.config import _check_special_symbols
    from joeynmt.model import build_model
    from joeynmt.search import search
    from joeynmt.vocabulary import Vocabulary

    torch.set_num_threads(args.threads[0])
    torch.manual_seed(args.seed)
    data = np.load(args.batches_file)
    cfg = yaml.safe_load(Path(args.peer_config).read_text())
    specials = SimpleNamespace(**_check_special_symbols({}))
    vocabularies = [
        Vocabulary([f"piece{i}" for i in range(SPECIALS, int(data[key]))], specials)
        for key in ("source_vocab", "target_vocab")
    ]
    model = build_model(cfg["model"], src_vocab=vocabularies[0], trg_vocab=vocabularies[1])
    model.loss_function = ("crossentropy", 0.0)
    training = cfg["training"]
    optimizer = build_optimizer(training, model.parameters())
    clip = build_gradient_clipper({"clip_grad_val": None, "clip_grad_norm": training["clip_grad_norm"]})
    device = torch.device("cpu")

    def to_joey(b, with_target=True):
        """Ours' conventions (pad 0, bos 1, eos 2) to JoeyNMT's (pad 1, bos 2, eos 3): source + eos."""
        source = data[f"source_{b}"]
        lengths = (source != 0).sum(1)
        src = np.full((source.shape[0], source.shape[1] + 1), specials.pad_id, "int64")
        for i, n in enumerate(lengths):
            src[i, :n] = source[i, :n]
            src[i, n] = specials.eos_id
        trg = None
        if with_target:
            labels = data[f"labels_{b}"]
            trg = np.full((labels.shape[0], labels.shape[1] + 1), specials.pad_id, "int64")
            trg[:, 0] = specials.bos_id
            for i, row in enumerate(labels):
                n = int((row != 0).sum())
                trg[i, 1:n] = row[: n - 1]
                trg[i, n] = specials.eos_id
            trg = torch.from_numpy(trg)
        return Batch(
            torch.from_numpy(src), torch.from_numpy(lengths + 1), None, trg, None,
            torch.arange(len(src)), device, specials.pad_id, specials.eos_id, is_train=with_target,
        )

    def train(request):
        batch = to_joey(request["batch"])
        model.train()
        batch.sort_by_src_length()
        loss, _, _, _ = model(return_type="loss", **vars(batch))
        loss = batch.normalize(loss, "batch", n_gpu=1, n_accumulation=1)
        loss.backward()
        clip(parameters=model.parameters())
        optimizer.step()
        model.zero_grad()
        return {"loss": float(loss.item())}

    decode_batch = to_joey(0, with_target=False)
    decode_batch.sort_by_src_length()  # its packed encoder needs it, as its own prediction loop does

    def decode(request):
        model.eval()
        length = request["length"]
        output, _, _ = search(
            model=model, batch=decode_batch, max_output_length=length, min_output_length=length,
            beam_size=request["beam"], beam_alpha=1.0, n_best=1,
        )
        return {"lengths": sorted(set(int(len(row)) for row in output))}

    _serve(
        {"train": train, "decode": decode},
        {
            "name": "JoeyNMT",
            "parameters": sum(p.numel() for p in model.parameters()),
            "versions": f"JoeyNMT {__import__('joeynmt').__version__}, torch {torch.__version__}, "
            f"{torch.get_num_threads()} threads",
        },
    )


# --------------------------------------------------------------------------------------------
# The run.


def interleave(workers, requests, rounds, label, budget):
    """Each round runs every request on every worker (the workers' order rotating); returns times."""
    times = {w.name: [] for w in workers}
    started = time.perf_counter()
    for r in range(rounds):
        shift = r % len(workers)
        round_times = {w.name: 0.0 for w in workers}
        for request in requests:
            for w in workers[shift:] + workers[:shift]:
                round_times[w.name] += w.ask(**request)["seconds"]
        for name, seconds in round_times.items():
            times[name].append(seconds)
        print(f"  {label} round {r + 1}: " + ", ".join(f"{n} {s:.2f}s" for n, s in round_times.items()), flush=True)
        if r + 1 >= 3 and time.perf_counter() - started > budget:
            print(f"  stopping after {r + 1} rounds: the {budget:.0f}s budget is spent", flush=True)
            break
    return times


def with_best_peer(times):
    """Adds "joeynmt": per round, the faster of the peer's thread counts (its best on this machine then).

    On a busy 2-core machine torch with 2 threads can run several times slower than with 1 (its
    OpenMP threads wait on each other); the reference is the peer at its best, not at its worst.
    """
    peers = [name for name in times if name.startswith("joeynmt-")]
    if peers:
        times["joeynmt"] = [min(column) for column in zip(*(times[name] for name in peers))]
    return times


def median_ratio(times, fast, slow):
    return statistics.median(s / f for f, s in zip(times[fast], times[slow]))


def report(times, work, unit, reference_names):
    names = list(times)
    print(f"  {unit}: " + ", ".join(f"{n}={statistics.median(work / t for t in times[n]):.1f}" for n in names))
    lines = []
    for reference in reference_names:
        for name in names:
            if name.startswith("ours") and name != reference and reference in times:
                lines.append(f"{name} / {reference} = {median_ratio(times, name, reference):.2f}")
    return lines


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--worker", choices=["ours", "joeynmt"], help=argparse.SUPPRESS)
    parser.add_argument("--batches-file", help=argparse.SUPPRESS)
    parser.add_argument("--backends", nargs="+", default=["tensorflow"], choices=["tensorflow", "jax"])
    parser.add_argument("--peer-python", default=os.environ.get("JOEYNMT_PYTHON", str(PEER_PYTHON)))
    parser.add_argument("--peer-config", default=str(PEER_CONFIG))
    parser.add_argument("--data", default=str(DATA))
    parser.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "attn_zoo_peer_benchmark"))
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--batches", type=int, default=4, help="distinct batches, each run once per round")
    parser.add_argument("--max-length", type=int, default=100, help="pieces per side, as the peer's max_length")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--budget", type=float, default=400.0, help="seconds of timed rounds per part (after 3)")
    parser.add_argument("--decode-length", type=int, default=60)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="torch threads of the peer: one worker each")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--bucketed", action="store_true",
        help="batches of one target-length bucket each, as `attn-zoo train` makes them (default: random verses)",
    )
    parser.add_argument(
        "--compare-allocator", action="store_true",
        help="also run ours with glibc's malloc defaults (not `keep_freed_memory`), and the peer with its settings",
    )
    parser.add_argument("--allocator-defaults", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--skip-decoding", action="store_true")
    parser.add_argument("--skip-training", action="store_true")
    parser.add_argument("--quick", action="store_true", help="2 batches of 16, 2 rounds, 8 tokens: checks the script runs")
    args = parser.parse_args()
    if args.worker == "ours":
        return ours_worker(args)
    if args.worker == "joeynmt":
        return peer_worker(args)
    if args.quick:
        args.batch_size, args.batches, args.rounds, args.decode_length = 16, 2, 2, 8

    print(f"peer benchmark: {args.batches} batches of {args.batch_size} training verses, {os.cpu_count()} CPUs", flush=True)
    batches_file = prepare_batches(args)
    data = np.load(batches_file)
    print(
        f"  {'bucketed' if args.bucketed else 'random (unbucketed)'} batches; vocabularies {int(data['source_vocab'])} / "
        f"{int(data['target_vocab'])}; target tokens per batch (real fraction of the padded target): "
        + ", ".join(
            f"{int((data[f'labels_{b}'] != 0).sum())} ({(data[f'labels_{b}'] != 0).mean():.2f})" for b in range(args.batches)
        ),
        flush=True,
    )
    common = ["--batches-file", str(batches_file), "--seed", str(args.seed)]
    workers = []
    for backend in args.backends:
        env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3")
        command = [sys.executable, __file__, "--worker", "ours", *common]
        workers.append(Worker(f"ours-{backend}", command, env=env))
        if args.compare_allocator:
            workers.append(Worker(f"ours-{backend}-malloc-defaults", command + ["--allocator-defaults"], env=env))
    peer = Path(args.peer_python)
    if not peer.exists():
        print(f"  JoeyNMT is NOT installed ({peer} does not exist): measuring ours only. See the docstring to install it.")
    else:
        check = subprocess.run([str(peer), "-c", "import joeynmt"], capture_output=True, text=True)
        if check.returncode != 0:
            print(f"  JoeyNMT is NOT importable with {peer}: measuring ours only.\n{check.stderr.strip()[-500:]}")
        else:
            from keras_attn_zoo.allocator import GLIBC_TUNABLES

            for threads in args.threads:
                command = [str(peer), __file__, "--worker", "joeynmt", "--peer-config", args.peer_config, *common]
                command += ["--threads", str(threads)]
                workers.append(Worker(f"joeynmt-{threads}t", command))
                if args.compare_allocator:  # the peer with the same malloc settings, set from outside
                    workers.append(Worker(f"joeynmt-{threads}t-kept", command, env=dict(os.environ, GLIBC_TUNABLES=GLIBC_TUNABLES)))
    for w in workers:
        print(f"  {w.name}: {w.info['parameters']:,} parameters; {w.info['versions']}", flush=True)
    references = ["joeynmt", "ours-tensorflow"] + [f"ours-{b}-malloc-defaults" for b in args.backends if args.compare_allocator]
    headline = []

    if not args.skip_training:
        tokens = sum(int((data[f"labels_{b}"] != 0).sum()) for b in range(args.batches))
        requests = [{"command": "train", "batch": b} for b in range(args.batches)]
        for w in workers:  # warm-up: every batch once (tracing; on JAX one compile per shape)
            seconds = [w.ask(**request)["seconds"] for request in requests]
            print(f"  warm-up training {w.name}: " + ", ".join(f"{s:.1f}s" for s in seconds), flush=True)
        times = with_best_peer(interleave(workers, requests, args.rounds, "training", args.budget))
        headline += ["training target tokens/s: " + line for line in report(times, tokens, "training target tokens/s", references)]

    if not args.skip_decoding:
        for beam in (1, 5):
            requests = [{"command": "decode", "beam": beam, "length": args.decode_length}]
            for w in workers:
                answer = w.ask(**requests[0])
                print(f"  warm-up decoding beam {beam} {w.name}: {answer['seconds']:.1f}s, output lengths {answer['lengths']}", flush=True)
            times = with_best_peer(interleave(workers, requests, args.rounds, f"beam {beam}", args.budget))
            label = "greedy" if beam == 1 else f"beam {beam}"
            headline += [
                f"{label} sentences/s: " + line
                for line in report(times, args.batch_size, f"{label} sentences/s ({args.decode_length} tokens each)", references)
            ]
    for w in workers:
        w.close()
    print("headline (median of per-round ratios; targets: training >= 2x joeynmt, goal 3x; decoding >= 3x joeynmt;"
          " jax >= 0.8x tensorflow):")
    for line in headline:
        print(line)


if __name__ == "__main__":
    main()
