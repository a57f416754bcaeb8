"""Fraction of held-out references that survive SubwordTokenizer encode -> decode unchanged.

Trains a SentencePiece model on the train split of one column and round-trips the test split of the
same column through the in-graph tokenize/detokenize. The reference is the text itself: a fraction
below 1 means the tokenizer loses or rewrites characters (unseen characters become unk, a
normalization rule rewrites them).

    python benchmarks/tokenizer_roundtrip.py --vocab-size 8000
    python benchmarks/tokenizer_roundtrip.py --vocab-size 4000 --normalization nmt_nfkc

Prints one line, `roundtrip_exact=<fraction> n=<count>`; details (training time, first failures) go
to stderr.
"""

import argparse
import sys
import time
from pathlib import Path

from keras_attn_zoo.data import read_pairs
from keras_attn_zoo.tokenizer import SubwordTokenizer

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "bible_en_es.tsv.gz"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="a TSV with split/source/target columns")
    parser.add_argument("--column", default="es", help="the column whose texts are round-tripped")
    parser.add_argument("--other", default="en", help="any other column (read_pairs reads pairs)")
    parser.add_argument("--train-split", default="train")
    parser.add_argument("--eval-split", default="test")
    parser.add_argument("--vocab-size", type=int, default=8000)
    parser.add_argument("--model-type", default="unigram")
    parser.add_argument("--normalization", default="identity", help="SentencePiece normalization_rule_name")
    args = parser.parse_args(argv)

    _, train = read_pairs(args.data, args.other, args.column, split=args.train_split)
    _, test = read_pairs(args.data, args.other, args.column, split=args.eval_split)
    start = time.perf_counter()
    tokenizer = SubwordTokenizer.train(
        train, args.vocab_size, model_type=args.model_type, normalization_rule_name=args.normalization
    )
    seconds = time.perf_counter() - start
    decoded = tokenizer.decode(tokenizer.encode(test))
    failures = [(ref, out) for ref, out in zip(test, decoded) if ref != out]
    print(
        f"trained {args.model_type} vocab={tokenizer.vocab_size} normalization={args.normalization} on "
        f"{len(train)} sentences in {seconds:.1f} s; {len(failures)} of {len(test)} test texts changed",
        file=sys.stderr,
    )
    for ref, out in failures[:3]:
        print(f"  ref: {ref!r}\n  out: {out!r}", file=sys.stderr)
    print(f"roundtrip_exact={(len(test) - len(failures)) / len(test):.4f} n={len(test)}")


if __name__ == "__main__":
    main()
