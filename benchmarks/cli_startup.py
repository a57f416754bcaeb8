"""Speed of the first answer: `attn-zoo` from a cold process against `python -c "import tensorflow"`.

    python benchmarks/cli_startup.py [--model bible_en_es_bahdanau] [--repeats 5]

Runs, interleaved and each in a fresh process: the reference `python -c "import tensorflow"`,
`attn-zoo predict MODEL "<one sentence>"` and `attn-zoo --help`. Prints the median wall-clock
ratios against the reference; targets: predict <= 3x, --help <= 0.3x.
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time

SENTENCE = "And God said, Let there be light: and there was light."


def _timed(command, env):
    started = time.perf_counter()
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({result.returncode}): {result.stderr.strip()[-300:]}")
    return seconds, result.stdout.strip()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="bible_en_es_bahdanau")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    attn_zoo = shutil.which("attn-zoo", path=os.path.dirname(sys.executable)) or shutil.which("attn-zoo")
    if attn_zoo is None:
        raise SystemExit("attn-zoo is not installed in this environment (pip install .)")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    commands = {
        "import_tensorflow": [sys.executable, "-c", "import tensorflow"],
        "predict": [attn_zoo, "predict", args.model, SENTENCE],
        "help": [attn_zoo, "--help"],
    }
    times = {name: [] for name in commands}
    output = None
    for name, command in commands.items():  # warm the file system cache once
        _timed(command, env)
    for repeat in range(args.repeats):
        for name, command in commands.items():
            seconds, out = _timed(command, env)
            times[name].append(seconds)
            if name == "predict":
                output = out
        print(f"repeat {repeat + 1}: " + ", ".join(f"{n}={t[-1]:.2f}s" for n, t in times.items()), flush=True)
    print(f"predict output: {output}")
    reference = statistics.median(times["import_tensorflow"])
    for name in ("predict", "help"):
        print(f"{name}/import_tensorflow={statistics.median(times[name]) / reference:.2f}")


if __name__ == "__main__":
    main()
