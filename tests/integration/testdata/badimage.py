#!/usr/bin/env python3
"""Writes an OCI image layout tarball whose layers are hostile or broken, for
the tests that check ctrd refuses or contains them.

  badimage.py OUT KIND OUTSIDE
KIND: dotdot | absolute | symlink | symlink-earlier-layer | hardlink | whiteout |
      truncated-gzip | unknown-mediatype | wrong-diffid
OUTSIDE: an absolute directory on the host that must stay untouched; the hostile
entries aim at it (a file "victim" in it is the one a whiteout tries to delete).
The image is named docker.io/library/bad:<KIND>.
"""
import gzip, hashlib, io, json, sys, tarfile

UP = "../" * 24


def tar_of(entries):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for kind, name, arg in entries:
            info = tarfile.TarInfo(name)
            info.mode = 0o755 if kind == "dir" else 0o644
            if kind == "file":
                info.size = len(arg)
                t.addfile(info, io.BytesIO(arg))
                continue
            if kind == "dir":
                info.type = tarfile.DIRTYPE
            elif kind == "symlink":
                info.type, info.linkname = tarfile.SYMTYPE, arg
            elif kind == "hardlink":
                info.type, info.linkname = tarfile.LNKTYPE, arg
            t.addfile(info)
    return buf.getvalue()


def layers_for(kind, outside):
    pwn = b"pwned\n"
    if kind == "dotdot":
        return [[("file", UP + outside.lstrip("/") + "/pwned", pwn)]]
    if kind == "absolute":
        return [[("file", outside + "/pwned", pwn)]]
    if kind == "symlink":
        return [[("symlink", "escape", outside), ("file", "escape/pwned", pwn),
                 ("symlink", "rel", UP + outside.lstrip("/")), ("file", "rel/pwned2", pwn)]]
    if kind == "symlink-earlier-layer":
        return [[("symlink", "escape", outside)], [("file", "escape/pwned", pwn)]]
    if kind == "hardlink":
        return [[("hardlink", "link", outside + "/victim"), ("hardlink", "link2", UP + outside.lstrip("/") + "/victim")]]
    if kind == "whiteout":
        return [[("file", UP + outside.lstrip("/") + "/.wh.victim", b""), ("file", outside + "/.wh.victim", b""),
                 ("symlink", "escape", outside), ("file", "escape/.wh.victim", b"")]]
    return [[("dir", "etc", None), ("file", "etc/hello", b"hello\n")]]


def main():
    out, kind, outside = sys.argv[1], sys.argv[2], sys.argv[3].rstrip("/")
    blobs = {}

    def blob(data):
        d = "sha256:" + hashlib.sha256(data).hexdigest()
        blobs[d] = data
        return d

    layers, diff_ids = [], []
    for entries in layers_for(kind, outside):
        raw = tar_of(entries)
        diff_ids.append("sha256:" + hashlib.sha256(raw).hexdigest())
        data = gzip.compress(raw, mtime=0)
        media = "application/vnd.oci.image.layer.v1.tar+gzip"
        if kind == "truncated-gzip":
            data = data[: len(data) // 2]
        if kind == "unknown-mediatype":
            media = "application/vnd.example.layer.v1.tar+lz77"
        layers.append({"mediaType": media, "digest": blob(data), "size": len(data)})
    if kind == "wrong-diffid":
        diff_ids = ["sha256:" + "1" * 64 for _ in diff_ids]
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                         "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                      "digest": blob(config), "size": len(config)},
                           "layers": layers}).encode()
    man = blob(manifest)
    name = "docker.io/library/bad:" + kind
    index = {"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                                                "digest": man, "size": len(manifest),
                                                "annotations": {"io.containerd.image.name": name}}]}
    with tarfile.open(out, "w") as t:
        def add(path, data):
            info = tarfile.TarInfo(path)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
        add("oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
        add("index.json", json.dumps(index).encode())
        for d, data in blobs.items():
            add("blobs/sha256/" + d.split(":")[1], data)


if __name__ == "__main__":
    main()
