#!/usr/bin/env python3
"""A small, daemon-less OCI image writer for Wyrcan's tests.

Builds an OCI image layout from a JSON spec, with exact control over every tar member (whiteouts,
opaque markers, hard links across layers, devices, fifos) and each layer's compression (gzip,
zstd, none), and optionally a multi-platform index.

    ociimage.py SPEC.json LAYOUT_DIR [--gzip-only]

--gzip-only writes every layer gzip-compressed (same tar bytes), for tools without zstd (umoci 0.4).

Spec: {"tag": "latest", "images": [{"platform": {"os": "linux", "architecture": "amd64"},
        "layers": [{"compression": "gzip", "entries": [ENTRY, ...]} | {"tar": FILE}, ...]}, ...]}
ENTRY: {"path": "etc/motd", "type": "file", "content": "hi\\n", "mode": 420, "uid": 0, "gid": 0,
        "mtime": 1700000000}  types: file, dir, symlink (target), hardlink (target), fifo,
        chardev/blockdev (major, minor), whiteout (path = what to hide), opaque (path = the dir),
        random (size, seed: a regular file of pseudo-random bytes), text (size, seed: compressible).
"""
import gzip, hashlib, io, json, os, random, subprocess, sys, tarfile

_POOL = None

def text_bytes(size, seed):
    global _POOL
    if _POOL is None:
        rng = random.Random(12345)
        words = [bytes(rng.choices(b"abcdefghijklmnopqrstuvwxyz_0123456789", k=rng.randint(2, 9))) for _ in range(4096)]
        parts, n = [], 0
        while n < 8_000_000:
            w = words[rng.getrandbits(12)] + (b"\n" if rng.random() < 0.1 else b" ")
            parts.append(w)
            n += len(w)
        _POOL = b"".join(parts)
    rng = random.Random(seed)
    out, n = [], 0
    while n < size:
        start = rng.randrange(0, len(_POOL) - 65536)
        chunk = _POOL[start:start + min(65536, size - n)]
        out.append(chunk)
        n += len(chunk)
    return b"".join(out)

def member(e):
    t = e["type"]
    path = e["path"]
    if t == "whiteout":
        d, _, name = path.rpartition("/")
        path = (d + "/" if d else "") + ".wh." + name
        t = "file"
        e = dict(e, content="")
    elif t == "opaque":
        path = path.rstrip("/") + "/.wh..wh..opq"
        t = "file"
        e = dict(e, content="")
    info = tarfile.TarInfo(path)
    info.mode = e.get("mode", 0o755 if t == "dir" else 0o644)
    info.uid = e.get("uid", 0)
    info.gid = e.get("gid", 0)
    info.mtime = e.get("mtime", 1_700_000_000)
    data = None
    if t == "file":
        data = e.get("content", "").encode()
    elif t == "random":
        rng = random.Random(e.get("seed", 1))
        data = rng.randbytes(e["size"])
    elif t == "text":
        # Compressible like real binaries and text (~3:1 with gzip): words from a small vocabulary,
        # built once into a pool and sliced at random offsets per file (fast for large images).
        data = text_bytes(e["size"], e.get("seed", 1))
    if data is not None:
        info.type = tarfile.REGTYPE
        info.size = len(data)
    elif t == "dir":
        info.type = tarfile.DIRTYPE
    elif t == "symlink":
        info.type = tarfile.SYMTYPE
        info.linkname = e["target"]
    elif t == "hardlink":
        info.type = tarfile.LNKTYPE
        info.linkname = e["target"]
    elif t == "fifo":
        info.type = tarfile.FIFOTYPE
    elif t in ("chardev", "blockdev"):
        info.type = tarfile.CHRTYPE if t == "chardev" else tarfile.BLKTYPE
        info.devmajor = e["major"]
        info.devminor = e["minor"]
    else:
        raise SystemExit(f"unknown entry type {t}")
    return info, data

def blob(layout, data, media_type, extra=None):
    digest = hashlib.sha256(data).hexdigest()
    path = os.path.join(layout, "blobs", "sha256", digest)
    with open(path, "wb") as f:
        f.write(data)
    d = {"mediaType": media_type, "digest": "sha256:" + digest, "size": len(data)}
    if extra:
        d.update(extra)
    return d

GZIP_ONLY = "--gzip-only" in sys.argv

def build_layer(layer):
    if "tar" in layer:
        # A tar written elsewhere (members no tool here writes: sparse bombs, names past PATH_MAX).
        tar_bytes = open(layer["tar"], "rb").read()
    else:
        raw = io.BytesIO()
        with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for e in layer["entries"]:
                info, data = member(e)
                tar.addfile(info, io.BytesIO(data) if data is not None else None)
        tar_bytes = raw.getvalue()
    if layer.get("no_end_blocks"):
        # Like umoci 0.4: the stream stops right after the last member's data.
        tar_bytes = tar_bytes.rstrip(b"\0")
    diff_id = "sha256:" + hashlib.sha256(tar_bytes).hexdigest()
    comp = "gzip" if GZIP_ONLY else layer.get("compression", "gzip")
    if comp == "gzip":
        return gzip.compress(tar_bytes, mtime=0), "application/vnd.oci.image.layer.v1.tar+gzip", diff_id
    if comp == "zstd":
        out = subprocess.run(["zstd", "-q", "-c", "-3"], input=tar_bytes, stdout=subprocess.PIPE, check=True).stdout
        return out, "application/vnd.oci.image.layer.v1.tar+zstd", diff_id
    return tar_bytes, "application/vnd.oci.image.layer.v1.tar", diff_id

def main():
    spec = json.load(open(sys.argv[1]))
    layout = sys.argv[2]
    os.makedirs(os.path.join(layout, "blobs", "sha256"), exist_ok=True)
    with open(os.path.join(layout, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)
    manifests = []
    for image in spec["images"]:
        platform = image.get("platform", {"os": "linux", "architecture": "amd64"})
        layers, diff_ids = [], []
        for layer in image["layers"]:
            data, media, diff_id = build_layer(layer)
            layers.append(blob(layout, data, media))
            diff_ids.append(diff_id)
        config = dict(platform, config={"Entrypoint": ["/init"]}, rootfs={"type": "layers", "diff_ids": diff_ids})
        cfg = blob(layout, json.dumps(config).encode(), "application/vnd.oci.image.config.v1+json")
        manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "config": cfg, "layers": layers}
        manifests.append(blob(layout, json.dumps(manifest).encode(), "application/vnd.oci.image.manifest.v1+json", {"platform": platform}))
    tag = spec.get("tag", "latest")
    if len(manifests) == 1 and not spec.get("index", False):
        top = dict(manifests[0])
    else:
        idx = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": manifests}
        top = blob(layout, json.dumps(idx).encode(), "application/vnd.oci.image.index.v1+json")
    top.pop("platform", None)
    top["annotations"] = {"org.opencontainers.image.ref.name": tag}
    index_path = os.path.join(layout, "index.json")
    existing = json.load(open(index_path))["manifests"] if os.path.exists(index_path) else []
    existing = [m for m in existing if m.get("annotations", {}).get("org.opencontainers.image.ref.name") != tag]
    with open(index_path, "w") as f:
        json.dump({"schemaVersion": 2, "manifests": existing + [top]}, f)
    print(top["digest"])

if __name__ == "__main__":
    main()
