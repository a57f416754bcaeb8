"""A small Hugging Face Hub-compatible HTTP server for tests (standard library only).

It serves what `huggingface_hub`'s `HfApi.create_repo`, `create_branch`, `create_tag`,
`upload_folder`/`create_commit`, `repo_info`/`model_info`, `list_repo_files`/`list_repo_tree`,
`list_repo_refs`, `hf_hub_download` and `snapshot_download` send, as read in huggingface_hub 2.4
(`hf_api.py`, `_commit_api.py`, `_upload_pipeline.py`, `file_download.py`,
`_snapshot_download.py`, `utils/_http.py`):

    POST /api/repos/create                       409 with `url` when the repo exists (exist_ok)
    POST /api/validate-yaml                      README.md metadata check: always valid
    POST /api/{type}s/{repo}/preupload/{rev}     uploadMode "regular" for every file (no LFS, no Xet)
    POST /api/{type}s/{repo}/commit/{rev}        NDJSON: header, file (base64), deletedFile/Folder
    POST /api/{type}s/{repo}/branch/{branch}     409 when the branch exists
    POST /api/{type}s/{repo}/tag/{rev}           {"tag": name}
    GET  /api/{type}s/{repo}[/revision/{rev}]    id, sha, private, siblings, lastModified, ...
    GET  /api/{type}s/{repo}/tree/{rev}[/{path}] ?recursive=true
    GET  /api/{type}s/{repo}/refs                branches, tags, pull requests
    GET  /api/whoami-v2, /api/agent-harnesses
    HEAD/GET /[{type}s/]{repo}/resolve/{rev}/{path}  X-Repo-Commit, ETag, Content-Length, Range

Errors carry `X-Error-Code` (RepoNotFound, RevisionNotFound, EntryNotFound) and a JSON body
`{"error": ...}`, which `huggingface_hub.utils.hf_raise_for_status` maps to its exception classes.
Any bearer token is accepted as the user `test-user`; writes need one, and a private repository
answers RepoNotFound (401) to a request without one, as the Hub does.

Every request is recorded in `HubState.requests`; every repository keeps its commits (sha, parent,
files, summary, description), branches, tags and visibility, so tests can assert what a client sent.
`HubState.outage(503)` makes every request fail, to test how a client behaves when the Hub is down.

`huggingface_hub` reads `HF_ENDPOINT` once, when it is first imported (and `import keras` imports
it), so a test session must start the server and set `HF_ENDPOINT` before anything imports keras
or huggingface_hub: see `tests/hub_fixtures.py`.
"""

import base64
import contextlib
import dataclasses
import datetime
import hashlib
import itertools
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

USER = "test-user"
DEFAULT_BRANCH = "main"
GITATTRIBUTES = b"*.h5 filter=lfs diff=lfs merge=lfs -text\n*.keras filter=lfs diff=lfs merge=lfs -text\n"

_TYPES = {"models": "model", "datasets": "dataset", "spaces": "space"}
_URL_PREFIX = {"model": "", "dataset": "datasets/", "space": "spaces/"}
_API_RE = re.compile(r"^/api/(models|datasets|spaces)/([^/]+)/([^/]+)(?:/([^/]+)(?:/([^/]+)(?:/(.*))?)?)?$")
_RESOLVE_RE = re.compile(r"^/(?:(datasets|spaces)/)?([^/]+)/([^/]+)/resolve/([^/]+)/(.+)$")
_FULL_SHA_RE = re.compile(r"^[0-9a-f]{40}$")


def git_blob_sha1(data):
    """The git object id of a blob: what the Hub reports as `oid` and as ETag of a regular file."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _now():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")


@dataclasses.dataclass
class Commit:
    sha: str
    parent: str | None
    files: dict  # path in repo -> bytes
    summary: str
    description: str
    date: str


@dataclasses.dataclass
class Repo:
    repo_type: str
    repo_id: str
    private: bool
    created_at: str
    commits: dict = dataclasses.field(default_factory=dict)  # sha -> Commit
    branches: dict = dataclasses.field(default_factory=dict)  # name -> sha
    tags: dict = dataclasses.field(default_factory=dict)  # name -> sha
    pull_requests: list = dataclasses.field(default_factory=list)  # "refs/pr/N" -> sha, in order

    def resolve(self, revision):
        """The commit a branch, tag, `refs/pr/N` or full commit sha points to, or None."""
        if revision in self.branches:
            return self.commits[self.branches[revision]]
        if revision in self.tags:
            return self.commits[self.tags[revision]]
        match = re.fullmatch(r"refs/pr/(\d+)", revision)
        if match and 1 <= int(match.group(1)) <= len(self.pull_requests):
            return self.commits[self.pull_requests[int(match.group(1)) - 1]]
        if _FULL_SHA_RE.match(revision):
            return self.commits.get(revision)
        return None

    def head_ref(self, revision):
        """The mutable ref a commit to `revision` moves: ("branch", name) or ("pr", index)."""
        if revision in self.branches:
            return "branch", revision
        match = re.fullmatch(r"refs/pr/(\d+)", revision)
        if match and 1 <= int(match.group(1)) <= len(self.pull_requests):
            return "pr", int(match.group(1)) - 1
        return None


@dataclasses.dataclass
class RecordedRequest:
    method: str
    path: str  # unquoted
    query: dict
    authorized: bool
    status: int = 0


class HubState:
    """Repositories, commits and the log of requests, shared by the handler threads."""

    def __init__(self, user=USER):
        self.user = user
        self.repos = {}  # (repo_type, repo_id) -> Repo
        self.requests = []
        self.lock = threading.RLock()
        self.outage_status = None
        self._counter = itertools.count()

    def new_sha(self, *parts):
        text = "\0".join(str(part) for part in (next(self._counter), *parts))
        return hashlib.sha1(text.encode()).hexdigest()

    def add_commit(self, repo, parent, files, summary, description=""):
        commit = Commit(self.new_sha(repo.repo_id, parent, summary), parent, files, summary, description, _now())
        repo.commits[commit.sha] = commit
        return commit

    def create_repo(self, repo_type, repo_id, private=False):
        repo = Repo(repo_type, repo_id, private, _now())
        initial = self.add_commit(repo, None, {".gitattributes": GITATTRIBUTES}, "initial commit")
        repo.branches[DEFAULT_BRANCH] = initial.sha
        self.repos[(repo_type, repo_id)] = repo
        return repo

    def repo(self, repo_id, repo_type="model"):
        return self.repos.get((repo_type, repo_id))

    def requests_to(self, pattern, method=None):
        """Recorded requests whose unquoted path matches the regex `pattern`."""
        with self.lock:
            return [
                r for r in self.requests if re.search(pattern, r.path) and (method is None or r.method == method)
            ]

    @contextlib.contextmanager
    def outage(self, status=503):
        """Answer every request with `status` (the Hub is down) inside the block."""
        self.outage_status = status
        try:
            yield
        finally:
            self.outage_status = None


class HttpError(Exception):
    """An error answer: status, message (JSON body and X-Error-Message), X-Error-Code, headers."""

    def __init__(self, status, message, code=None, headers=None):
        super().__init__(message)
        self.status, self.message, self.code, self.headers = status, message, code, headers or {}


def _repo_not_found(repo_id):
    return HttpError(404, f"Repository Not Found: {repo_id}", "RepoNotFound")


class HubRequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "TestHub/1.0"

    # --- plumbing --------------------------------------------------------------------------

    def log_message(self, format, *args):  # keep test output clean
        pass

    @property
    def state(self):
        return self.server.state

    def do_GET(self):
        self._dispatch("GET")

    def do_HEAD(self):
        self._dispatch("HEAD")

    def do_POST(self):
        self._dispatch("POST")

    def do_PUT(self):
        self._dispatch("PUT")

    def do_DELETE(self):
        self._dispatch("DELETE")

    def _read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(self, status, body=b"", headers=None, content_type="application/json"):
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        self.send_response(status)
        headers = dict(headers or {})
        headers.setdefault("Content-Type", content_type)
        headers.setdefault("Content-Length", str(len(body)))
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self._record.status = status

    def _send_error(self, error):
        headers = dict(error.headers)
        if error.code:
            headers["X-Error-Code"] = error.code
        headers["X-Error-Message"] = error.message.encode("ascii", "backslashreplace").decode()
        self._send(error.status, {"error": error.message}, headers)

    def _endpoint(self):
        return f"http://{self.headers.get('Host')}"

    def _dispatch(self, method):
        split = urlsplit(self.path)
        query = {key: values[-1] for key, values in parse_qs(split.query).items()}
        auth = self.headers.get("Authorization", "")
        self.token = auth[len("Bearer ") :].strip() if auth.startswith("Bearer ") else ""
        self._record = RecordedRequest(method, unquote(split.path), query, bool(self.token))
        with self.state.lock:
            self.state.requests.append(self._record)
        # Read the body before answering, even on errors, so keep-alive connections stay in sync.
        self._body = self._read_body() if method in ("POST", "PUT", "DELETE") else b""
        try:
            if self.state.outage_status is not None:
                raise HttpError(self.state.outage_status, "Service unavailable")
            with self.state.lock:
                self._route(method, split.path, query)
        except HttpError as error:
            self._send_error(error)
        except Exception as error:  # a bug in this server: answer 500 so the test sees it
            self._send(500, {"error": f"{type(error).__name__}: {error}"})

    def _body_json(self):
        return json.loads(self._body) if self._body else {}

    # --- routing ---------------------------------------------------------------------------

    def _route(self, method, raw_path, query):
        if raw_path == "/api/repos/create" and method == "POST":
            return self._create_repo()
        if raw_path == "/api/validate-yaml" and method == "POST":
            return self._send(200, {"errors": [], "warnings": []})
        if raw_path == "/api/whoami-v2" and method == "GET":
            self._require_token()
            return self._send(200, {"type": "user", "name": self.state.user, "orgs": [], "auth": {}})
        if raw_path == "/api/agent-harnesses" and method == "GET":
            return self._send(200, {"standardEnvVars": [], "harnesses": {}})
        match = _API_RE.match(raw_path)
        if match:
            plural, namespace, name, action, arg, rest = match.groups()
            repo_type = _TYPES[plural]
            repo_id = f"{unquote(namespace)}/{unquote(name)}"
            arg = unquote(arg) if arg is not None else None
            rest = unquote(rest) if rest else ""
            return self._api(method, repo_type, repo_id, action, arg, rest, query)
        match = _RESOLVE_RE.match(raw_path)
        if match and method in ("GET", "HEAD"):
            plural, namespace, name, revision, path = match.groups()
            repo_type = _TYPES[plural] if plural else "model"
            return self._resolve(repo_type, f"{unquote(namespace)}/{unquote(name)}", unquote(revision), unquote(path))
        raise HttpError(404, f"Not found: {method} {unquote(raw_path)}")

    def _api(self, method, repo_type, repo_id, action, arg, rest, query):
        if action is None and method == "GET":
            return self._info(repo_type, repo_id, DEFAULT_BRANCH, query)
        if action == "revision" and arg and method == "GET":
            return self._info(repo_type, repo_id, arg + ("/" + rest if rest else ""), query)
        if action == "tree" and arg and method == "GET":
            return self._tree(repo_type, repo_id, arg, rest, query)
        if action == "refs" and method == "GET":
            return self._refs(repo_type, repo_id)
        if action == "preupload" and arg and method == "POST":
            return self._preupload(repo_type, repo_id, arg)
        if action == "commit" and arg and method == "POST":
            return self._commit(repo_type, repo_id, arg, query)
        if action == "branch" and arg and method == "POST":
            return self._create_branch(repo_type, repo_id, arg + ("/" + rest if rest else ""))
        if action == "tag" and arg and method == "POST":
            return self._create_tag(repo_type, repo_id, arg)
        raise HttpError(404, f"Not found: {method} /api/{repo_type}s/{repo_id}/{action}")

    # --- helpers ---------------------------------------------------------------------------

    def _require_token(self):
        if not self.token:
            raise HttpError(401, "Invalid credentials in Authorization header")

    def _readable_repo(self, repo_type, repo_id):
        repo = self.state.repo(repo_id, repo_type)
        if repo is None:
            raise _repo_not_found(repo_id)
        if repo.private and not self.token:
            error = _repo_not_found(repo_id)
            error.status = 401
            raise error
        return repo

    def _writable_repo(self, repo_type, repo_id):
        self._require_token()
        return self._readable_repo(repo_type, repo_id)

    def _commit_at(self, repo, revision):
        commit = repo.resolve(revision)
        if commit is None:
            raise HttpError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        return commit

    def _url(self, repo):
        return f"{self._endpoint()}/{_URL_PREFIX[repo.repo_type]}{repo.repo_id}"

    # --- endpoints -------------------------------------------------------------------------

    def _create_repo(self):
        self._require_token()
        payload = self._body_json()
        name, organization = payload.get("name"), payload.get("organization") or self.state.user
        repo_type = payload.get("type") or "model"
        if not name or repo_type not in _URL_PREFIX:
            raise HttpError(400, f"Invalid repo name or type: {name!r}, {repo_type!r}")
        repo_id = f"{organization}/{name}"
        existing = self.state.repo(repo_id, repo_type)
        if existing is not None:
            return self._send(
                409, {"error": "You already created this model repo", "url": self._url(existing)},
                {"X-Error-Message": "You already created this model repo"},
            )
        repo = self.state.create_repo(repo_type, repo_id, private=payload.get("visibility") == "private")
        self._send(200, {"url": self._url(repo), "name": repo_id, "id": repo_id})

    def _info(self, repo_type, repo_id, revision, query):
        repo = self._readable_repo(repo_type, repo_id)
        commit = self._commit_at(repo, revision)
        siblings = [{"rfilename": path} for path in sorted(commit.files)]
        if query.get("blobs", "").lower() in ("1", "true"):  # files_metadata=True
            siblings = [
                {"rfilename": path, "size": len(data), "blobId": git_blob_sha1(data)}
                for path, data in sorted(commit.files.items())
            ]
        self._send(
            200,
            {
                "_id": hashlib.md5(repo_id.encode()).hexdigest()[:24],
                "id": repo_id,
                "modelId": repo_id,
                "author": repo_id.split("/")[0],
                "sha": commit.sha,
                "lastModified": commit.date,
                "createdAt": repo.created_at,
                "private": repo.private,
                "disabled": False,
                "gated": False,
                "downloads": 0,
                "likes": 0,
                "tags": [],
                "siblings": siblings,
                "usedStorage": sum(len(data) for data in commit.files.values()),
            },
        )

    def _tree(self, repo_type, repo_id, revision, path, query):
        repo = self._readable_repo(repo_type, repo_id)
        commit = self._commit_at(repo, revision)
        recursive = query.get("recursive", "false").lower() in ("1", "true")
        prefix = path.strip("/") + "/" if path.strip("/") else ""
        if prefix and prefix[:-1] in commit.files:
            raise HttpError(400, f"{path} is a file, not a directory")
        entries, folders = [], set()
        for file_path, data in sorted(commit.files.items()):
            if not file_path.startswith(prefix):
                continue
            parts = file_path[len(prefix) :].split("/")
            for depth in range(1, len(parts)):
                if recursive or depth == 1:
                    folders.add(prefix + "/".join(parts[:depth]))
            if recursive or len(parts) == 1:
                entries.append({"type": "file", "oid": git_blob_sha1(data), "size": len(data), "path": file_path})
        if prefix and not entries and not folders:
            raise HttpError(
                404, f"{path} does not exist at {revision}", "EntryNotFound", {"X-Repo-Commit": commit.sha}
            )
        entries += [
            {"type": "directory", "oid": hashlib.sha1(folder.encode()).hexdigest(), "size": 0, "path": folder}
            for folder in sorted(folders)
        ]
        self._send(200, entries)

    def _refs(self, repo_type, repo_id):
        repo = self._readable_repo(repo_type, repo_id)

        def ref(name, kind, sha):
            return {"name": name, "ref": f"refs/{kind}/{name}", "targetCommit": sha}

        self._send(
            200,
            {
                "branches": [ref(name, "heads", sha) for name, sha in repo.branches.items()],
                "tags": [ref(name, "tags", sha) for name, sha in repo.tags.items()],
                "converts": [],
                "pullRequests": [
                    {"name": f"refs/pr/{i}", "ref": f"refs/pr/{i}", "targetCommit": sha}
                    for i, sha in enumerate(repo.pull_requests, start=1)
                ],
            },
        )

    def _preupload(self, repo_type, repo_id, revision):
        repo = self._writable_repo(repo_type, repo_id)
        commit = self._commit_at(repo, revision)
        files = self._body_json().get("files", [])
        self._send(
            200,
            {
                "files": [
                    {
                        "path": f["path"],
                        "uploadMode": "regular",
                        "shouldIgnore": False,
                        "oid": git_blob_sha1(commit.files[f["path"]]) if f["path"] in commit.files else None,
                    }
                    for f in files
                ],
                "commitOid": commit.sha,
            },
        )

    def _commit(self, repo_type, repo_id, revision, query):
        repo = self._writable_repo(repo_type, repo_id)
        base = self._commit_at(repo, revision)
        lines = [json.loads(line) for line in self._body.decode().splitlines() if line.strip()]
        if not lines or lines[0].get("key") != "header":
            raise HttpError(400, "The first line of a commit must be its header")
        header = lines[0]["value"]
        summary = header.get("summary") or ""
        if not summary:
            raise HttpError(400, "A commit needs a summary")
        parent_commit = header.get("parentCommit")
        if parent_commit is not None and parent_commit != base.sha:
            raise HttpError(412, f"A commit has happened since {parent_commit}; the head of {revision} is {base.sha}")
        files = dict(base.files)
        for line in lines[1:]:
            key, value = line.get("key"), line.get("value", {})
            if key == "file":
                if value.get("encoding", "base64") != "base64":
                    raise HttpError(400, f"Unsupported encoding {value.get('encoding')!r}")
                files[value["path"]] = base64.b64decode(value["content"])
            elif key == "deletedFile":
                if value["path"] not in files:
                    raise HttpError(404, f"A file with this name doesn't exist: {value['path']}", "EntryNotFound")
                del files[value["path"]]
            elif key == "deletedFolder":
                folder = value["path"].rstrip("/") + "/"
                files = {path: data for path, data in files.items() if not path.startswith(folder)}
            else:
                raise HttpError(400, f"This test Hub accepts only regular files; received a {key!r} line")
        commit = self.state.add_commit(repo, base.sha, files, summary, header.get("description") or "")
        pull_request_url = None
        if query.get("create_pr") in ("1", "true", "True"):
            repo.pull_requests.append(commit.sha)
            pull_request_url = f"{self._url(repo)}/discussions/{len(repo.pull_requests)}"
        else:
            ref = repo.head_ref(revision)
            if ref is None:
                raise HttpError(400, f"Cannot commit to {revision}: not a branch")
            kind, name = ref
            if kind == "branch":
                repo.branches[name] = commit.sha
            else:
                repo.pull_requests[name] = commit.sha
        self._send(
            200,
            {
                "success": True,
                "commitOid": commit.sha,
                "commitUrl": f"{self._url(repo)}/commit/{commit.sha}",
                "pullRequestUrl": pull_request_url,
            },
        )

    def _create_branch(self, repo_type, repo_id, branch):
        repo = self._writable_repo(repo_type, repo_id)
        if branch in repo.branches:
            raise HttpError(409, f"Reference already exists: refs/heads/{branch}")
        starting_point = self._body_json().get("startingPoint") or DEFAULT_BRANCH
        repo.branches[branch] = self._commit_at(repo, starting_point).sha
        self._send(200, {})

    def _create_tag(self, repo_type, repo_id, revision):
        repo = self._writable_repo(repo_type, repo_id)
        tag = self._body_json().get("tag")
        if not tag:
            raise HttpError(400, "A tag needs a name")
        if tag in repo.tags:
            raise HttpError(409, f"Tag already exists: {tag}")
        repo.tags[tag] = self._commit_at(repo, revision).sha
        self._send(200, {})

    def _resolve(self, repo_type, repo_id, revision, path):
        repo = self._readable_repo(repo_type, repo_id)
        commit = self._commit_at(repo, revision)
        if path not in commit.files:
            raise HttpError(404, f"Entry not found: {path}", "EntryNotFound", {"X-Repo-Commit": commit.sha})
        data = commit.files[path]
        headers = {
            "X-Repo-Commit": commit.sha,
            "ETag": f'"{git_blob_sha1(data)}"',
            "Accept-Ranges": "bytes",
        }
        status = 200
        range_header = self.headers.get("Range")
        if range_header and self.command == "GET":
            match = re.fullmatch(r"bytes=(\d+)-(\d*)", range_header.strip())
            if match is None or int(match.group(1)) >= max(len(data), 1):
                content_range = {"Content-Range": f"bytes */{len(data)}"}
                raise HttpError(416, f"Unsatisfiable range {range_header}", headers=content_range)
            start = int(match.group(1))
            end = min(int(match.group(2)), len(data) - 1) if match.group(2) else len(data) - 1
            headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
            data, status = data[start : end + 1], 206
        self._send(status, data, headers, content_type="application/octet-stream")


class HubServer(ThreadingHTTPServer):
    daemon_threads = True
    timeout = 0.1  # how often the serving loop checks whether to stop

    def __init__(self, address=("127.0.0.1", 0), state=None):
        super().__init__(address, HubRequestHandler)
        self.state = state if state is not None else HubState()
        self._stopping = threading.Event()
        self._thread = None

    @property
    def endpoint(self):
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def start(self):
        """Serve from a daemon thread; returns self."""
        self._thread = threading.Thread(target=self._serve, name="test-hub", daemon=True)
        self._thread.start()
        return self

    def _serve(self):
        while not self._stopping.is_set():
            self.handle_request()

    def stop(self):
        """Stop serving and close the socket; safe to call twice, and at interpreter exit."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.server_close()


@contextlib.contextmanager
def start_hub_server(state=None):
    """Serve a test Hub on 127.0.0.1, on a free port, from a background thread.

    Yields the `HubServer`: `server.endpoint` is the URL for `HF_ENDPOINT`, `server.state` the
    repositories and the log of requests. The server stops when the block exits.
    """
    server = HubServer(state=state).start()
    try:
        yield server
    finally:
        server.stop()
