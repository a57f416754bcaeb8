"""Shared by the evaluate_* scripts: record measured metrics in a preset and bundle its checkpoint.

    record(name, metrics)            the preset's [metrics] table, then every model card
    bundle(name, run_checkpoint)     the run's checkpoint into keras_attn_zoo/checkpoints/<name>,
                                     and the preset pointed at it (then `record` writes the cards)
    use_recipe_search(model, spec)   a run's model searches with its recipe's [evaluation] as it is now
"""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def record(name, metrics):
    """Write measured metrics into the preset's [metrics] table and regenerate the model cards."""
    from keras_attn_zoo import presets
    from keras_attn_zoo.model_card import write_cards

    presets.update_metrics(name, metrics)
    write_cards()  # model_cards/<name>.md and the bundled README.md, from the preset + metadata


def use_recipe_search(model, spec, folder):
    """The recipe's `[evaluation]` search (or None), made `model`'s defaults when it comes from a run `folder`.

    A run is measured (and bundled) with its recipe file's [evaluation] as it is now (settings
    chosen on dev after training); a bundled checkpoint (`folder` None) already carries them.
    """
    recipe_search = spec.get("evaluation") or None
    if folder is not None and recipe_search:
        model.search_options(**recipe_search)  # checked
        model.search_defaults = dict(recipe_search)
    return recipe_search


def bundle(name, folder, search_defaults=None, weights_dtype="float32"):
    """Copy a run's checkpoint folder into the package as preset `name`'s checkpoint.

    `search_defaults`, when given, replace the model's (settings tuned on dev after training).
    `weights_dtype="float16"` stores the weights at half the size (evaluate the bundled preset
    afterwards: that is what its card should report).
    The cards are written by `record`, which follows.
    """
    from keras_attn_zoo.checkpoint import load_checkpoint, read_json, save_checkpoint

    preset_file = ROOT / "keras_attn_zoo" / "presets" / f"{name}.toml"
    text = preset_file.read_text(encoding="utf-8")
    preset_file.write_text(text.replace(f'# checkpoint = "{name}"', f'checkpoint = "{name}"'), encoding="utf-8")
    folder = Path(folder)
    metadata = read_json(folder / "metadata.json")
    metadata.pop("files", None)
    model = load_checkpoint(folder)
    if search_defaults is not None:
        model.search_options(**search_defaults)  # checked
        model.search_defaults = dict(search_defaults)
    target = ROOT / "keras_attn_zoo" / "checkpoints" / name
    save_checkpoint(
        model, target, task=model.zoo_task, recipe=model.zoo_recipe, metadata=metadata, weights_dtype=weights_dtype
    )
    size = sum(p.stat().st_size for p in target.rglob("*") if p.is_file()) / 1e6
    print(f"bundled {target} ({size:.1f} MB)")
    return target
