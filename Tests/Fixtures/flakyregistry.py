#!/usr/bin/env python3
"""A deliberately unreliable OCI registry (read-only, plain HTTP, loopback) serving an OCI image
layout, to test retries, Range resume and digest checks against a real HTTP peer.

    flakyregistry.py LAYOUT_DIR PORT_FILE [--cut-first] [--throttle-first] [--corrupt] [--ignore-range]

--cut-first       the first GET of each blob sends half of it, then closes the connection
--throttle-first  the first manifest request answers 429 with Retry-After: 1
--corrupt         every blob is served with one byte flipped
--ignore-range    Range headers are ignored (always 200 with the whole blob)
--unavailable-first  the first manifest request answers 503 with Retry-After as an HTTP date
                  2 s ahead (the log line gets the time it was served)
--cut-always      every blob GET sends half of what was asked for, then closes the connection
--wrong-digest    manifests by tag come with a Docker-Content-Digest that is not theirs
--deny            every /v2/ request answers 401 with a Basic challenge (a mirror we may not use)
--bearer          requires a Bearer token from GET /token (anonymous, or Basic wyrcan:s3cret for
                  the "authenticated" token), announced by a WWW-Authenticate challenge (and a
                  Basic challenge in a second header, as some registries send both)
--token-busy-first  the first GET /token answers 503 with Retry-After: 3
--endless-token   GET /token answers 200 and streams JSON whitespace until the client hangs up
--range-elsewhere a Range request is answered 206 from half the asked offset (with that
                  Content-Range), as a broken proxy might
--range-from-zero a Range request is answered 206 from byte 0 (Content-Range bytes 0-…)
Every request is logged to stdout as "METHOD PATH RANGE" so tests can assert on them.
Serves any repository name; tags resolve through the layout's ref.name annotations.
"""
import base64, email.utils, http.server, json, os, signal, sys, threading, time

# Children of a test runner may inherit an ignored SIGTERM: exit on it explicitly.
signal.signal(signal.SIGTERM, lambda *_: os._exit(0))

layout, port_file = sys.argv[1], sys.argv[2]
flags = set(sys.argv[3:])
seen_blobs, state = set(), {"throttled": False, "unavailable": False, "token_busy": False}
lock = threading.Lock()

def index():
    with open(os.path.join(layout, "index.json")) as f:
        return json.load(f)

class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def send_bytes(self, status, body, ctype="application/octet-stream", extra=None):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def send_cut(self, body, start):
        """Announces body[start:] (a 206 when start > 0), sends half of it, closes the connection."""
        rest = bytes(body[start:])
        self.send_response(206 if start else 200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(rest)))
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        self.end_headers()
        self.wfile.write(rest[:max(1, len(rest) // 2)])
        self.wfile.flush()
        self.close_connection = True

    def do_GET(self):
        rng = self.headers.get("Range", "-")
        print(f"{self.command} {self.path} {rng} {self.headers.get('Authorization', '-')} at {time.time():.2f}", flush=True)
        parts = self.path.split("/")
        if self.path.startswith("/token"):
            with lock:
                if "--token-busy-first" in flags and not state["token_busy"]:
                    state["token_busy"] = True
                    return self.send_bytes(503, b'{"errors":[{"code":"UNAVAILABLE","message":"token service busy"}]}', "application/json", {"Retry-After": "3"})
            if "--endless-token" in flags:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                try:
                    self.wfile.write(b'{"token": "endless"')
                    while True:
                        self.wfile.write(b" " * 65536)
                except OSError:
                    self.close_connection = True
                    return
            auth = self.headers.get("Authorization", "")
            user = None
            if auth.startswith("Basic "):
                user = base64.b64decode(auth[6:]).decode()
                if user != "wyrcan:s3cret":
                    return self.send_bytes(401, b'{"errors":[{"code":"DENIED","message":"bad credentials"}]}', "application/json")
            token = "token-for-" + ("wyrcan" if user else "anonymous")
            return self.send_bytes(200, json.dumps({"token": token, "expires_in": 300}).encode(), "application/json")
        if "--deny" in flags:
            return self.send_bytes(401, b'{"errors":[{"code":"UNAUTHORIZED","message":"not for you"}]}', "application/json", {"WWW-Authenticate": 'Basic realm="flaky"'})
        if "--bearer" in flags and not self.headers.get("Authorization", "").startswith("Bearer token-for-"):
            port = self.server.server_address[1]
            challenge = f'Bearer realm="http://127.0.0.1:{port}/token",service="flaky",scope="repository:any/name:pull"'
            self.send_response(401)
            body = b'{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}'
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("WWW-Authenticate", challenge)
            self.send_header("WWW-Authenticate", 'Basic realm="flaky"')
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
            return
        if self.path == "/v2/":
            return self.send_bytes(200, b"{}", "application/json")
        if len(parts) < 5 or parts[1] != "v2":
            return self.send_bytes(404, b'{"errors":[{"code":"NOT_FOUND","message":"no route"}]}', "application/json")
        kind, ref = parts[-2], parts[-1]
        if kind == "manifests":
            with lock:
                if "--throttle-first" in flags and not state["throttled"]:
                    state["throttled"] = True
                    return self.send_bytes(429, b'{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}', "application/json", {"Retry-After": "1"})
                if "--unavailable-first" in flags and not state["unavailable"]:
                    state["unavailable"] = True
                    when = email.utils.formatdate(time.time() + 2, usegmt=True)
                    return self.send_bytes(503, b'{"errors":[{"code":"UNAVAILABLE","message":"back soon"}]}', "application/json", {"Retry-After": when})
            desc = None
            for m in index()["manifests"]:
                if m["digest"] == ref or m.get("annotations", {}).get("org.opencontainers.image.ref.name") == ref:
                    desc = m
            if desc is None and ref.startswith("sha256:"):
                path = os.path.join(layout, "blobs", "sha256", ref[7:])
                if os.path.exists(path):
                    body = open(path, "rb").read()
                    mt = json.loads(body).get("mediaType", "application/vnd.oci.image.manifest.v1+json")
                    return self.send_bytes(200, body, mt, {"Docker-Content-Digest": ref})
            if desc is None:
                return self.send_bytes(404, b'{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}', "application/json")
            body = open(os.path.join(layout, "blobs", "sha256", desc["digest"][7:]), "rb").read()
            announced = "sha256:" + "0" * 64 if "--wrong-digest" in flags else desc["digest"]
            return self.send_bytes(200, body, desc["mediaType"], {"Docker-Content-Digest": announced})
        if kind == "blobs":
            path = os.path.join(layout, "blobs", "sha256", ref[7:])
            if not os.path.exists(path):
                return self.send_bytes(404, b'{"errors":[{"code":"BLOB_UNKNOWN","message":"blob unknown"}]}', "application/json")
            body = bytearray(open(path, "rb").read())
            if "--corrupt" in flags and body:
                body[len(body) // 2] ^= 0xFF
            with lock:
                first = ref not in seen_blobs
                seen_blobs.add(ref)
            start = int(rng[6:].split("-")[0]) if rng.startswith("bytes=") and "--ignore-range" not in flags else 0
            if len(body) > 1 and ("--cut-always" in flags or ("--cut-first" in flags and first)):
                return self.send_cut(body, start)
            if start and start >= len(body):
                return self.send_bytes(416, b"", extra={"Content-Range": f"bytes */{len(body)}"})
            if start and "--range-elsewhere" in flags:
                start //= 2
            if start and "--range-from-zero" in flags:
                return self.send_bytes(206, bytes(body), extra={"Content-Range": f"bytes 0-{len(body) - 1}/{len(body)}"})
            if start:
                return self.send_bytes(206, bytes(body[start:]), extra={"Content-Range": f"bytes {start}-{len(body) - 1}/{len(body)}"})
            return self.send_bytes(200, bytes(body))
        return self.send_bytes(404, b"{}", "application/json")

    do_HEAD = do_GET

server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
with open(port_file + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
os.rename(port_file + ".tmp", port_file)
server.serve_forever()
