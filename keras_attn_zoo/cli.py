"""`attn-zoo`: the command line. It parses arguments and calls the public Python API, nothing more.

    attn-zoo list                                  presets, their size and headline metric
    attn-zoo predict MODEL [INPUT ...]             translate, summarize or caption (one output line per input)
    attn-zoo evaluate MODEL                        the task's scores (BLEU, ROUGE, CIDEr, ...) on the preset's test split
    attn-zoo train RECIPE.toml                     train (resumable) and write a checkpoint
    attn-zoo pull hf://org/name | push | export    the Hub cache, uploads, SavedModel export
    attn-zoo demo [MODEL ...]                      a demo page in the browser: outputs and attention (Gradio)

MODEL is a preset name (`attn-zoo list`), `hf://org/name[@revision]` or a checkpoint folder.

`attn-zoo --help` and `attn-zoo list` import neither TensorFlow nor Keras: every heavy import is
inside the command that needs it.

Exit codes: 0 success; 1 a failure (one `error: ...` line on stderr, the traceback only with
`--debug`); 2 a usage error; 130 interrupted.
"""

import os

# Before anything imports TensorFlow: no C++ log lines. The lines TensorFlow writes while it loads
# (the oneDNN notice among them) go to file descriptor 2, silenced for each command (see
# `_native_stderr_silenced`): oneDNN itself stays on, it makes training about twice as fast on CPU.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import contextlib  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import sys  # noqa: E402
import traceback  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import click  # noqa: E402

import keras_attn_zoo  # noqa: E402
from keras_attn_zoo import stopping  # noqa: E402
from keras_attn_zoo.errors import DataError, ZooError  # noqa: E402

# Failures a user can act on: the message alone says what to fix.
_USER_ERRORS = (ZooError, OSError, ValueError, ImportError)
_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
# What an image item of the command line may be, when it is a folder: the files with these suffixes.
_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp", ".tif", ".tiff")


# --------------------------------------------------------------------------------------------
# Errors, logging and warnings.


def _first_line(error):
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


def _error_line(error, debug):
    if isinstance(error, _USER_ERRORS):
        return f"error: {_first_line(error)}"
    hint = "" if debug else " (run with --debug for the traceback)"
    return f"error: {type(error).__name__}: {_first_line(error)}{hint}"


class _ZooGroup(click.Group):
    """Turns every exception of a command into one `error:` line and exit 1 (or 130 on Ctrl-C)."""

    def invoke(self, ctx):
        debug = bool(ctx.params.get("debug"))
        try:
            return super().invoke(ctx)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except KeyboardInterrupt:
            if debug:
                traceback.print_exc()
            ctx.exit(130)
        except BrokenPipeError:  # `attn-zoo predict ... | head`: stop quietly
            with contextlib.suppress(Exception):
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            ctx.exit(1)
        except Exception as error:
            if debug:
                traceback.print_exc()
            click.echo(_error_line(error, debug), err=True)
            ctx.exit(1)


_BARS = []  # the progress bar on the screen, if any (see `_progress`)


def _echo_err(message):
    """One line on stderr: above the progress bar when one is drawn (which is drawn again below)."""
    if _BARS:
        _BARS[-1].echo(message)
    else:
        click.echo(message, err=True)


class _OneLineHandler(logging.Handler):
    """`warning: 2 input(s) ... were truncated.` on stderr; info messages as they are."""

    def emit(self, record):
        try:
            message = " ".join(self.format(record).split("\n"))
            if record.levelno >= logging.WARNING:
                message = f"{record.levelname.lower()}: {message}"
            _echo_err(message)
        except Exception:
            self.handleError(record)


def _show_warning(debug):
    def show(message, category, filename, lineno, file=None, line=None):
        # The package's own warnings (a data file with skipped rows, ...) as one line; those of
        # Keras, TensorFlow and the rest only with --debug.
        if debug or os.path.abspath(filename).startswith(_PACKAGE_DIR):
            _echo_err(f"warning: {' '.join(str(message).splitlines())}")

    return show


@contextlib.contextmanager
def _quiet_logging(debug):
    """For one command: the package logs to stderr one line per message; TF and absl are silent."""
    package = logging.getLogger("keras_attn_zoo")
    handler = _OneLineHandler()
    saved = {name: logging.getLogger(name).level for name in ("tensorflow", "absl")}
    saved_package = package.level, package.propagate
    package.addHandler(handler)
    package.setLevel(logging.DEBUG if debug else logging.INFO)
    package.propagate = False
    for name in saved:
        logging.getLogger(name).setLevel(logging.DEBUG if debug else logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("default")
            warnings.showwarning = _show_warning(debug)
            yield
    finally:
        package.removeHandler(handler)
        package.level, package.propagate = saved_package
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)


@contextlib.contextmanager
def _native_stderr_silenced(debug):
    """For one command: file descriptor 2 on /dev/null, Python's `sys.stderr` still on the terminal.

    TensorFlow's and tensorflow-text's C++ code writes to file descriptor 2 directly, whatever
    TF_CPP_MIN_LOG_LEVEL says: absl logs everything before its initialization ("All log messages
    before absl::InitializeLog() is called are written to STDERR", "Could not find cuda drivers"),
    and SentencePiece logs "precompiled_charsmap is empty" for every tokenizer. Python's own
    messages (errors, warnings, the training progress bar) are unaffected. With --debug nothing
    is silenced.
    """
    if debug:
        yield
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (AttributeError, OSError, ValueError):  # no file descriptor 2 to protect
        yield
        return
    python_stderr = sys.stderr
    try:
        is_fd_2 = python_stderr.fileno() == 2
    except (AttributeError, OSError, ValueError):  # CliRunner, or an already redirected sys.stderr
        is_fd_2 = False
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)
    if is_fd_2:
        encoding = getattr(python_stderr, "encoding", None) or "utf-8"
        sys.stderr = open(  # noqa: SIM115 (closed below)
            os.dup(saved), "w", encoding=encoding, errors="backslashreplace", buffering=1
        )
    try:
        yield
    finally:
        if is_fd_2:
            sys.stderr.close()
            sys.stderr = python_stderr
        os.dup2(saved, 2)
        os.close(saved)


# --------------------------------------------------------------------------------------------
# The group.


@click.group(name="attn-zoo", cls=_ZooGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--debug",
    is_flag=True,
    help="On an error, show the traceback; show all warnings and TensorFlow's native log lines.",
)
@click.version_option(keras_attn_zoo.__version__, "--version", prog_name="attn-zoo", message="%(prog)s %(version)s")
@click.pass_context
def cli(ctx, debug):
    """Attention encoder-decoders for Keras: translate, evaluate, train and share models.

    MODEL, wherever a command takes one, is a preset name (see `attn-zoo list`),
    hf://org/name[@revision] on the Hugging Face Hub, or a local checkpoint folder.
    """
    ctx.with_resource(_native_stderr_silenced(debug))
    ctx.with_resource(_quiet_logging(debug))


def main():
    """The `attn-zoo` console script."""
    from keras_attn_zoo.allocator import keep_freed_memory

    # Before TensorFlow or JAX start their threads: freed buffers are reused, not paged in afresh
    # every training step (see `keras_attn_zoo.allocator`).
    keep_freed_memory()
    # SIGTERM unwinds like an exception, so temporary folders and staged saves are cleaned up.
    stopping.handle_sigterm()
    cli(prog_name="attn-zoo")


def _load_model(reference):
    from keras_attn_zoo import from_pretrained

    return from_pretrained(reference)


# --------------------------------------------------------------------------------------------
# predict


def _read_items(texts, input_file, errors):
    """The command line's inputs as strings: one per TEXT argument, or one per line of a file.

    `-` as the only TEXT (or `--file -`) reads stdin. Files and stdin are read as bytes and decoded
    here, so a byte that is not UTF-8 is reported with its line number (or replaced by U+FFFD with
    errors="replace").
    """
    if input_file is not None and texts:
        raise click.UsageError("Give the inputs as TEXT arguments or with --file, not both.")
    if texts == ("-",):
        texts, input_file = (), "-"
    elif "-" in texts:
        raise click.UsageError("'-' (read stdin) must be the only TEXT.")
    if input_file is None:
        if not texts:
            raise click.UsageError("No input: give TEXT arguments, --file PATH, or - to read stdin.")
        return [_argument_text(text, number, errors) for number, text in enumerate(texts, start=1)]
    if input_file == "-":
        return _decode_lines(sys.stdin.buffer.read(), "stdin", errors)
    try:
        data = Path(input_file).read_bytes()
    except OSError as error:
        raise DataError(f"Cannot read input file {input_file!r}: {error.strerror or error}.") from None
    return _decode_lines(data, input_file, errors)


def _decode_lines(data, name, errors):
    """Split bytes on newlines (a final newline ends the last line) and decode each line as UTF-8."""
    if not data:
        return []
    lines = data.split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    items = []
    for number, raw in enumerate(lines, start=1):
        raw = raw.removesuffix(b"\r")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as error:
            if errors != "replace":
                bad = raw[error.start : error.start + 1].hex()
                raise DataError(
                    f"{name}:{number}: byte 0x{bad} at column {error.start + 1} is not UTF-8; "
                    "expected UTF-8 text (or pass --errors replace)."
                ) from None
            text = raw.decode("utf-8", "replace")
        items.append(text.removeprefix("\ufeff") if number == 1 else text)
    return items


def _argument_text(text, number, errors):
    """Python decodes command-line bytes that are not UTF-8 to surrogates; check them like lines."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        if errors != "replace":
            raise DataError(
                f"TEXT argument {number} is not UTF-8; expected UTF-8 text (or pass --errors replace)."
            ) from None
        text = text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return text


def _model_inputs(model, items):
    """The inputs of `model`, from the command line's items (`_read_items`).

    The one place that knows what an item is for each kind of input (`model.input_kind`, see
    `EncoderDecoder`): text models take the items as they are; for an image model each item is
    an image path, and a folder stands for its image files sorted by name (blank lines of a list
    of paths are skipped). Whether an image decodes is the model's to say, one input at a time.
    """
    kind = getattr(model, "input_kind", None)
    reader = _INPUT_READERS.get(kind)
    if reader is None:
        raise ZooError(
            f"attn-zoo predict cannot read inputs of kind {kind!r} (a {type(model).__name__}); "
            f"expected one of {', '.join(map(repr, _INPUT_READERS))}."
        )
    return reader(items)


def _text_inputs(items):
    return list(items)


def _image_inputs(items):
    paths = []
    for item in items:
        if not item.strip():
            continue
        folder = Path(item)
        if not folder.is_dir():
            paths.append(item)  # a missing or broken file is reported with its caption's line
            continue
        found = sorted(
            (path for path in folder.iterdir()
             if path.suffix.lower() in _IMAGE_SUFFIXES and not path.name.startswith(".") and path.is_file()),
            key=lambda path: path.name,
        )
        if not found:
            raise DataError(
                f"Received: the folder {item!r}, which holds no image file; expected files ending in "
                f"{', '.join(_IMAGE_SUFFIXES)}."
            )
        paths += [str(path) for path in found]
    return paths


_INPUT_READERS = {"text": _text_inputs, "image": _image_inputs}


def _one_line(text):
    return " ".join(text.splitlines())


def _plot_paths(path, count):
    """One input: PATH itself. Several: PATH's stem with a 1-based, zero-padded input number."""
    path = Path(path)
    if count == 1:
        return [path]
    width = len(str(count))
    suffix = path.suffix or ".png"
    return [path.with_name(f"{path.stem}-{number:0{width}d}{suffix}") for number in range(1, count + 1)]


def _check_plot_path(path):
    """Before any work: the heatmap(s) can be written at PATH (or PATH's numbered siblings)."""
    path = Path(path)
    expected = "expected a .png path in a folder that exists or can be created"
    if path.is_dir():
        raise ZooError(f"Received: --plot-attention {str(path)!r}, a folder; {expected}.")
    ancestor = path.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise ZooError(f"Received: --plot-attention {str(path)!r}, whose parent {str(ancestor)!r} is a file; {expected}.")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise ZooError(
            f"Received: --plot-attention {str(path)!r}, but the folder {str(ancestor)!r} is not writable; {expected}."
        )


def _search_options(command):
    """The search options shared by `predict`, `evaluate` and `export`.

    An option left out takes the model's default (`Seq2Seq.search_options`: a preset's
    `[evaluation]` settings, the ones its model card measured), else greedy search.
    """
    model_default = "  [default: the model's]"
    options = [
        click.option("--beam", type=click.IntRange(min=1), default=None, help="Beam size; 1 is greedy search." + model_default),
        click.option(
            "--length-penalty",
            "--alpha",
            "alpha",
            type=click.FloatRange(min=0.0),
            default=None,
            help="GNMT length penalty alpha (0: plain log probability)." + model_default,
        ),
        click.option(
            "--coverage-penalty",
            "--beta",
            "beta",
            type=click.FloatRange(min=0.0),
            default=None,
            help="GNMT coverage penalty beta (0: off)." + model_default,
        ),
        click.option(
            "--no-repeat-ngram",
            type=click.IntRange(min=0),
            default=None,
            help="Never repeat an n-gram of this size within an output (0: off)." + model_default,
        ),
        click.option(
            "--max-length",
            type=click.IntRange(min=1),
            default=None,
            help="The most output tokens, eos included.  [default: the model's max_target_length]",
        ),
        click.option(
            "--ban-unk/--allow-unk",
            "ban_unk",
            default=None,
            help="Never generate the unknown piece." + model_default,
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _search_kwargs(beam, alpha, beta, no_repeat_ngram, max_length, ban_unk):
    """The options of `_search_options` as `Seq2Seq.search_options` takes them (None: the model's)."""
    return dict(
        beam_size=beam,
        alpha=alpha,
        beta=beta,
        no_repeat_ngram_size=no_repeat_ngram,
        max_length=max_length,
        ban_unk=ban_unk,
    )


def _xla_option(command):
    """--xla/--no-xla for the commands that run many searches (`Seq2Seq.generate(jit_compile=)`)."""
    return click.option(
        "--xla/--no-xla",
        "xla",
        default=None,
        help="Compile the search with XLA: faster per batch, but every new input shape compiles first "
        "(about a second), so it pays off on long input files.  [default: on with a GPU, off on CPU]",
    )(command)


def _jit_compile(xla):
    return "auto" if xla is None else xla


@cli.command()
@click.argument("model")
@click.argument("texts", nargs=-1, metavar="[INPUT]...")
@click.option(
    "--file", "-f", "input_file", metavar="PATH", help="Read the inputs (texts, or image paths) from PATH, one per line ('-': stdin)."
)
@click.option(
    "--errors",
    type=click.Choice(["strict", "replace"]),
    default="strict",
    show_default=True,
    help="Bytes that are not UTF-8 in the input: stop with an error naming the line, or replace them with U+FFFD.",
)
@_search_options
@click.option(
    "--batch-size", type=click.IntRange(min=1), default=64, show_default=True, help="Inputs per search call."
)
@_xla_option
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line: input, output, score, truncated (the input was cut), truncated_output (the output stopped at its length limit), error (an image that could not be read), and for a pointer-generator `copy`: each output token with its p_gen and the source position it was copied from.")
@click.option(
    "--attention",
    is_flag=True,
    help="With --json: add output_tokens and attention (one row of weights per output token), with source_tokens "
    "for a text, or for an image grid ([rows, columns] of the encoder's grid; each row of weights is row-major "
    "over it) and image_box (where the picture lies in the square the model saw).",
)
@click.option(
    "--plot-attention",
    "plot_path",
    metavar="PNG",
    help="Draw each input's attention: a heatmap for a text, the image with each word's attention over it for an "
    "image. One input: written to PNG. Several inputs: one file per input, numbered from 1 in input order "
    "(out.png -> out-1.png, out-2.png, ...; zero-padded to the same width); an empty input or an image that "
    "could not be read gets no file.",
)
def predict(
    model,
    texts,
    input_file,
    errors,
    beam,
    alpha,
    beta,
    no_repeat_ngram,
    max_length,
    ban_unk,
    batch_size,
    xla,
    as_json,
    attention,
    plot_path,
):
    """Run MODEL (translate, summarize, caption) on each input: one output line per input, in input order.

    The inputs are the INPUT arguments, or the lines of --file PATH, or the lines of stdin when
    INPUT is - alone. For a text model each input is a text: an empty one gives an empty output
    line. For a captioner each input is an image path (a folder: its images, sorted by name): an
    image that cannot be read gives one `error:` line on stderr and an empty output line (with
    --json a record with "error"), the others are captioned, and the command exits with 1 at the
    end. Start an INPUT that begins with '-' after `--`.

    \b
    Examples:
      attn-zoo predict bible_en_es_bahdanau "In the beginning God created the heavens."
      attn-zoo predict ./runs/my_run/checkpoint --file verses.txt --beam 5 --length-penalty 0.6
      cat verses.txt | attn-zoo predict hf://org/name@v1 - --json
      attn-zoo predict ./runs/captioner/checkpoint photos/ cat.png --plot-attention attention.png
    """
    if attention and not as_json:
        raise click.UsageError(
            "--attention adds the weights to --json output; add --json (or use --plot-attention PNG)."
        )
    if plot_path is not None:
        from keras_attn_zoo.requirements import require

        require("matplotlib", purpose="--plot-attention")
        _check_plot_path(plot_path)
    items = _read_items(texts, input_file, errors)
    if not items:
        return
    loaded = _load_model(model)
    inputs = _model_inputs(loaded, items)
    predictions = loaded.predict_inputs(
        inputs,
        batch_size=batch_size,
        return_attention=attention or plot_path is not None,
        return_details=as_json or plot_path is not None,
        jit_compile=_jit_compile(xla),
        **_search_kwargs(beam, alpha, beta, no_repeat_ngram, max_length, ban_unk),
    )
    failed = 0
    for item, prediction in zip(inputs, predictions):
        if prediction.error is not None:
            failed += 1
            click.echo(f"error: {_one_line(prediction.error)}", err=True)
        if as_json:
            record = {"input": item, **prediction.to_dict(attention=attention)}
            click.echo(json.dumps(record, ensure_ascii=False))
        else:
            click.echo(_one_line(prediction.text))
    if plot_path is not None:
        for path, item, prediction in zip(_plot_paths(plot_path, len(inputs)), inputs, predictions):
            loaded.plot_prediction(prediction, item, path)
    if failed:
        raise click.exceptions.Exit(1)


# --------------------------------------------------------------------------------------------
# list


def _folder_bytes(folder):
    if folder is None or not os.path.isdir(folder):
        return None
    return sum(path.stat().st_size for path in Path(folder).rglob("*") if path.is_file())


def _human_size(size):
    if size is None:
        return "-"
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000


def _headline(preset):
    """`(metric label, test score with beam 5 or None)`: the first headline metric of the preset's task."""
    from keras_attn_zoo.model_card import scores
    from keras_attn_zoo.task_metrics import metrics_for

    metric, label = metrics_for(preset.get("task")).headline[0]
    for row in scores(preset.get("metrics")):
        if row.split == "test" and row.metric == metric and row.beam == 5:
            return label, float(row.value)
    return label, None


@cli.command("list")
@click.option("--json", "as_json", is_flag=True, help="A JSON list of objects instead of a table.")
def list_presets_command(as_json):
    """List the presets: name, task, attention, checkpoint size and the task's headline test score
    with beam 5 (BLEU for translation, ROUGE-L for summarization)."""
    from keras_attn_zoo.presets import bundled_checkpoint, list_presets

    rows = []
    for preset in list_presets():
        folder = bundled_checkpoint(preset["name"])
        metric, value = _headline(preset)
        rows.append(
            {
                "name": preset["name"],
                "task": preset.get("task"),
                "attention": preset.get("attention"),
                "checkpoint_bytes": _folder_bytes(folder),
                "headline_metric": metric,
                "test_score_beam5": value,
            }
        )
    if as_json:
        click.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    header = ("NAME", "TASK", "ATTENTION", "SIZE", "TEST SCORE (BEAM 5)")
    table = [header] + [
        (
            row["name"],
            str(row["task"] or "-"),
            str(row["attention"] or "none"),
            _human_size(row["checkpoint_bytes"]),
            "not measured" if row["test_score_beam5"] is None else f"{row['headline_metric']} {row['test_score_beam5']:.2f}",
        )
        for row in rows
    ]
    widths = [max(len(line[i]) for line in table) for i in range(len(header))]
    for line in table:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip())


# --------------------------------------------------------------------------------------------
# pull, push, export


@cli.command()
@click.argument("model")
def pull(model):
    """Download MODEL (hf://ORG/NAME[@REVISION], or a preset name for its Hub repository) into the
    local Hub cache and print the folder.

    The files are checked against the checkpoint's sha256 list. Later commands that name the
    same model read the cache.
    """
    from keras_attn_zoo.checkpoint import verify_checkpoint
    from keras_attn_zoo.pretrained import checkpoint_folder

    folder, _ = checkpoint_folder(model)
    verify_checkpoint(folder)
    click.echo(folder)


@cli.command()
@click.argument("model")
@click.argument("repo", metavar="hf://ORG/NAME")
@click.option(
    "--private", is_flag=True, help="Create the repository private (an existing public one is refused)."
)
@click.option("--branch", metavar="B", help="Commit to branch B, created from main if needed.  [default: main]")
@click.option("--message", "-m", metavar="M", help="The commit message.")
def push(model, repo, private, branch, message):
    """Upload MODEL to a Hub repository and print the commit as hf://ORG/NAME@SHA.

    The token comes from HF_TOKEN or `hf auth login`. Load exactly this upload later with
    the printed URI.
    """
    from keras_attn_zoo import push_to_hub
    from keras_attn_zoo.hub import HUB_SCHEME, parse_hub_uri

    repo_id = parse_hub_uri(repo)[0] if repo.startswith(HUB_SCHEME) else repo
    sha = push_to_hub(_load_model(model), repo, private=private, branch=branch, commit_message=message)
    click.echo(f"{HUB_SCHEME}{repo_id}@{sha}")


@cli.command()
@click.argument("model")
@click.argument("directory", metavar="DIR")
@_search_options
def export(model, directory, beam, alpha, beta, no_repeat_ngram, max_length, ban_unk):
    """Export MODEL as a TensorFlow SavedModel in DIR, strings in and strings out, and print DIR.

    The search settings are fixed at export time. Serve it with TensorFlow and tensorflow-text
    only (signature serving_default: text -> translation, score).
    """
    from keras_attn_zoo.export import export_saved_model

    options = _search_kwargs(beam, alpha, beta, no_repeat_ngram, max_length, ban_unk)
    result = export_saved_model(_load_model(model), directory, **options)
    click.echo(result if result is not None else directory)


# --------------------------------------------------------------------------------------------
# evaluate


def _column(value):
    """A column name, or a 0-based index when all digits."""
    return int(value) if value is not None and value.isdigit() else value


def _task_before_loading(reference):
    """The task of a preset or a local checkpoint folder, read without loading it (else None)."""
    from keras_attn_zoo.presets import list_presets

    for preset in list_presets():
        if preset["name"] == reference:
            return preset["task"]
    config = Path(reference) / "config.json"
    try:
        return json.loads(config.read_text(encoding="utf-8")).get("task") if config.is_file() else None
    except (OSError, ValueError, AttributeError):
        return None  # the loader gives the one-line error about a broken checkpoint


def _recipe_of(reference, model):
    """The recipe file behind a preset or a loaded checkpoint (`recipe_file.find_recipe`), or None."""
    from keras_attn_zoo.recipe_file import find_recipe

    return find_recipe(reference, model, package_root=Path(_PACKAGE_DIR).parent)


class _Bar:
    """`label  [########            ]  120/817` on one line of a terminal, redrawn on each update.

    Messages (`echo`) are written above it: the line is cleared, the message printed, the bar
    drawn again below, so warnings never break it.
    """

    WIDTH = 30

    def __init__(self, length, label, file):
        self.length, self.label, self.file, self.done = length, label, file, 0

    def _draw(self):
        filled = self.WIDTH * self.done // max(self.length, 1)
        self.file.write(f"\r{self.label}  [{'#' * filled}{' ' * (self.WIDTH - filled)}]  {self.done}/{self.length}\x1b[K")
        self.file.flush()

    def update(self, steps):
        self.done = min(self.length, self.done + steps)
        self._draw()

    def echo(self, message):
        self.file.write("\r\x1b[K" + message + "\n")
        self._draw()

    def close(self):
        self.file.write("\n")
        self.file.flush()


class _NoBar:
    def update(self, steps):
        pass

    def echo(self, message):
        click.echo(message, err=True)


@contextlib.contextmanager
def _progress(length, label, file=None):
    """A progress bar on stderr (or `file`) when it is a terminal; otherwise nothing is drawn."""
    file = file or sys.stderr
    bar = _Bar(length, label, file) if file.isatty() else _NoBar()
    _BARS.append(bar)
    try:
        if isinstance(bar, _Bar):
            bar._draw()
        yield bar
    finally:
        _BARS.remove(bar)
        if isinstance(bar, _Bar):
            bar.close()


def _print_scores(report, metrics):
    click.echo(f"model   {report['model']}")
    split = f"split {report['split']}, " if report["split"] else ""
    click.echo(f"data    {report['data']} ({split}{report['n']} examples)")
    search = f"search  beam {report['beam_size']}, length penalty {report['alpha']:g}, coverage penalty {report['beta']:g}"
    if report.get("no_repeat_ngram_size"):
        search += f", no repeated {report['no_repeat_ngram_size']}-grams"
    click.echo(search)
    for line in metrics.lines(report):
        click.echo(line)


@cli.command()
@click.argument("model")
@click.option(
    "--data",
    "data_path",
    metavar="PATH",
    help="A .tsv/.csv/.jsonl(.gz) or Anki .txt file of pairs.  [default: the preset's recipe data]",
)
@click.option("--source", metavar="COL", help="The source column of --data (a name, or a 0-based index).")
@click.option("--target", metavar="COL", help="The reference column of --data (a name, or a 0-based index).")
@click.option(
    "--split",
    metavar="NAME",
    help="Keep the rows whose `split` column is NAME.  [default: the recipe's test split; all rows of --data]",
)
@_search_options
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Score only the first N pairs.")
@click.option(
    "--batch-size", type=click.IntRange(min=1), default=64, show_default=True, help="Inputs per search call."
)
@_xla_option
@click.option(
    "--json", "as_json", is_flag=True, help="Print everything as one JSON object (unrounded scores under 'raw')."
)
def evaluate(
    model, data_path, source, target, split, beam, alpha, beta, no_repeat_ngram, max_length, ban_unk,
    limit, batch_size, xla, as_json,
):
    """Run MODEL on a test set and score it with its task's metrics: for translation sacreBLEU BLEU
    (with its signature), chrF and BLEU by source length; for summarization ROUGE-1/2/L, novel
    n-grams, repeated trigrams, mean length and rare-word recall; for captioning BLEU-1..4, METEOR,
    ROUGE-L, CIDEr (pycocoevalcap, all references of an image) and exact match, and where the data
    records each scene's items, attention localisation.

    A preset is scored on the test split of its recipe's data, with the model's search settings
    (the ones its card measured), unless --data PATH --source COL --target COL name another file.
    """
    if data_path is None and (source is not None or target is not None):
        raise click.UsageError("--source and --target name columns of --data PATH; add --data.")
    if data_path is not None and (source is None or target is None):
        raise click.UsageError("--data PATH needs --source COL and --target COL.")
    from keras_attn_zoo.recipe_file import data_file, load_recipe_file, recipe_task
    from keras_attn_zoo.requirements import require
    from keras_attn_zoo.task_metrics import metrics_for

    spec = None
    if data_path is None:
        recipe = _recipe_of(model, None)  # a preset's recipe, found before the model is loaded
        spec = load_recipe_file(recipe) if recipe is not None else None
        if spec is not None:
            data_file(spec)  # missing data: say how to get it before loading anything
    task = recipe_task(spec) if spec is not None else _task_before_loading(model)
    if task is not None:  # a missing metric package: say so before loading anything
        require(*metrics_for(task).packages, purpose="attn-zoo evaluate")
    from keras_attn_zoo.task_data import read_examples

    loaded = _load_model(model)
    task = getattr(loaded, "zoo_task", None)
    metrics = metrics_for(task)
    require(*metrics.packages, purpose="attn-zoo evaluate")
    search = loaded.search_options(**_search_kwargs(beam, alpha, beta, no_repeat_ngram, max_length, ban_unk))
    if data_path is None:
        if spec is None:
            recipe = _recipe_of(getattr(loaded, "zoo_preset", None) or model, loaded)
            if recipe is None:
                raise DataError(
                    f"Found no recipe file for {model!r} to take its test data from; "
                    "pass --data PATH --source COL --target COL."
                )
            spec = load_recipe_file(recipe)
            data_file(spec)
        data = spec["data"]
        data_path, source, target = data["path"], data["source"], data["target"]
        split = split or data.get("test_split", "test")
    prefix = spec["data"].get("prefix") if spec is not None else None
    examples = read_examples(task, data_path, _column(source), _column(target), split=split, prefix=prefix).head(limit)
    training_targets = None
    if metrics.uses_training_targets and spec is not None:
        data = spec["data"]
        training_targets = read_examples(
            task, data["path"], data["source"], data["target"], split=data.get("train_split", "train")
        ).references
    with _progress(len(examples), f"Running the model on {len(examples)} inputs") as bar:
        predictions = loaded.predict_inputs(  # the one interface every model implements
            examples.inputs,
            batch_size=batch_size,
            return_attention=metrics.uses_attention and bool(examples.extras),
            jit_compile=_jit_compile(xla),
            progress=bar.update,  # once per batch
            **search,
        )
    hypotheses = [prediction.text for prediction in predictions]
    extras = {**examples.extras, "predictions": predictions}
    scores = metrics.score(examples.sources, hypotheses, examples.references, training_targets, extras)
    report = {"model": model, "data": str(data_path), "split": split, **search, **scores}
    if as_json:
        click.echo(json.dumps(report, indent=2, ensure_ascii=False))
    else:
        _print_scores(report, metrics)


# --------------------------------------------------------------------------------------------
# demo


@cli.command()
@click.argument("models", nargs=-1, metavar="[MODEL]...")
@click.option("--host", default="127.0.0.1", show_default=True, help="The address to serve on (0.0.0.0: every interface).")
@click.option("--port", type=click.IntRange(1, 65535), default=7860, show_default=True, help="The port to serve on.")
def demo(models, host, port):
    """Serve the demo page: each MODEL's output and attention in a browser (Gradio), until Ctrl-C.

    Without MODEL: every preset with a bundled checkpoint (nothing is downloaded). Text models get
    an input box, beam size and length penalty, the output and the attention heatmap; captioners an
    image upload and each word's attention over the image; two models of a kind also get a
    side-by-side tab. Examples come from each model's test split. Needs gradio:
    pip install 'keras-attn-zoo[demo]'.
    """
    from keras_attn_zoo.requirements import require

    require("gradio", purpose="attn-zoo demo")
    from keras_attn_zoo.demo import launch_demo

    click.echo(f"Serving the demo on http://{host}:{port}/ (Ctrl-C to stop)", err=True)
    launch_demo(list(models) or None, host=host, port=port, quiet=True)


# --------------------------------------------------------------------------------------------
# train


@cli.command()
@click.argument("recipe", metavar="RECIPE.toml")
@click.option(
    "--run-dir", metavar="DIR", help="The run folder.  [default: the recipe's [output] dir, else runs/<name>]"
)
@click.option(
    "--distribute",
    type=click.Choice(["none", "mirrored"]),
    default="none",
    show_default=True,
    help="mirrored: tf.distribute.MirroredStrategy over the local GPUs (or the CPU).",
)
def train(recipe, run_dir, distribute):
    """Train the recipe of RECIPE.toml and print the best checkpoint's folder.

    Run the same command again to resume after the last finished epoch; on a finished run it
    prints the checkpoint at once.
    """
    from keras_attn_zoo.recipe_file import data_file, finished_run, load_recipe_file, run_folder, saved_state
    from keras_attn_zoo.requirements import require

    # Everything that can be answered or refused without TensorFlow is, before importing it.
    spec = load_recipe_file(recipe)
    finished = finished_run(spec, run_dir)
    if finished is not None:
        checkpoint, stopped = finished
        logging.getLogger("keras_attn_zoo").info(
            "%s already finished (%s); nothing to train.", run_folder(spec, run_dir), stopped
        )
        click.echo(checkpoint)
        return
    data_file(spec)
    tokenizers = run_folder(spec, run_dir) / "tokenizers"
    if not all((tokenizers / f"{side}.spm.model").exists() for side in ("source", "target")):
        require("sentencepiece", purpose="attn-zoo train (to train the tokenizers)")
    from keras_attn_zoo.training import train as train_recipe

    distribute = None if distribute == "none" else distribute
    try:
        checkpoint = train_recipe(recipe, run_dir=run_dir, distribute=distribute, verbose=1)
    except (KeyboardInterrupt, SystemExit) as stop:
        if isinstance(stop, SystemExit) and stop.code != stopping.EXIT_CODE:
            raise
        # Stopped from outside (Ctrl-C, `kill`, `timeout`): say what is kept and how to go on.
        state = saved_state(run_folder(spec, run_dir)) or {}
        done = f"after epoch {state['epochs']}" if state.get("epochs") else "from the start (no epoch had finished)"
        again = f"attn-zoo train {recipe}" + (f" --run-dir {run_dir}" if run_dir else "")
        click.echo(f"\nStopped. `{again}` resumes {done}.", err=True)
        raise
    click.echo(checkpoint)


if __name__ == "__main__":
    main()
