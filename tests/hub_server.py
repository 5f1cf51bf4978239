"""A Hub-compatible server on 127.0.0.1 for tests: olah serving git repos, plus what olah lacks.

olah (PyPI `olah`) serves plain git repos under `<root>/models/<org>/<name>` (and `datasets/`) to the real
`huggingface_hub` client through `HF_ENDPOINT`. Where it differs from huggingface.co, the thin ASGI layer
below answers as the Hub does:

- a missing repo, revision or file is a 404 with the Hub's `X-Error-Code` (olah answers 401), so clients
  raise `RepositoryNotFoundError` / `RevisionNotFoundError` / `EntryNotFoundError`;
- `/api/models/<org>/<name>` without a revision answers for `main` (olah answers 401);
- `/api/whoami-v2` is answered locally for the one token the server accepts (olah forwards it upstream);
- (not fixed: olah 0.5.4 decodes every 121-149 byte blob as a would-be LFS pointer and answers 500 for a
  binary file of that size - keep test files out of that range);
- a `Range: bytes=a-b` GET of a file is answered `206` with those bytes (olah answers `200` with the whole file),
  so a client that reads part of a file (a parquet footer through `HfFileSystem`) gets what the Hub gives;
- uploads - `/api/repos/create`, `preupload`, the ndjson `commit`, `branch`, `validate-yaml` - commit into the
  served git repo, so `create_repo` + `upload_folder` work end to end. Every upload is "regular" (inline
  base64 in the commit), so no LFS or xet storage is needed.

Two halves: `HubServer` (stdlib only) starts and stops the server from the test process; `serve()` runs
in olah's own environment (installing olah into the project's environment downgrades psutil), started as
`python tests/hub_server.py --root DIR --port N`. By hand: `make hub-server` (see the Makefile).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

TOKEN = "hf_hfgen_test_token_0123456789"
"""The one token the server accepts (user `hfgen-test`); anything else is rejected as the Hub would."""
USER = "hfgen-test"
REPO_ROOT = Path(__file__).resolve().parents[1]
SERVER_PYTHON = Path(os.environ.get("HFGEN_HUB_SERVER_PYTHON", REPO_ROOT / ".venv-hub-server" / "bin" / "python"))
GIT_IDENTITY = {"GIT_AUTHOR_NAME": USER, "GIT_AUTHOR_EMAIL": f"{USER}@localhost",
                "GIT_COMMITTER_NAME": USER, "GIT_COMMITTER_EMAIL": f"{USER}@localhost"}


# -- the test side: start, wait, stop ---------------------------------------------------------------------


class HubServer:
    """A running server: `endpoint` for `HF_ENDPOINT`, `root` for its git repos. Use as a context manager."""

    def __init__(self, root: Path, port: int | None = None) -> None:
        self.root, self.port = Path(root), port or _free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> HubServer:
        if not SERVER_PYTHON.is_file():
            raise FileNotFoundError(f"No olah environment at {SERVER_PYTHON}: run `make hub-server-env` first.")
        self.root.mkdir(parents=True, exist_ok=True)
        log = open(self.root / "server.log", "wb")
        self.process = subprocess.Popen(
            [str(SERVER_PYTHON), __file__, "--root", str(self.root), "--port", str(self.port)],
            stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONPATH": ""},
        )
        deadline = time.time() + 60
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"Hub server exited: {(self.root / 'server.log').read_text()[-2000:]}")
            try:
                urllib.request.urlopen(f"{self.endpoint}/api/whoami-v2", timeout=1)
            except urllib.error.HTTPError:  # 401 without a token: the server is up
                return self
            except OSError:
                time.sleep(0.2)
        self.__exit__()
        raise TimeoutError(f"Hub server did not start: {(self.root / 'server.log').read_text()[-2000:]}")

    def __exit__(self, *exc) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=20)

    def client_env(self, token: str | None = TOKEN) -> dict[str, str]:
        """Environment for a client subprocess: this endpoint, a private HF_HOME, the token (or none)."""
        env = {"HF_ENDPOINT": self.endpoint, "HF_HOME": str(self.root / "client-home"), "HF_HUB_OFFLINE": "0",
               "HF_HUB_DISABLE_TELEMETRY": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1", "HF_HUB_ETAG_TIMEOUT": "30"}
        env["HF_TOKEN"] = token or ""
        return env

    def create_repo(self, repo_id: str, files: dict[str, bytes], repo_type: str = "model") -> str:
        """Seed a repo by committing `files` on `main` directly in git; returns the commit id."""
        repo = init_repo(self.root, repo_type, repo_id)
        return commit_files(repo, "main", files, [], "Seed")


class HubClient:
    """One warm Python process that talks to a `HubServer`: `HF_ENDPOINT` is set before `huggingface_hub` is
    imported, and torch/diffusers are imported once for every call (a fresh process per call costs seconds).

    `run(code)` executes Python there; `cli(*argv)` runs `hfgen <argv>` there. Both return (exit code, stdout,
    stderr); `token` is that call's HF_TOKEN (None: no token at all).
    """

    def __init__(self, server: HubServer, python: str = sys.executable, pythonpath: str = str(REPO_ROOT)) -> None:
        env = {**os.environ, **server.client_env(), "PYTHONPATH": pythonpath, "OMP_NUM_THREADS": "1"}
        self.process = subprocess.Popen([python, __file__, "--client"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        text=True, env=env)

    def run(self, code: str, token: str | None = TOKEN) -> tuple[int, str, str]:
        self.process.stdin.write(json.dumps({"code": code, "token": token}) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError("The Hub client process died.")
        answer = json.loads(line)
        return answer["code"], answer["stdout"], answer["stderr"]

    def cli(self, *argv: str, token: str | None = TOKEN) -> tuple[int, str, str]:
        return self.run(f"from hfgen.cli import main\nexit_code = main({list(map(str, argv))!r})", token)

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=30)


def _client_loop() -> None:
    """The `HubClient` side: one JSON request per stdin line, one JSON answer per stdout line."""
    import contextlib
    import io
    import traceback

    answers = sys.stdout
    for line in sys.stdin:
        request = json.loads(line)
        os.environ.pop("HF_TOKEN", None)
        if request["token"]:
            os.environ["HF_TOKEN"] = request["token"]
        out, err, namespace, code = io.StringIO(), io.StringIO(), {"exit_code": 0}, 0
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                exec(request["code"], namespace)
                code = namespace["exit_code"]
            except BaseException:  # report, keep serving
                traceback.print_exc()
                code = 1
        answers.write(json.dumps({"code": code, "stdout": out.getvalue(), "stderr": err.getvalue()}) + "\n")
        answers.flush()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- git: the served repos --------------------------------------------------------------------------------


def git(repo: Path, *args: str, input: bytes | None = None, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(["git", "--git-dir", str(repo), *args], input=input, capture_output=True,
                            env={**os.environ, **GIT_IDENTITY, **(env or {})})
    if result.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)}: {result.stderr.decode().strip()}")
    return result.stdout.decode().strip()


def repo_path(root: Path, repo_type: str, repo_id: str) -> Path:
    return Path(root) / f"{repo_type}s" / repo_id


def init_repo(root: Path, repo_type: str, repo_id: str) -> Path:
    path = repo_path(root, repo_type, repo_id)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(path)], check=True)
    return path


def resolve(repo: Path, revision: str) -> str | None:
    """The commit a branch, tag or (abbreviated) commit id names, or None."""
    try:
        return git(repo, "rev-parse", "--verify", "--quiet", f"{revision}^{{commit}}")
    except RuntimeError:
        return None


def commit_files(repo: Path, branch: str, added: dict[str, bytes], deleted: list[str], message: str,
                 parent: str | None = None) -> str:
    """One commit on `branch` (created from `parent`, default the branch's head) adding and deleting files."""
    parent = parent or resolve(repo, branch)
    with tempfile.TemporaryDirectory() as scratch:
        index = {"GIT_INDEX_FILE": str(Path(scratch) / "index")}
        if parent:
            git(repo, "read-tree", parent, env=index)
        for path, data in added.items():
            blob = git(repo, "hash-object", "-w", "--stdin", input=data)
            git(repo, "update-index", "--add", "--cacheinfo", f"100644,{blob},{path}", env=index)
        for path in deleted:
            git(repo, "update-index", "--force-remove", path, env=index)
        tree = git(repo, "write-tree", env=index)
    commit = git(repo, "commit-tree", tree, *(["-p", parent] if parent else []), "-m", message)
    git(repo, "update-ref", f"refs/heads/{branch}", commit)
    return commit


# -- the server side (olah's environment) ------------------------------------------------------------------


def serve(root: Path, port: int) -> None:
    """olah's app for reads, wrapped by `hub_app` for what olah gets wrong or lacks; 127.0.0.1 only."""
    root = root.resolve()
    config = root / "olah.toml"
    netloc = f"127.0.0.1:{port}"
    config.write_text(
        "[basic]\n"
        f'host = "127.0.0.1"\nport = {port}\nmirrors-path = ["{root}"]\nrepos-path = "{root / "olah-cache"}"\n'
        f'mirror-scheme = "http"\nmirror-netloc = "{netloc}"\nmirror-lfs-netloc = "{netloc}"\n'
        "metadata-cache-ttl = 0\n\n[accessibility]\noffline = true\n"
    )
    os.environ["OLAH_CONFIG"], os.environ["OLAH_LOG_PATH"] = str(config), str(root / "olah-logs")
    import uvicorn
    from olah.server import app as olah_app  # reads OLAH_CONFIG on import

    uvicorn.run(hub_app(olah_app, root, f"http://{netloc}"), host="127.0.0.1", port=port, log_level="warning")


def hub_app(olah_app, root: Path, endpoint: str):
    """The ASGI app: the Hub's answers where olah differs, olah's everywhere else."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    def error(status: int, code: str | None, message: str) -> Response:
        headers = {"X-Error-Code": code, "X-Error-Message": message} if code else {"X-Error-Message": message}
        return JSONResponse({"error": message}, status_code=status, headers=headers)

    def authorized(request: Request) -> Response | None:
        if request.headers.get("authorization") != f"Bearer {TOKEN}":
            return error(401, None, "Invalid credentials in Authorization header")
        return None

    def writable(request: Request, repo_type: str, repo_id: str) -> tuple[Path | None, Response | None]:
        if (denied := authorized(request)) is not None:
            return None, denied
        if repo_id.split("/")[0] != USER:
            return None, error(403, None, f"You don't have the rights to create a model under the namespace {repo_id.split('/')[0]!r}")
        repo = repo_path(root, repo_type, repo_id)
        if not repo.exists():
            return None, error(404, "RepoNotFound", f"Repository not found: {repo_id}")
        return repo, None

    async def whoami(request: Request) -> Response:
        if (denied := authorized(request)) is not None:
            return denied
        return JSONResponse({"type": "user", "name": USER, "fullname": USER, "orgs": [],
                             "auth": {"accessToken": {"displayName": "tests", "role": "write"}}})

    async def create(request: Request) -> Response:
        body = await request.json()
        repo_type = body.get("type") or "model"
        repo_id = f"{body.get('organization') or USER}/{body['name']}"
        if (denied := authorized(request)) is not None:
            return denied
        if repo_id.split("/")[0] != USER:
            return error(403, None, f"You don't have the rights to create a {repo_type} under the namespace {repo_id.split('/')[0]!r}")
        url = f"{endpoint}/{'' if repo_type == 'model' else repo_type + 's/'}{repo_id}"
        if repo_path(root, repo_type, repo_id).exists():
            return JSONResponse({"error": "You already created this model repo", "url": url}, status_code=409)
        commit_files(init_repo(root, repo_type, repo_id), "main", {".gitattributes": b""}, [], "initial commit")
        return JSONResponse({"url": url, "name": repo_id, "id": repo_id})

    async def preupload(request: Request) -> Response:
        params = request.path_params
        repo, denied = writable(request, params["type"][:-1], f"{params['org']}/{params['name']}")
        if denied is not None:
            return denied
        files = (await request.json())["files"]
        return JSONResponse({"files": [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False} for f in files]})

    async def commit(request: Request) -> Response:
        params = request.path_params
        repo_id = f"{params['org']}/{params['name']}"
        repo, denied = writable(request, params["type"][:-1], repo_id)
        if denied is not None:
            return denied
        branch = params["revision"]
        if resolve(repo, branch) is None:
            return error(404, "RevisionNotFound", f"Invalid rev id: {branch}")
        added, deleted, message = {}, [], "Upload"
        for line in (await request.body()).decode().splitlines():
            item = json.loads(line)
            value = item["value"]
            if item["key"] == "header":
                message = "\n\n".join(filter(None, [value.get("summary"), value.get("description")]))
            elif item["key"] == "file":
                added[value["path"]] = base64.b64decode(value["content"])
            elif item["key"] in ("deletedFile", "deletedFolder"):
                deleted.append(value["path"])
            else:
                return error(400, None, f"This test server stores no {item['key']!r} (LFS/xet) uploads")
        oid = commit_files(repo, branch, added, deleted, message)
        return JSONResponse({"success": True, "commitOid": oid, "commitMessage": message,
                             "commitUrl": f"{endpoint}/{repo_id}/commit/{oid}", "hookOutput": ""})

    async def branch(request: Request) -> Response:
        params = request.path_params
        repo, denied = writable(request, params["type"][:-1], f"{params['org']}/{params['name']}")
        if denied is not None:
            return denied
        body = await request.json() if await request.body() else {}
        start = resolve(repo, body.get("startingPoint") or "main")
        if resolve(repo, params["branch"]) is not None:
            return error(409, None, f"Reference already exists: refs/heads/{params['branch']}")
        git(repo, "update-ref", f"refs/heads/{params['branch']}", start)
        return JSONResponse({})

    async def validate_yaml(request: Request) -> Response:
        return JSONResponse({"errors": [], "warnings": []})

    repo_route = "/api/{type:str}/{org:str}/{name:str}"
    uploads = Starlette(routes=[
        Route("/api/whoami-v2", whoami),
        Route("/api/repos/create", create, methods=["POST"]),
        Route("/api/validate-yaml", validate_yaml, methods=["POST"]),
        Route(repo_route + "/preupload/{revision:path}", preupload, methods=["POST"]),
        Route(repo_route + "/commit/{revision:path}", commit, methods=["POST"]),
        Route(repo_route + "/branch/{branch:path}", branch, methods=["POST"]),
    ])
    upload_paths = re.compile(r"^/api/(whoami-v2|repos/create|validate-yaml|[^/]+/[^/]+/[^/]+/(preupload|commit|branch)/)")
    # /api/<type>s/<org>/<name>[/revision/<rev>]  and  [<type>s/]<org>/<name>/resolve/<rev>/<file>
    api_info = re.compile(r"^/api/(models|datasets|spaces)/([^/]+)/([^/]+)(?:/revision/(.+))?$")
    resolve_file = re.compile(r"^/(?:(datasets|spaces)/)?([^/]+)/([^/]+)/resolve/([^/]+)/(.+)$")

    async def missing(scope) -> Response | None:
        """The Hub's 404 for a missing repo, revision or file (olah answers 401), None when all exist."""
        path = scope["path"]
        if match := api_info.match(path):
            repo_type, org, name, revision = match.group(1)[:-1], match.group(2), match.group(3), match.group(4) or "main"
            file = None
        elif match := resolve_file.match(path):
            repo_type = (match.group(1) or "models")[:-1]
            org, name, revision, file = match.group(2), match.group(3), match.group(4), match.group(5)
        else:
            return None
        from urllib.parse import unquote

        repo_id, revision = f"{org}/{name}", unquote(revision)
        repo = repo_path(root, repo_type, repo_id)
        if not repo.exists():
            return error(404, "RepoNotFound", f"Repository not found: {repo_id}")
        commit = resolve(repo, revision)
        if commit is None:
            return error(404, "RevisionNotFound", f"Invalid rev id: {revision}")
        if file is not None:
            try:
                git(repo, "cat-file", "-e", f"{commit}:{unquote(file)}")
            except RuntimeError:
                return error(404, "EntryNotFound", f"{unquote(file)} does not exist on {revision!r}")
        return None

    byte_range = re.compile(r"^bytes=(\d*)-(\d*)$")

    def ranged(scope) -> Response | None:
        """A `Range: bytes=a-b` GET of a file, answered `206` with those bytes as the Hub does (olah answers `200`
        with the whole file); None for every other request."""
        header = dict(scope["headers"]).get(b"range")
        match = resolve_file.match(scope["path"])
        if scope["method"] != "GET" or header is None or match is None:
            return None
        wanted = byte_range.match(header.decode().strip())
        if wanted is None:
            return None
        from urllib.parse import unquote

        repo = repo_path(root, (match.group(1) or "models")[:-1], f"{match.group(2)}/{match.group(3)}")
        commit = resolve(repo, unquote(match.group(4)))
        blob = subprocess.run(["git", "--git-dir", str(repo), "cat-file", "blob", f"{commit}:{unquote(match.group(5))}"],
                              capture_output=True, check=True).stdout  # uploads are regular: the blob is the file
        first, last = wanted.groups()
        start, end = (int(first), min(int(last or len(blob) - 1), len(blob) - 1)) if first else (max(0, len(blob) - int(last)), len(blob) - 1)
        if start >= len(blob):
            return Response(status_code=416, headers={"Content-Range": f"bytes */{len(blob)}"})
        return Response(blob[start : end + 1], status_code=206, media_type="application/octet-stream",
                        headers={"Content-Range": f"bytes {start}-{end}/{len(blob)}", "Accept-Ranges": "bytes"})

    async def app(scope, receive, send):
        if scope["type"] != "http":
            return await olah_app(scope, receive, send)
        if upload_paths.match(scope["path"]):
            return await uploads(scope, receive, send)
        if (answer := await missing(scope)) is not None:
            return await answer(scope, receive, send)
        if (answer := ranged(scope)) is not None:
            return await answer(scope, receive, send)
        if (match := api_info.match(scope["path"])) and match.group(4) is None:  # the Hub answers for main
            scope = {**scope, "path": scope["path"] + "/revision/main", "raw_path": (scope["path"] + "/revision/main").encode()}
        await olah_app(scope, receive, send)

    return app


if __name__ == "__main__":
    if sys.argv[1:] == ["--client"]:
        sys.exit(_client_loop())
    parser = argparse.ArgumentParser(description="Run the hfgen test Hub (olah + uploads) on 127.0.0.1.")
    parser.add_argument("--root", type=Path, required=True, help="Folder of the served git repos.")
    parser.add_argument("--port", type=int, default=8090)
    arguments = parser.parse_args()
    print(f"HF_ENDPOINT=http://127.0.0.1:{arguments.port} (token: tests/hub_server.py TOKEN)", flush=True)
    serve(arguments.root, arguments.port)
