#!/usr/bin/env python3
"""Rewrites an OCI image layout tarball (as mkimage.py writes it, with
--compression none) so that every layer is base64 text with a custom media
type: an image only a configured stream processor can unpack.

  streamimage.py IN OUT MEDIATYPE NAME
The config (and so the diff_ids) stays as it is: the processor must turn the
base64 back into the very tar. The image is named NAME.
"""
import base64, hashlib, io, json, sys, tarfile


def main():
    src, out, media_type, name = sys.argv[1:5]
    files = {}
    with tarfile.open(src) as t:
        for m in t.getmembers():
            if m.isfile():
                files[m.name] = t.extractfile(m).read()

    def get(digest):
        return files["blobs/sha256/" + digest.split(":")[1]]

    def put(data):
        d = "sha256:" + hashlib.sha256(data).hexdigest()
        files["blobs/sha256/" + d.split(":")[1]] = data
        return d

    index = json.loads(files["index.json"])
    entry = index["manifests"][0]
    manifest = json.loads(get(entry["digest"]))
    for layer in manifest["layers"]:
        if not layer["mediaType"].endswith(".tar"):
            sys.exit("streamimage: layers must be uncompressed, got " + layer["mediaType"])
        encoded = base64.encodebytes(get(layer["digest"]))
        layer.update({"mediaType": media_type, "digest": put(encoded), "size": len(encoded)})
    raw = json.dumps(manifest).encode()
    entry.update({"digest": put(raw), "size": len(raw), "annotations": {"io.containerd.image.name": name}})
    index["manifests"] = [entry]
    files["index.json"] = json.dumps(index).encode()

    with tarfile.open(out, "w") as t:
        for path, data in files.items():
            info = tarfile.TarInfo(path)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))


if __name__ == "__main__":
    main()
