"""Checkpoint folders on the Hugging Face Hub: `hf://` URIs, download and push.

A checkpoint on the Hub is a model repository that holds the files of a checkpoint folder
(`config.json`, `model.weights.h5`, `assets/`, `metadata.json`, `README.md`), plus the
`.gitattributes` the Hub adds to every new repository. `hf://org/name` names the head of its `main`
branch; `hf://org/name@revision` a branch, a tag or a commit sha (write a '/' in a branch name as
`%2F`). This module knows folders and the Hub only: reading a folder is `checkpoint.py`'s job.

`huggingface_hub` is imported inside the functions, so importing this module costs nothing. The
endpoint, cache and token come from huggingface_hub's own settings: `HF_ENDPOINT`, `HF_HUB_CACHE`
(or `HF_HOME`), `HF_TOKEN`, `HF_HUB_OFFLINE`.

Failing fast. Left alone, huggingface_hub 2.4 waits on an unreachable Hub: `snapshot_download` of a
commit sha lists the repository through `http_backoff` (5 retries, 1+2+4+8+8 s of sleep, ~25 s)
and `hf_hub_download` retries its HEAD request the same way (~23 s), while `repo_info` has no
timeout at all (a host that drops packets hangs it for minutes). `download` therefore first asks
for the repository's metadata once, without retries and with a timeout (`timeout`, default
`METADATA_TIMEOUT_S`, or `HF_HUB_ETAG_TIMEOUT` when set). If the Hub does not answer, or answers
5xx, the files come from the local cache or the call fails with one `HubError` line.

Uploads are bounded too: huggingface_hub's shared HTTP client has no timeout, so a Hub that accepts
the connection and never answers would hang `upload_folder` forever. During an upload every
request waits at most `UPLOAD_TIMEOUT_S` seconds for an answer (`timeout=`, or the environment
variable `ATTN_ZOO_UPLOAD_TIMEOUT`), and the push is tried `UPLOAD_ATTEMPTS` times in all (after 1 s,
then 2 s) when the Hub does not answer or answers 429/5xx; then it fails with one `HubError` line.
(With `hf_xet` installed, file contents bound for Xet storage travel through hf_xet's own client,
which has its own timeouts.)
"""

import contextlib
import logging
import os
import time

from keras_attn_zoo.errors import CheckpointError, HubError

HUB_SCHEME = "hf://"
DEFAULT_BRANCH = "main"
METADATA_TIMEOUT_S = 5.0
UPLOAD_TIMEOUT_S = 60.0
UPLOAD_ATTEMPTS = 3
UPLOAD_RETRY_WAIT_S = 1.0  # doubled after each failed attempt

_EXPECTED_URI = "expected 'hf://namespace/name' or 'hf://namespace/name@revision'"
_logger = logging.getLogger(__name__)


def parse_hub_uri(uri):
    """`hf://org/name[@revision]` -> `(repo_id, revision or None)`.

    Raises `HubError` for anything else: no `hf://`, no namespace, a path inside the repository, a
    dataset or Space, an empty revision.

    >>> parse_hub_uri("hf://keras-attn-zoo/bahdanau-iwslt@v1")
    ('keras-attn-zoo/bahdanau-iwslt', 'v1')
    """
    if not isinstance(uri, str) or not uri.startswith(HUB_SCHEME):
        raise HubError(f"Received: uri={uri!r}; {_EXPECTED_URI}.")
    from huggingface_hub import parse_hf_uri
    from huggingface_hub.errors import HfUriError

    try:
        parsed = parse_hf_uri(uri)
    except HfUriError as error:
        reason = str(error).split(". ", 1)[-1].strip().rstrip(".")
        raise HubError(f"Received: uri={uri!r}; {_EXPECTED_URI} ({reason}).") from None
    if parsed.type != "model":
        raise HubError(f"Received: uri={uri!r}, a {parsed.type} repository; {_EXPECTED_URI} (a model repository).")
    if parsed.path_in_repo:
        raise HubError(
            f"Received: uri={uri!r}, with a path '{parsed.path_in_repo}' after the repository; {_EXPECTED_URI}"
            " (write a '/' in a revision as %2F)."
        )
    return parsed.id, parsed.revision


def download(repo_id, revision=None, cache_dir=None, *, token=None, timeout=None):
    """Download a model repository at `revision` into the Hub cache; return the local folder.

    The folder is huggingface_hub's snapshot folder (under `cache_dir`, default `HF_HUB_CACHE`):
    read it, never write to it. A second call for a commit that is cached downloads nothing.

    Args:
        repo_id: `namespace/name`.
        revision: a branch, tag or commit sha; None for the head of `main`.
        cache_dir: the Hub cache to use instead of `HF_HUB_CACHE`.
        token: a Hub token for a private repository; None uses `HF_TOKEN` or the saved login.
        timeout: seconds to wait for the Hub's first answer (see the module docstring).

    Raises:
        HubError: the repository or revision does not exist (or is private and the token cannot
            read it), or the Hub cannot be reached (or `HF_HUB_OFFLINE=1`) and the revision is not
            in the cache, or a download failed.
    """
    import httpx2
    from huggingface_hub import HfApi, constants, snapshot_download
    from huggingface_hub.errors import (
        HfHubHTTPError,
        LocalEntryNotFoundError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    _check_repo_id(repo_id)
    api = HfApi(token=token)
    where = f"'{repo_id}' at revision '{revision or DEFAULT_BRANCH}' on {api.endpoint}"
    offline = constants.is_offline_mode()
    unreachable = None  # why the Hub did not answer; then only the cache can
    if not offline:
        try:
            api.repo_info(repo_id, revision=revision, timeout=_metadata_timeout(timeout, constants))
        except (RepositoryNotFoundError, RevisionNotFoundError) as error:
            raise HubError(_not_found(error, repo_id, revision, api.endpoint)) from None
        except HfHubHTTPError as error:
            if error.response.status_code < 500:
                raise HubError(f"The Hub refused to serve {where}: {_http_reason(error)}.") from None
            unreachable = f"it answered {_http_reason(error)}"
        except (httpx2.TransportError, OfflineModeIsEnabled) as error:
            unreachable = f"{type(error).__name__}: {_first_line(error) or 'no answer'}"
    try:
        local_only = offline or unreachable is not None
        folder = snapshot_download(
            repo_id, revision=revision, cache_dir=cache_dir, token=token, local_files_only=local_only
        )
    except LocalEntryNotFoundError:
        cache = cache_dir or constants.HF_HUB_CACHE
        reason = "offline mode is on (HF_HUB_OFFLINE=1)" if offline else f"the Hub could not be reached ({unreachable})"
        raise HubError(f"Cannot download {where}: {reason} and it is not complete in the cache {cache}.") from None
    except (RepositoryNotFoundError, RevisionNotFoundError) as error:
        raise HubError(_not_found(error, repo_id, revision, api.endpoint)) from None
    except HfHubHTTPError as error:
        raise HubError(f"Downloading {where} failed: {_http_reason(error)}.") from None
    except (httpx2.TransportError, OSError) as error:
        raise HubError(f"Downloading {where} failed: {type(error).__name__}: {_first_line(error)}.") from None
    if unreachable is not None:
        _logger.warning("The Hub at %s did not answer (%s); using the cached %s.", api.endpoint, unreachable, folder)
    return folder


def upload_folder(
    folder, repo_id, private=False, branch=None, commit_message=None, token=None, *, timeout=None, attempts=None
):
    """Push a checkpoint folder to a branch of a model repository; return the commit sha.

    A checkpoint folder goes in one commit (huggingface_hub splits only folders of more than 250
    files or 100 MB of small files, when `hf_xet` is installed; then the last commit is returned).

    Creates the repository if needed (`private` applies to a new repository; pushing
    `private=True` to an existing public one fails rather than publishing), and the branch from the
    head of `main` if it does not exist. After the commit the branch holds exactly the folder's
    files: files of an earlier push that the folder no longer has are deleted (`.gitattributes`
    stays). Files that did not change are not sent again; a push with nothing changed makes no
    commit and returns the current head, so trying a push again is safe.

    Args:
        folder: the local checkpoint folder.
        repo_id: `namespace/name`.
        private: create the repository private.
        branch: the branch to commit to; None for `main`.
        commit_message: the commit's summary; None for "Upload <folder name> with keras-attn-zoo".
        token: a Hub token with write access; None uses `HF_TOKEN` or the saved login.
        timeout: seconds each request waits for the Hub's answer; None: `ATTN_ZOO_UPLOAD_TIMEOUT`
            or `UPLOAD_TIMEOUT_S`.
        attempts: how many times the push is tried when the Hub does not answer or answers
            429/5xx; None: `UPLOAD_ATTEMPTS`.

    Returns:
        The 40-hex sha of the commit, to pin with `hf://repo_id@sha`.

    Raises:
        CheckpointError: `folder` is not a folder.
        HubError: the Hub cannot be reached or did not answer in time (after `attempts` tries), or
            refused the push (no token, no write access, an invalid name).
    """
    if not os.path.isdir(folder):
        raise CheckpointError(f"Received: folder={str(folder)!r}; expected an existing checkpoint folder.")
    _check_repo_id(repo_id)
    import httpx2
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError, LocalTokenNotFoundError

    timeout = _upload_timeout(timeout)
    attempts = UPLOAD_ATTEMPTS if attempts is None else int(attempts)
    if attempts < 1:
        raise HubError(f"Received: attempts={attempts}; expected an integer >= 1.")
    api = HfApi(token=token)
    revision = branch or DEFAULT_BRANCH
    where = f"'{repo_id}' (branch '{revision}') on {api.endpoint}"
    message = commit_message or f"Upload {os.path.basename(os.path.abspath(folder))} with keras-attn-zoo"
    for attempt in range(1, attempts + 1):
        try:
            with _requests_time_out(timeout):
                return _upload_once(api, folder, repo_id, private, revision, message, where)
        except LocalTokenNotFoundError:
            raise HubError(f"Cannot push to {where}: no Hub token; set HF_TOKEN or run `hf auth login`.") from None
        except HfHubHTTPError as error:
            status = error.response.status_code
            if status < 500 and status != 429:
                raise HubError(f"The Hub refused the push of {folder} to {where}: {_http_reason(error)}.") from None
            failure = _http_reason(error)
        except httpx2.TransportError as error:  # timeouts included
            failure = f"{type(error).__name__}: {_first_line(error) or f'no answer within {timeout:g} s'}"
        if attempt < attempts:
            wait = UPLOAD_RETRY_WAIT_S * 2 ** (attempt - 1)
            _logger.info("The push to %s failed (%s); trying again in %g s.", where, failure, wait)
            time.sleep(wait)
    raise HubError(f"Cannot push to {where}: {failure} (tried {attempts} times, {timeout:g} s per request).")


def _upload_once(api, folder, repo_id, private, revision, message, where):
    api.create_repo(repo_id, private=private, exist_ok=True)
    if private and not api.repo_info(repo_id, timeout=METADATA_TIMEOUT_S).private:
        raise HubError(
            f"Received: private=True, but {where} already exists and is public; "
            "make it private on the Hub or push to another repository."
        )
    if revision != DEFAULT_BRANCH:
        api.create_branch(repo_id, branch=revision, exist_ok=True)
    commit = api.upload_folder(
        repo_id=repo_id, folder_path=folder, revision=revision, commit_message=message, delete_patterns="*"
    )
    return commit.oid


def _upload_timeout(timeout):
    if timeout is None:
        value = os.environ.get("ATTN_ZOO_UPLOAD_TIMEOUT")
        if not value:
            return UPLOAD_TIMEOUT_S
        try:
            timeout = float(value)
        except ValueError:
            raise HubError(f"Received: ATTN_ZOO_UPLOAD_TIMEOUT={value!r}; expected a number of seconds.") from None
    if not timeout > 0:
        raise HubError(f"Received: timeout={timeout!r}; expected a number of seconds > 0.")
    return float(timeout)


@contextlib.contextmanager
def _requests_time_out(seconds):
    """Give huggingface_hub's shared HTTP client (timeout None) a timeout for the block."""
    import httpx2
    from huggingface_hub import get_session

    session = get_session()
    saved = session.timeout
    session.timeout = httpx2.Timeout(seconds)
    try:
        yield
    finally:
        session.timeout = saved


def _check_repo_id(repo_id):
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    try:
        validate_repo_id(repo_id)
    except HFValidationError as error:
        raise HubError(f"Received: repo_id={repo_id!r}; expected 'namespace/name' ({_first_line(error)}).") from None
    if not isinstance(repo_id, str) or repo_id.count("/") != 1:
        raise HubError(f"Received: repo_id={repo_id!r}; expected 'namespace/name'.")


def _metadata_timeout(timeout, constants):
    if timeout is not None:
        return timeout
    if constants.HF_HUB_ETAG_TIMEOUT != constants.DEFAULT_ETAG_TIMEOUT:  # HF_HUB_ETAG_TIMEOUT is set
        return constants.HF_HUB_ETAG_TIMEOUT
    return METADATA_TIMEOUT_S


def _not_found(error, repo_id, revision, endpoint):
    from huggingface_hub.errors import RevisionNotFoundError

    if isinstance(error, RevisionNotFoundError):
        return f"Revision '{revision or DEFAULT_BRANCH}' not found in Hub repository '{repo_id}' on {endpoint}."
    return (
        f"Hub repository '{repo_id}' not found on {endpoint} "
        "(or it is private and the token (HF_TOKEN) cannot read it)."
    )


def _http_reason(error):
    status = error.response.status_code
    detail = error.server_message or error.response.reason_phrase or ""
    return f"HTTP {status} {_first_line(detail)}".strip()


def _first_line(error):
    text = str(error).strip()
    return text.splitlines()[0].strip() if text else ""
