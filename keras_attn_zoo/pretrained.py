"""`from_pretrained` and `push_to_hub`: a model by name, Hub URI or folder, and back to the Hub.

    from_pretrained("bible_en_es_bahdanau")        a preset: its bundled checkpoint, else its Hub repo
    from_pretrained("hf://org/name")               the head of `main` of a Hub model repository
    from_pretrained("hf://org/name@v1")            a branch, tag or commit sha of it
    from_pretrained("org/name", revision="v1")     the same, the way huggingface_hub users write it
    from_pretrained("runs/my_run/checkpoint")      a local checkpoint folder

A preset name wins over a folder of the same name in the working directory: write
`./name` for the folder. Everything is read by `keras_attn_zoo.checkpoint.load_checkpoint`, which
checks every file's sha256 and never runs code from the checkpoint. Importing this module imports
neither TensorFlow nor Keras: they load with the first model.
"""

import os
from pathlib import Path

from keras_attn_zoo import hub, presets
from keras_attn_zoo.errors import CheckpointError, HubError, UnknownNameError
from keras_attn_zoo.staging import scratch_folder

PUSH_STAGING_PREFIX = "attn-zoo-push-"  # the checkpoint folder `push_to_hub` uploads, in the temp folder

_EXPECTED = "expected a preset name, a checkpoint folder, or 'hf://namespace/name[@revision]'"


def checkpoint_folder(name_or_path, token=None, cache_dir=None, revision=None):
    """The local checkpoint folder `from_pretrained` would load, downloading it if needed.

    Returns:
        `(folder, preset_name)`: a Path, and the preset's name when one was named (else None).
    """
    if revision is not None and (not isinstance(revision, str) or not revision):
        raise HubError(f"Received: revision={revision!r}; expected a branch, tag or commit sha (a non-empty str).")
    if isinstance(name_or_path, os.PathLike):
        return _local_folder(os.fspath(name_or_path), revision), None
    if not isinstance(name_or_path, str):
        raise TypeError(f"Received: {name_or_path!r} of type {type(name_or_path).__name__}; {_EXPECTED}.")
    if name_or_path.startswith(hub.HUB_SCHEME):
        repo_id, uri_revision = hub.parse_hub_uri(name_or_path)
        if revision is not None and uri_revision is not None and revision != uri_revision:
            raise HubError(
                f"Received: {name_or_path!r} and revision={revision!r}; name the revision once."
            )
        revision = revision or uri_revision
        return Path(hub.download(repo_id, revision, cache_dir=cache_dir, token=token)), None
    names = presets.preset_names()
    if name_or_path in names:
        bundled = presets.bundled_checkpoint(name_or_path)
        if bundled is not None and revision is None:
            return bundled, name_or_path
        preset = presets.get_preset(name_or_path)
        revision = revision or preset.get("hub_revision")
        folder = hub.download(preset["hub_repo"], revision, cache_dir=cache_dir, token=token)
        return Path(folder), name_or_path
    path = Path(name_or_path).expanduser()
    if revision is not None and not path.exists() and _looks_like_repo_id(name_or_path):
        # huggingface_hub's way: from_pretrained("org/name", revision="v1")
        return Path(hub.download(name_or_path, revision, cache_dir=cache_dir, token=token)), None
    looks_like_path = os.sep in name_or_path or "/" in name_or_path or name_or_path.startswith((".", "~"))
    if path.exists() or looks_like_path:
        return _local_folder(name_or_path, revision), None
    from keras_attn_zoo.recipes.registry import closest

    raise UnknownNameError(
        f"Unknown preset {name_or_path!r}.{closest(name_or_path, names)} "
        "Or pass a checkpoint folder or 'hf://namespace/name[@revision]'."
    )


def _looks_like_repo_id(name):
    return name.count("/") == 1 and not name.startswith((".", "/", "~")) and all(name.split("/"))


def _local_folder(path, revision=None):
    folder = Path(path).expanduser()
    if folder.is_dir():
        if revision is not None:
            raise HubError(
                f"Received: revision={revision!r} for the local folder {path!r}; a revision names a Hub commit "
                f"(write 'hf://namespace/name' for a Hub repository)."
            )
        return folder
    if folder.exists():
        raise CheckpointError(f"Received: {path!r}, a file; {_EXPECTED} (a checkpoint is a folder).")
    hint = ""
    if path.count("/") == 1 and not path.startswith((".", "/", "~")):
        hint = f" For the Hub repository, write 'hf://{path}'."
    raise CheckpointError(f"Received: {path!r}, which does not exist; {_EXPECTED}.{hint}")


def from_pretrained(name_or_path, *, revision=None, cache_dir=None, token=None):
    """Load a trained model by preset name, `hf://` URI or checkpoint folder.

    Args:
        name_or_path: a preset name (see `keras_attn_zoo.list_presets()`): its checkpoint bundled
            in the package, else its Hub repository; `hf://namespace/name` or
            `hf://namespace/name@revision` (branch, tag or commit sha); `namespace/name` with
            `revision=` given; or a local checkpoint folder.
        revision: a branch, tag or commit sha of the Hub repository, as in huggingface_hub
            (the same as `@revision` in the URI; naming two different ones is an error). For a
            preset it loads that revision of the preset's Hub repository instead of the bundled
            checkpoint. Not allowed with a local folder.
        cache_dir: the Hub cache to download into instead of `HF_HUB_CACHE`.
        token: a Hub token for a private repository; None uses `HF_TOKEN` or the saved login.

    Returns:
        The model (a `keras_attn_zoo.models.Seq2Seq` with its tokenizers attached), with
        `zoo_metadata` (its metadata.json), `zoo_task`, `zoo_recipe` and `zoo_preset` (the
        preset's name, or None) set.

    Raises:
        UnknownNameError: not a preset name and no such file or folder; the message names the
            closest presets.
        CheckpointError: a path that is not a checkpoint folder, or a checkpoint that is
            incomplete, corrupt, or names something not allowed.
        HubError: the Hub repository or revision does not exist or cannot be reached (and it is not
            in the cache).

    Example:

    >>> model = keras_attn_zoo.from_pretrained("bible_en_es_bahdanau")  # doctest: +SKIP
    >>> model.predict_texts(["Jonah prayed to Yahweh."])[0].text  # doctest: +SKIP
    """
    from keras_attn_zoo.checkpoint import load_checkpoint

    folder, preset_name = checkpoint_folder(name_or_path, token=token, cache_dir=cache_dir, revision=revision)
    model = load_checkpoint(folder)
    model.zoo_preset = preset_name
    return model


def push_to_hub(
    model, repo, private=False, branch=None, commit_message=None, card=None, token=None, *, timeout=None, attempts=None
):
    """Push a model to a Hub model repository as a checkpoint folder; returns the commit sha.

    The model is written with `keras_attn_zoo.checkpoint.save_checkpoint` (keeping the metadata
    it was loaded with, if any) into a temporary folder (`staging.scratch_folder`: removed on any
    exit), then `keras_attn_zoo.hub.upload_folder` makes one commit that leaves exactly that
    folder on the branch, with bounded timeouts and retries.

    Args:
        model: a `Seq2Seq` (tokenizers attached, to be usable with `predict_texts` after loading).
        repo: "namespace/name" or "hf://namespace/name" ("hf://namespace/name@branch" pushes to
            that branch).
        private: create the repository private (see `hub.upload_folder`).
        branch: the branch to commit to; None for `main`.
        commit_message: the commit's summary.
        card: the README.md text. None: the card of the preset the model came from (its
            `zoo_metadata["name"]` is a preset), else a card rendered from what the model knows.
        token: a Hub token with write access; None uses `HF_TOKEN` or the saved login.
        timeout, attempts: see `keras_attn_zoo.hub.upload_folder`.

    Returns:
        The 40-hex commit sha: `from_pretrained(f"hf://{repo}@{sha}")` loads exactly this push.
    """
    from keras_attn_zoo.checkpoint import save_checkpoint

    repo_id = repo
    if isinstance(repo, str) and repo.startswith(hub.HUB_SCHEME):
        repo_id, revision = hub.parse_hub_uri(repo)
        if revision is not None and branch is not None and revision != branch:
            raise HubError(f"Received: repo={repo!r} and branch={branch!r}; name the branch once.")
        branch = branch or revision
    hub._check_repo_id(repo_id)
    metadata = dict(getattr(model, "zoo_metadata", None) or {})
    metadata.pop("files", None)
    task = getattr(model, "zoo_task", None) or "translation"
    recipe = getattr(model, "zoo_recipe", None) or "translation"
    if card is None:
        card = _default_card(model, repo_id, task, metadata)
    with scratch_folder(PUSH_STAGING_PREFIX) as temporary:
        folder = save_checkpoint(
            model, Path(temporary) / repo_id.split("/")[-1], task=task, recipe=recipe, metadata=metadata, card=card
        )
        return hub.upload_folder(
            folder,
            repo_id,
            private=private,
            branch=branch,
            commit_message=commit_message,
            token=token,
            timeout=timeout,
            attempts=attempts,
        )


def _default_card(model, repo_id, task, metadata):
    from keras_attn_zoo.model_card import render_card

    name = metadata.get("name")
    if name in presets.preset_names():
        return render_card(presets.get_preset(name), metadata or None)
    attention = getattr(model, "attention", None)
    minimal = {"name": repo_id.split("/")[-1], "task": task, "attention": attention or "none", "hub_repo": repo_id}
    return render_card(minimal, metadata or None)
