#!/usr/bin/env python3
"""Build small container image tarballs for ctrd's tests, without a network.

The output is an OCI image layout (default) or a `docker save` layout, as
`ctr images import` and `docker load` read them. Layers are reproducible:
the same inputs always give the same bytes.

Usage:
  tools/mkimage.py [--busybox] [--format oci|docker]
                   [--compression gzip|zstd|none] OUT [NAME] [LAYER_DIR ...]

NAME defaults to docker.io/library/busybox:latest (":latest" is added when
NAME has no tag). --busybox adds a bottom layer holding Debian's static
/bin/busybox (package busybox-static), a /bin link for each of its applets,
and /etc/passwd and /etc/group. Each LAYER_DIR adds one layer, bottom first.
Layers are gzip-compressed for oci and uncompressed for docker unless
--compression says otherwise (zstd needs the zstd command).

Examples:
  tools/mkimage.py --busybox busybox.tar
  tools/mkimage.py --busybox --format docker --compression zstd busybox-docker.tar
  tools/mkimage.py --compression none app.tar docker.io/library/app:1 base/ top/
"""

import argparse
import gzip
import hashlib
import io
import json
import os
import shutil
import stat
import struct
import subprocess
import sys
import tarfile
import tempfile

DEFAULT_NAME = "docker.io/library/busybox:latest"
BUSYBOX_BINARY = "/bin/busybox"
# Applets linked even if `busybox --list` cannot be run or leaves them out.
REQUIRED_APPLETS = ("sh", "ls", "echo", "cat", "sleep", "true", "false", "env", "id", "ps",
                    "mkdir", "rm", "touch", "wc", "head", "hostname", "uname", "grep")
PASSWD = ("root:x:0:0:root:/root:/bin/sh\n"
          "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")
GROUP = "root:x:0:\nnobody:x:65534:\n"
PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# Every timestamp in the output, so that it does not depend on when it was made.
CREATED = "1970-01-01T00:00:00Z"
GZIP_LEVEL = 6
ZSTD_LEVEL = 3

MACHINE_TO_GOARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64",
                     "i386": "386", "i686": "386", "armv7l": "arm", "ppc64le": "ppc64le",
                     "s390x": "s390x", "riscv64": "riscv64"}

OCI_LAYOUT_VERSION = "1.0.0"
OCI_INDEX_TYPE = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG_TYPE = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_TYPES = {"none": "application/vnd.oci.image.layer.v1.tar",
                   "gzip": "application/vnd.oci.image.layer.v1.tar+gzip",
                   "zstd": "application/vnd.oci.image.layer.v1.tar+zstd"}
IMAGE_NAME_ANNOTATION = "io.containerd.image.name"
REF_NAME_ANNOTATION = "org.opencontainers.image.ref.name"


class InputError(Exception):
    """A problem with what the caller asked for; reported as one line."""


# ---------------------------------------------------------------- arguments

class OneLineErrorParser(argparse.ArgumentParser):
    """argparse, but a usage error is one stderr line rather than two."""

    def error(self, message):
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        sys.exit(2)


def parse_arguments(argv):
    parser = OneLineErrorParser(
        prog="mkimage.py",
        description="Build a reproducible OCI or docker-save image tarball.")
    parser.add_argument("--busybox", action="store_true",
                        help="add a bottom layer with Debian's static busybox and its applet links")
    parser.add_argument("--format", choices=("oci", "docker"), default="oci",
                        help="tarball layout (default: oci)")
    parser.add_argument("--compression", choices=("gzip", "zstd", "none"), default=None,
                        help="layer compression (default: gzip for oci, none for docker)")
    parser.add_argument("--cmd", action="append", default=None, metavar="ARG",
                        help="the image's Cmd, one ARG per use (default: sh)")
    parser.add_argument("out", metavar="OUT", help="tarball to write")
    parser.add_argument("name", metavar="NAME", nargs="?", default=DEFAULT_NAME,
                        help=f"image name (default: {DEFAULT_NAME})")
    parser.add_argument("layer_dirs", metavar="LAYER_DIR", nargs="*", default=[],
                        help="directory whose contents become one layer, bottom first")
    args = parser.parse_args(argv)
    if args.cmd is None:
        args.cmd = ["sh"]
    if args.compression is None:
        args.compression = "gzip" if args.format == "oci" else "none"
    return args


def full_image_name(name):
    """Checks NAME and returns it with a tag (":latest" if it had none)."""
    if not name or any(c.isspace() for c in name):
        raise InputError(f"bad image name {name!r}")
    if name.startswith(("/", ".")):
        raise InputError(f"image name {name!r} looks like a directory; "
                         "give NAME before the LAYER_DIRs")
    if "@" in name:
        raise InputError(f"image name {name!r} has a digest; give a tag instead")
    last_component = name.rsplit("/", 1)[-1]
    if ":" not in last_component:
        name += ":latest"
    if name.endswith(":"):
        raise InputError(f"image name {name!r} has an empty tag")
    return name


def split_tag(full_name):
    repository, tag = full_name.rsplit(":", 1)
    return repository, tag


def docker_short_name(full_name):
    """The name as docker prints it: docker.io/library/x:1 -> x:1."""
    for prefix in ("docker.io/library/", "docker.io/"):
        if full_name.startswith(prefix):
            return full_name[len(prefix):]
    return full_name


def host_architecture():
    machine = os.uname().machine
    if machine not in MACHINE_TO_GOARCH:
        raise InputError(f"unknown machine type {machine!r}; cannot name the image architecture")
    return MACHINE_TO_GOARCH[machine]


# ----------------------------------------------------------------- busybox

def require_static_executable(path):
    """Fails unless `path` is an ELF executable without a dynamic loader."""
    try:
        with open(path, "rb") as f:
            header = f.read(64)
            if len(header) < 52 or header[:4] != b"\x7fELF":
                raise InputError(f"{path} is not an ELF executable")
            byte_order = "<" if header[5] == 1 else ">"
            if header[4] == 2:  # 64-bit
                (table_offset,) = struct.unpack_from(byte_order + "Q", header, 32)
                entry_size, entry_count = struct.unpack_from(byte_order + "HH", header, 54)
            else:  # 32-bit
                (table_offset,) = struct.unpack_from(byte_order + "I", header, 28)
                entry_size, entry_count = struct.unpack_from(byte_order + "HH", header, 42)
            f.seek(table_offset)
            table = f.read(entry_size * entry_count)
    except FileNotFoundError:
        raise InputError(f"{path} not found; --busybox needs Debian's busybox-static package")
    program_header_interpreter = 3
    for i in range(entry_count):
        (segment_type,) = struct.unpack_from(byte_order + "I", table, i * entry_size)
        if segment_type == program_header_interpreter:
            raise InputError(f"{path} is dynamically linked; --busybox needs the static one "
                             "from Debian's busybox-static package")


def busybox_applets(binary):
    """Applet names the binary reports, plus the ones tests rely on."""
    names = set(REQUIRED_APPLETS)
    try:
        listed = subprocess.run([binary, "--list"], capture_output=True, text=True, timeout=60)
        if listed.returncode == 0:
            names.update(listed.stdout.split())
    except (OSError, subprocess.SubprocessError):
        pass
    return sorted(n for n in names if n and "/" not in n and n not in (".", "..", "busybox"))


# -------------------------------------------------------------- layer tars

def normalized_entry(name, entry_type, mode):
    """A tar header with owner root and time 0, so content alone decides the bytes."""
    info = tarfile.TarInfo(name)
    info.type = entry_type
    info.mode = mode
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mtime = 0
    return info


def tar_order(name):
    """Sort key placing each directory before what it holds."""
    return [os.fsencode(part) for part in name.split("/")]


def busybox_layer_entries(binary):
    """(header, source) pairs of the busybox layer; source is a path, bytes or None."""
    entries = []
    for directory, mode in (("bin", 0o755), ("dev", 0o755), ("etc", 0o755), ("proc", 0o555),
                            ("root", 0o700), ("sys", 0o555), ("tmp", 0o1777)):
        entries.append((normalized_entry(directory, tarfile.DIRTYPE, mode), None))
    executable = normalized_entry("bin/busybox", tarfile.REGTYPE, 0o755)
    executable.size = os.path.getsize(binary)
    entries.append((executable, binary))
    for applet in busybox_applets(binary):
        link = normalized_entry("bin/" + applet, tarfile.SYMTYPE, 0o777)
        link.linkname = "busybox"
        entries.append((link, None))
    for name, text in (("etc/passwd", PASSWD), ("etc/group", GROUP)):
        data = text.encode()
        info = normalized_entry(name, tarfile.REGTYPE, 0o644)
        info.size = len(data)
        entries.append((info, data))
    entries.sort(key=lambda entry: tar_order(entry[0].name))
    return entries


def directory_layer_entries(root):
    """(header, source) pairs for everything under `root`, in tar order."""
    found = []

    def raise_error(error):
        raise error

    for parent, dirnames, filenames in os.walk(root, onerror=raise_error):
        for name in dirnames + filenames:
            path = os.path.join(parent, name)
            found.append((os.path.relpath(path, root).replace(os.sep, "/"), path))
    found.sort(key=lambda item: tar_order(item[0]))

    entries = []
    first_name_of_inode = {}
    for name, path in found:
        st = os.lstat(path)
        mode = stat.S_IMODE(st.st_mode)
        source = None
        if stat.S_ISDIR(st.st_mode):
            info = normalized_entry(name, tarfile.DIRTYPE, mode)
        elif stat.S_ISLNK(st.st_mode):
            info = normalized_entry(name, tarfile.SYMTYPE, mode)
            info.linkname = os.readlink(path)
        elif stat.S_ISREG(st.st_mode):
            inode = (st.st_dev, st.st_ino)
            if st.st_nlink > 1 and inode in first_name_of_inode:
                info = normalized_entry(name, tarfile.LNKTYPE, mode)
                info.linkname = first_name_of_inode[inode]
            else:
                first_name_of_inode[inode] = name
                info = normalized_entry(name, tarfile.REGTYPE, mode)
                info.size = st.st_size
                source = path
        elif stat.S_ISFIFO(st.st_mode):
            info = normalized_entry(name, tarfile.FIFOTYPE, mode)
        elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
            device_type = tarfile.CHRTYPE if stat.S_ISCHR(st.st_mode) else tarfile.BLKTYPE
            info = normalized_entry(name, device_type, mode)
            info.devmajor, info.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
        else:
            raise InputError(f"{path}: cannot put a socket or other special file in a layer")
        entries.append((info, source))
    return entries


def write_tar(path, entries):
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as archive:
        for info, source in entries:
            if isinstance(source, bytes):
                archive.addfile(info, io.BytesIO(source))
            elif source is not None:
                with open(source, "rb") as f:
                    archive.addfile(info, f)
            else:
                archive.addfile(info)


def sha256_of_file(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def compress(tar_path, compression):
    """Returns the path of the layer blob for `tar_path`."""
    if compression == "none":
        return tar_path
    if compression == "gzip":
        blob_path = tar_path + ".gz"
        with open(tar_path, "rb") as source, open(blob_path, "wb") as raw:
            # No file name and mtime 0 in the gzip header: the bytes depend on content only.
            with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0,
                               compresslevel=GZIP_LEVEL) as packed:
                shutil.copyfileobj(source, packed, 1 << 20)
        return blob_path
    blob_path = tar_path + ".zst"
    with open(blob_path, "wb") as out:
        # Explicit level and one thread, so ZSTD_CLEVEL / ZSTD_NBTHREADS cannot change the bytes.
        result = subprocess.run(["zstd", "-q", "-c", "--no-progress", f"-{ZSTD_LEVEL}", "-T1",
                                 tar_path], stdout=out, stderr=subprocess.PIPE, text=True)
    if result.returncode != 0:
        raise InputError("zstd failed: " + (result.stderr.strip().splitlines() or ["?"])[-1])
    return blob_path


class Layer:
    def __init__(self, blob_path, diff_id, description):
        self.blob_path = blob_path
        self.digest = "sha256:" + sha256_of_file(blob_path)
        self.size = os.path.getsize(blob_path)
        self.diff_id = diff_id
        self.description = description


def build_layer(work_dir, index, entries, compression, description):
    tar_path = os.path.join(work_dir, f"layer{index}.tar")
    write_tar(tar_path, entries)
    diff_id = "sha256:" + sha256_of_file(tar_path)
    blob_path = compress(tar_path, compression)
    if blob_path != tar_path:
        os.remove(tar_path)
    return Layer(blob_path, diff_id, description)


# ------------------------------------------------------------------ images

def to_json(value):
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def sha256_of(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def image_config(layers, cmd):
    return to_json({
        "architecture": host_architecture(),
        "os": "linux",
        "created": CREATED,
        "config": {"Env": [PATH_ENV], "Cmd": cmd},
        "rootfs": {"type": "layers", "diff_ids": [layer.diff_id for layer in layers]},
        "history": [{"created": CREATED, "created_by": "mkimage.py: " + layer.description}
                    for layer in layers],
    })


class OutputTar:
    """The outer tarball: fixed owner, modes and times for every member."""

    def __init__(self, path):
        self._archive = tarfile.open(path, "w", format=tarfile.PAX_FORMAT)

    def add_directory(self, name):
        self._archive.addfile(normalized_entry(name, tarfile.DIRTYPE, 0o755))

    def add_bytes(self, name, data):
        info = normalized_entry(name, tarfile.REGTYPE, 0o644)
        info.size = len(data)
        self._archive.addfile(info, io.BytesIO(data))

    def add_file(self, name, path):
        info = normalized_entry(name, tarfile.REGTYPE, 0o644)
        info.size = os.path.getsize(path)
        with open(path, "rb") as f:
            self._archive.addfile(info, f)

    def close(self):
        self._archive.close()


def write_oci_layout(path, full_name, layers, compression, cmd):
    config = image_config(layers, cmd)
    manifest = to_json({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST_TYPE,
        "config": {"mediaType": OCI_CONFIG_TYPE, "digest": sha256_of(config), "size": len(config)},
        "layers": [{"mediaType": OCI_LAYER_TYPES[compression], "digest": layer.digest,
                    "size": layer.size} for layer in layers],
    })
    index = to_json({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX_TYPE,
        "manifests": [{
            "mediaType": OCI_MANIFEST_TYPE,
            "digest": sha256_of(manifest),
            "size": len(manifest),
            "platform": {"architecture": host_architecture(), "os": "linux"},
            "annotations": {IMAGE_NAME_ANNOTATION: full_name,
                            REF_NAME_ANNOTATION: split_tag(full_name)[1]},
        }],
    })
    blobs = {sha256_of(config): config, sha256_of(manifest): manifest}
    for layer in layers:
        blobs.setdefault(layer.digest, layer.blob_path)  # identical layers are stored once

    out = OutputTar(path)
    out.add_directory("blobs")
    out.add_directory("blobs/sha256")
    for digest in sorted(blobs):
        member = "blobs/sha256/" + digest.split(":", 1)[1]
        content = blobs[digest]
        if isinstance(content, bytes):
            out.add_bytes(member, content)
        else:
            out.add_file(member, content)
    out.add_bytes("index.json", index)
    out.add_bytes("oci-layout", to_json({"imageLayoutVersion": OCI_LAYOUT_VERSION}))
    out.close()


def write_docker_layout(path, full_name, layers, cmd):
    config = image_config(layers, cmd)
    config_member = sha256_of(config).split(":", 1)[1] + ".json"
    # Each layer's directory is named by its chain ID, unique per position in the stack.
    layer_ids = []
    chain_id = None
    for layer in layers:
        chain_id = layer.diff_id if chain_id is None else sha256_of(
            f"{chain_id} {layer.diff_id}".encode())
        layer_ids.append(chain_id.split(":", 1)[1])
    tagged_name = docker_short_name(full_name)
    repository, tag = split_tag(tagged_name)
    manifest = to_json([{
        "Config": config_member,
        "RepoTags": [tagged_name],
        "Layers": [layer_id + "/layer.tar" for layer_id in layer_ids],
    }])
    repositories = to_json({repository: {tag: layer_ids[-1]}})

    out = OutputTar(path)
    for layer_id, layer in sorted(zip(layer_ids, layers), key=lambda pair: pair[0]):
        out.add_directory(layer_id)
        out.add_file(layer_id + "/layer.tar", layer.blob_path)
    out.add_bytes(config_member, config)
    out.add_bytes("manifest.json", manifest)
    out.add_bytes("repositories", repositories)
    out.close()


def build_image(args):
    full_name = full_image_name(args.name)
    host_architecture()
    for directory in args.layer_dirs:
        if not os.path.isdir(directory):
            problem = "not a directory" if os.path.exists(directory) else "no such directory"
            raise InputError(f"layer directory {directory}: {problem}")
    if not args.busybox and not args.layer_dirs:
        raise InputError("nothing to put in the image: give --busybox or a LAYER_DIR")
    if args.busybox:
        require_static_executable(BUSYBOX_BINARY)
    if args.compression == "zstd" and shutil.which("zstd") is None:
        raise InputError("--compression zstd needs the zstd command, which is not installed")
    out_dir = os.path.dirname(os.path.abspath(args.out))
    if not os.path.isdir(out_dir):
        raise InputError(f"output directory {out_dir}: no such directory")

    # Work next to OUT: layers can be large, and the final rename stays on one file system.
    with tempfile.TemporaryDirectory(prefix=".mkimage-", dir=out_dir) as work_dir:
        layer_sources = []
        if args.busybox:
            layer_sources.append((busybox_layer_entries(BUSYBOX_BINARY), "busybox"))
        for number, directory in enumerate(args.layer_dirs, start=1):
            layer_sources.append((directory_layer_entries(directory), f"layer directory {number}"))
        layers = [build_layer(work_dir, i, entries, args.compression, description)
                  for i, (entries, description) in enumerate(layer_sources)]
        staged = os.path.join(work_dir, "image.tar")
        if args.format == "oci":
            write_oci_layout(staged, full_name, layers, args.compression, args.cmd)
        else:
            write_docker_layout(staged, full_name, layers, args.cmd)
        os.replace(staged, args.out)


def main(argv=None):
    args = parse_arguments(argv)
    try:
        build_image(args)
    except InputError as error:
        sys.exit(f"mkimage.py: error: {error}")
    except OSError as error:
        where = f"{error.filename}: " if error.filename else ""
        sys.exit(f"mkimage.py: error: {where}{error.strerror or error}")


if __name__ == "__main__":
    main()
