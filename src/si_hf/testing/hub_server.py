"""A small Hub-compatible HTTP server for offline tests (stdlib only, everything in memory).

It speaks the subset of the Hugging Face Hub API that huggingface_hub 2.4, datasets 5.2 and
transformers 5.23 call for create / branch / push / load, with xet disabled
(``HF_HUB_DISABLE_XET=1``). Repos are git-like: a commit is a dict ``path -> bytes``, branches and
tags map names to commit shas. Endpoints (``{t}`` is ``models`` or ``datasets``, ``{p}`` is the
URL prefix ``""`` or ``"datasets/"``, ``{repo}`` is ``namespace/name``):

    GET    /api/whoami-v2
    GET    /api/agent-harnesses                      an empty registry (client user-agent detection)
    POST   /api/repos/create                         409 when the repo exists
    POST   /api/validate-yaml
    GET    /api/{t}/{repo}[/revision/{rev}]          sha, siblings, private
    GET    /api/{t}/{repo}/refs                      branches, tags
    GET    /api/{t}/{repo}/commits/{rev}             newest first, down to the initial commit
    POST   /api/{t}/{repo}/branch/{branch}           409 when the branch exists
    DELETE /api/{t}/{repo}/branch/{branch}
    POST   /api/{t}/{repo}/tag/{rev}
    POST   /api/{t}/{repo}/preupload/{rev}           "lfs" for binary or large files, else "regular"
    POST   /api/{t}/{repo}/commit/{rev}              NDJSON: header, file, lfsFile, deletedFile, deletedFolder
    GET    /api/{t}/{repo}/tree/{rev}[/{dir}]        ?recursive=
    POST   /api/{t}/{repo}/paths-info/{rev}          form or JSON "paths"
    POST   /{p}{repo}.git/info/lfs/objects/batch     basic transfer; upload href points at the PUT below
    PUT    /lfs-upload/{t}/{repo}/{oid}              checks the sha256
    HEAD   /{p}{repo}/resolve/{rev}/{path}           X-Repo-Commit, ETag, X-Linked-Etag, X-Linked-Size
    GET    /{p}{repo}/resolve/{rev}/{path}           honours Range (206)

Errors carry ``X-Error-Code`` (RepoNotFound, RevisionNotFound, EntryNotFound) and a JSON body
``{"error": ...}``. Anything else answers 404 with a body naming the route and is recorded in
``server.unknown_routes``. ``server.fail_next(pattern, times, status)`` makes the next ``times``
requests whose ``"METHOD /path"`` matches the regex fail, for crash-in-the-middle tests. Every
request line is recorded in ``server.log`` (headers are not, so tokens never land there).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

GITATTRIBUTES = (
    b"*.parquet filter=lfs diff=lfs merge=lfs -text\n*.safetensors filter=lfs diff=lfs merge=lfs -text\n"
)
LFS_THRESHOLD = 10 * 1024 * 1024


def git_blob_sha(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class HubError(Exception):
    def __init__(self, status: int, message: str, code: str | None = None):
        super().__init__(message)
        self.status, self.message, self.code = status, message, code


class Repo:
    def __init__(self, repo_type: str, repo_id: str, private: bool):
        self.type, self.id, self.private = repo_type, repo_id, private
        self.commits: dict[str, dict] = {}  # sha -> {"files": {path: bytes}, "lfs": set, "parent": sha}
        self.branches: dict[str, str] = {}
        self.tags: dict[str, str] = {}
        self.lfs: dict[str, bytes] = {}  # sha256 -> content
        self.branches["main"] = self.commit(None, {".gitattributes": GITATTRIBUTES}, set(), "initial commit")

    def commit(self, parent: str | None, files: dict, lfs: set, message: str) -> str:
        sha = hashlib.sha1(f"{parent}{message}{time.time_ns()}{sorted(files)}".encode()).hexdigest()
        self.commits[sha] = {"files": files, "lfs": lfs, "parent": parent, "message": message}
        return sha

    def resolve(self, rev: str) -> str:
        rev = unquote(rev)
        for refs in (self.branches, self.tags):
            if rev in refs:
                return refs[rev]
        if rev in self.commits:
            return rev
        raise HubError(404, f"Invalid rev id: {rev}", "RevisionNotFound")

    def entry(self, sha: str, path: str) -> dict:
        c = self.commits[sha]
        data = c["files"][path]
        e = {"type": "file", "path": path, "size": len(data), "oid": git_blob_sha(data)}
        if path in c["lfs"]:
            sha256 = hashlib.sha256(data).hexdigest()
            pointer = f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {len(data)}\n"
            e["oid"] = git_blob_sha(pointer.encode())
            e["lfs"] = {"oid": sha256, "size": len(data), "pointerSize": len(pointer)}
        return e


class HubServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address=("127.0.0.1", 0)):
        super().__init__(address, Handler)
        self.repos: dict[tuple[str, str], Repo] = {}
        self.lock = threading.RLock()
        self.log: list[str] = []
        self.unknown_routes: list[str] = []
        self.failures: list[list] = []  # [regex, remaining, status]

    @property
    def url(self) -> str:
        return f"http://{self.server_address[0]}:{self.server_address[1]}"

    def fail_next(self, pattern: str, times: int = 1, status: int = 500) -> None:
        """The next `times` requests whose "METHOD /path" matches `pattern` answer `status`."""
        with self.lock:
            self.failures.append([re.compile(pattern), times, status])

    def repo(self, repo_type: str, repo_id: str) -> Repo:
        repo = self.repos.get((repo_type, repo_id))
        if repo is None:
            raise HubError(404, f"Repository not found: {repo_type} {repo_id}", "RepoNotFound")
        return repo


API = re.compile(
    r"^/api/(models|datasets)/([^/]+/[^/]+?)(?:/(revision|refs|branch|tag|preupload|commits|commit|tree|paths-info)(?:/(.*))?)?$"
)
LFS_BATCH = re.compile(r"^/(datasets/)?([^/]+/[^/]+?)\.git/info/lfs/objects/batch$")
LFS_PUT = re.compile(r"^/lfs-upload/(model|dataset)/([^/]+/[^/]+)/([0-9a-f]{64})$")
RESOLVE = re.compile(r"^/(datasets/)?([^/]+/[^/]+)/resolve/([^/]+)/(.+)$")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: HubServer

    def log_message(self, format, *args):  # the stderr access log would only add noise to test output
        pass

    # --- plumbing -------------------------------------------------------------------------------
    def body(self) -> bytes:
        # Every body must be read in full, even on errors, or the next request on the
        # keep-alive connection starts in the middle of this one.
        if getattr(self, "_body", None) is None:
            n = int(self.headers.get("Content-Length") or 0)
            if n:
                self._body = self.rfile.read(n)
            elif "chunked" in (self.headers.get("Transfer-Encoding") or ""):
                chunks = []
                while (size := int(self.rfile.readline().split(b";")[0], 16)) > 0:
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
                self.rfile.readline()
                self._body = b"".join(chunks)
            else:
                self._body = b""
        return self._body

    def json_body(self):
        raw = self.body()
        ctype = self.headers.get("Content-Type") or ""
        if "x-www-form-urlencoded" in ctype:
            return {k: v if len(v) > 1 or k == "paths" else v[0] for k, v in parse_qs(raw.decode()).items()}
        return json.loads(raw or b"{}")

    def send(self, status: int, payload=None, headers: dict | None = None, raw: bytes | None = None):
        data = raw if raw is not None else json.dumps(payload if payload is not None else {}).encode()
        self.send_response(status)
        ctype = "application/octet-stream" if raw is not None else "application/json"
        for k, v in {"Content-Type": ctype, "Content-Length": str(len(data)), **(headers or {})}.items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def dispatch(self):
        self._body = None
        path, query = urlsplit(self.path).path, parse_qs(urlsplit(self.path).query)
        line = f"{self.command} {path}"
        with self.server.lock:
            self.server.log.append(line)
            for f in self.server.failures:
                if f[1] > 0 and f[0].search(line):
                    f[1] -= 1
                    self.body()
                    return self.send(f[2], {"error": f"injected failure for {line}"})
        try:
            self.body()
            with self.server.lock:
                self.route(path, query)
        except HubError as e:
            self.send(e.status, {"error": e.message}, {"X-Error-Code": e.code} if e.code else None)

    do_GET = do_POST = do_PUT = do_HEAD = do_DELETE = dispatch

    def route(self, path: str, query: dict):
        m = self.command
        if path == "/api/whoami-v2":
            return self.send(
                200, {"type": "user", "name": "user", "auth": {"accessToken": {"role": "write"}}}
            )
        if path == "/api/agent-harnesses":
            return self.send(200, {"standardEnvVars": [], "harnesses": {}})
        if path == "/api/repos/create" and m == "POST":
            return self.create_repo()
        if path == "/api/validate-yaml" and m == "POST":
            return self.send(200, {"errors": [], "warnings": []})
        if a := API.match(path):
            repo = self.server.repo(a[1][:-1], unquote(a[2]))
            action, rest = a[3], unquote(a[4] or "")
            handler = {
                (None, "GET"): lambda: self.info(repo, "main"),
                ("revision", "GET"): lambda: self.info(repo, rest),
                ("refs", "GET"): lambda: self.refs(repo),
                ("commits", "GET"): lambda: self.commits(repo, rest),
                ("branch", "POST"): lambda: self.create_branch(repo, rest),
                ("branch", "DELETE"): lambda: self.delete_branch(repo, rest),
                ("tag", "POST"): lambda: self.create_tag(repo, rest),
                ("preupload", "POST"): lambda: self.preupload(),
                ("commit", "POST"): lambda: self.commit(repo, rest),
                ("tree", "GET"): lambda: self.tree(repo, rest, query),
                ("paths-info", "POST"): lambda: self.paths_info(repo, rest),
            }.get((action, m))
            if handler:
                return handler()
        if (b := LFS_BATCH.match(path)) and m == "POST":
            return self.lfs_batch(self.server.repo("dataset" if b[1] else "model", b[2]))
        if (p := LFS_PUT.match(path)) and m == "PUT":
            return self.lfs_put(self.server.repo(p[1], p[2]), p[3])
        if (r := RESOLVE.match(path)) and m in ("GET", "HEAD"):
            return self.resolve(self.server.repo("dataset" if r[1] else "model", r[2]), r[3], unquote(r[4]))
        if path == "/" and m in ("GET", "HEAD"):  # the landing page: what a reachability check asks for
            return self.send(200, {"hub": "si_hf.testing"})
        self.server.unknown_routes.append(f"{m} {path}")
        raise HubError(404, f"hub_server does not implement {m} {path}")

    # --- endpoints ------------------------------------------------------------------------------
    def create_repo(self):
        req = self.json_body()
        repo_type = req.get("type") or "model"
        repo_id = f"{req.get('organization') or 'user'}/{req['name']}"
        if (repo_type, repo_id) in self.server.repos:
            return self.send(
                409, {"error": "You already created this repo", "url": self.repo_url(repo_type, repo_id)}
            )
        self.server.repos[(repo_type, repo_id)] = Repo(
            repo_type, repo_id, bool(req.get("private")) or req.get("visibility") == "private"
        )
        self.send(200, {"url": self.repo_url(repo_type, repo_id), "name": repo_id})

    def repo_url(self, repo_type: str, repo_id: str) -> str:
        return f"{self.server.url}/{'datasets/' if repo_type == 'dataset' else ''}{repo_id}"

    def info(self, repo: Repo, rev: str):
        sha = repo.resolve(rev)
        siblings = [{"rfilename": p} for p in sorted(repo.commits[sha]["files"])]
        self.send(200, {"id": repo.id, "sha": sha, "private": repo.private, "siblings": siblings, "tags": []})

    def refs(self, repo: Repo):
        def fmt(kind, refs):
            return [{"name": n, "ref": f"refs/{kind}/{n}", "targetCommit": s} for n, s in refs.items()]

        self.send(
            200, {"branches": fmt("heads", repo.branches), "tags": fmt("tags", repo.tags), "converts": []}
        )

    def commits(self, repo: Repo, rev: str):
        out, sha = [], repo.resolve(rev)
        while sha is not None:
            c = repo.commits[sha]
            out.append(
                {
                    "id": sha,
                    "authors": [{"user": "user"}],
                    "date": "2025-01-01T00:00:00.000Z",
                    "title": c["message"],
                    "message": "",
                }
            )
            sha = c["parent"]
        self.send(200, out)

    def create_branch(self, repo: Repo, branch: str):
        req = self.json_body()
        if branch in repo.branches:
            raise HubError(409, f"Branch {branch} already exists in {repo.id}")
        if req.get("emptyBranch"):
            repo.branches[branch] = repo.commit(None, {}, set(), f"empty branch {branch}")
        else:
            repo.branches[branch] = repo.resolve(req.get("startingPoint") or "main")
        self.send(200, {})

    def delete_branch(self, repo: Repo, branch: str):
        if repo.branches.pop(branch, None) is None:
            raise HubError(404, f"Branch {branch} not found in {repo.id}", "RevisionNotFound")
        self.send(200, {})

    def create_tag(self, repo: Repo, rev: str):
        req = self.json_body()
        if req["tag"] in repo.tags:
            raise HubError(409, f"Tag {req['tag']} already exists in {repo.id}")
        repo.tags[req["tag"]] = repo.resolve(rev)
        self.send(200, {})

    def preupload(self):
        files = []
        for f in self.json_body()["files"]:
            sample = base64.b64decode(f["sample"])
            binary = (
                b"\0" in sample
                or f["size"] > LFS_THRESHOLD
                or f["path"].endswith((".parquet", ".safetensors"))
            )
            files.append(
                {"path": f["path"], "uploadMode": "lfs" if binary else "regular", "shouldIgnore": False}
            )
        self.send(200, {"files": files})

    def commit(self, repo: Repo, rev: str):
        lines = [json.loads(x) for x in self.body().splitlines() if x.strip()]
        header = next(x["value"] for x in lines if x["key"] == "header")
        if rev not in repo.branches:
            raise HubError(404, f"Branch {rev} not found in {repo.id}", "RevisionNotFound")
        parent = repo.branches[rev]
        if header.get("parentCommit") and header["parentCommit"] != parent:
            raise HubError(412, f"parentCommit {header['parentCommit']} is not the head of {rev}")
        files, lfs = dict(repo.commits[parent]["files"]), set(repo.commits[parent]["lfs"])
        for op in lines:
            key, v = op["key"], op["value"]
            if key == "file":
                files[v["path"]] = base64.b64decode(v["content"])
                lfs.discard(v["path"])
            elif key == "lfsFile":
                if v["oid"] not in repo.lfs:
                    raise HubError(422, f"LFS object {v['oid']} for {v['path']} was never uploaded")
                files[v["path"]] = repo.lfs[v["oid"]]
                lfs.add(v["path"])
            elif key == "deletedFile":
                files.pop(v["path"], None)
                lfs.discard(v["path"])
            elif key == "deletedFolder":
                prefix = v["path"].rstrip("/") + "/"
                for p in [p for p in files if p.startswith(prefix)]:
                    files.pop(p)
                    lfs.discard(p)
            elif key != "header":
                raise HubError(400, f"hub_server does not implement commit operation {key!r}")
        sha = repo.commit(parent, files, lfs, header["summary"])
        repo.branches[rev] = sha
        self.send(200, {"commitOid": sha, "commitUrl": f"{self.repo_url(repo.type, repo.id)}/commit/{sha}"})

    def tree(self, repo: Repo, rest: str, query: dict):
        rev, _, folder = rest.partition("/")
        sha = repo.resolve(rev)
        recursive = query.get("recursive", ["false"])[0].lower() in ("1", "true")
        prefix = folder.strip("/") + "/" if folder.strip("/") else ""
        files = [p for p in repo.commits[sha]["files"] if p.startswith(prefix)]
        if prefix and not files:
            raise HubError(404, f"{folder} not found at {rev} in {repo.id}", "EntryNotFound")
        out, dirs = [], set()
        for p in sorted(files):
            parts = p[len(prefix) :].split("/")
            for i in range(1, len(parts) if recursive else min(2, len(parts))):
                dirs.add(prefix + "/".join(parts[:i]))
            if recursive or len(parts) == 1:
                out.append(repo.entry(sha, p))
        out += [{"type": "directory", "path": d, "oid": git_blob_sha(d.encode())} for d in sorted(dirs)]
        self.send(200, out)

    def paths_info(self, repo: Repo, rev: str):
        sha = repo.resolve(rev)
        paths = self.json_body().get("paths", [])
        files = repo.commits[sha]["files"]
        out = [repo.entry(sha, p) for p in paths if p in files]
        out += [
            {"type": "directory", "path": p, "oid": git_blob_sha(p.encode())}
            for p in paths
            if p not in files and any(f.startswith(p.rstrip("/") + "/") for f in files)
        ]
        self.send(200, out)

    def lfs_batch(self, repo: Repo):
        objects = []
        for o in self.json_body()["objects"]:
            obj = {"oid": o["oid"], "size": o["size"]}
            if o["oid"] not in repo.lfs:
                href = f"{self.server.url}/lfs-upload/{repo.type}/{repo.id}/{o['oid']}"
                obj["actions"] = {"upload": {"href": href, "header": {}}}
            objects.append(obj)
        self.send(200, {"transfer": "basic", "objects": objects})

    def lfs_put(self, repo: Repo, oid: str):
        data = self.body()
        if hashlib.sha256(data).hexdigest() != oid:
            raise HubError(400, f"uploaded content does not match sha256 {oid}")
        repo.lfs[oid] = data
        self.send(200, {})

    def resolve(self, repo: Repo, rev: str, path: str):
        sha = repo.resolve(rev)
        files = repo.commits[sha]["files"]
        if path not in files:
            raise HubError(404, f"{path} not found at {rev} in {repo.id}", "EntryNotFound")
        data, e = files[path], repo.entry(sha, path)
        etag = f'"{e["lfs"]["oid"] if "lfs" in e else e["oid"]}"'
        headers = {"X-Repo-Commit": sha, "ETag": etag, "Accept-Ranges": "bytes"}
        if "lfs" in e:
            headers.update({"X-Linked-Etag": etag, "X-Linked-Size": str(len(data))})
        status = 200
        rng = re.match(r"bytes=(\d*)-(\d*)", self.headers.get("Range") or "")
        if rng and self.command == "GET":
            start = int(rng[1] or 0)
            end = min(int(rng[2]) if rng[2] else len(data) - 1, len(data) - 1)
            headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
            data, status = data[start : end + 1], 206
        self.send(status, headers=headers, raw=data)


@contextlib.contextmanager
def serve_hub(host: str = "127.0.0.1", port: int = 0):
    """Run a HubServer in a background thread; yields (url, server) and shuts it down on exit."""
    server = HubServer((host, port))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.url, server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


if __name__ == "__main__":  # python -m si_hf.testing.hub_server [port]: a server for manual tries
    import sys

    with serve_hub(port=int(sys.argv[1]) if len(sys.argv) > 1 else 0) as (url, _):
        print(f"HF_ENDPOINT={url} HF_HUB_DISABLE_XET=1", flush=True)
        threading.Event().wait()
