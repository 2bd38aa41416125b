#!/usr/bin/env python3
"""The module layering of src/, declared and checked (ctest: repo_layering).

Each module (a folder of src/ with its own CMakeLists.txt) sits on a layer and
declares the modules it may include. The check fails when a file includes a
header of a module its own does not declare, when a declaration names a
module on the same or a higher layer, or when a module is missing from the
table. docs/design.md explains the layers.
"""
import os
import re
import sys

# Bottom to top. A module may use only modules on lower layers.
LAYERS = [
    ["errdefs", "version", "executor"],
    ["log", "identifiers", "filters", "digest", "lmdb", "config"],
    ["os", "mount"],
    ["plugin", "content", "archive", "ttrpc", "metrics", "runtime", "cni", "oci", "spdy"],
    ["events", "content/local", "images", "snapshots", "protobuf"],
    ["snapshots/native", "snapshots/overlay", "metadata", "remotes"],
    ["diff", "gc", "runtime/v2"],
    ["proxy", "monitor", "server", "unpack", "streaming"],
    ["services"],
    ["services/containers", "services/content", "services/diff", "services/events", "services/healthcheck",
     "services/images", "services/introspection", "services/leases", "services/namespaces",
     "services/snapshots", "services/tasks", "services/version"],
    ["restart", "cri"],
    ["cmd/ctrd", "cmd/pause"],
]

MAY_USE = {
    "errdefs": "",
    "version": "",
    "executor": "",
    "log": "errdefs",
    "identifiers": "errdefs",
    "filters": "errdefs",
    "digest": "errdefs",
    "lmdb": "errdefs",
    "config": "errdefs",
    "os": "errdefs log",
    "mount": "errdefs log",
    "plugin": "config errdefs os",
    "content": "errdefs",
    "archive": "errdefs os",
    "ttrpc": "errdefs executor log os",
    "metrics": "errdefs log os",
    "runtime": "errdefs mount",
    "cni": "errdefs os",
    "oci": "errdefs",
    "spdy": "errdefs",
    "streaming": "errdefs log os spdy",
    "protobuf": "content errdefs mount",
    "events": "errdefs filters identifiers plugin",
    "content/local": "content digest errdefs filters log os plugin",
    "images": "content digest errdefs",
    "snapshots": "errdefs filters lmdb log mount os",
    "snapshots/native": "os plugin snapshots",
    "snapshots/overlay": "os plugin snapshots",
    "metadata": "content errdefs filters identifiers lmdb log os plugin snapshots",
    "remotes": "config content digest errdefs executor images",
    "diff": "archive content digest errdefs log metadata mount os plugin",
    "gc": "config errdefs log metadata plugin",
    "runtime/v2": "errdefs events executor identifiers log metadata mount os plugin protobuf runtime ttrpc",
    "proxy": "config content diff errdefs os plugin protobuf snapshots",
    "monitor": "metrics plugin runtime",
    "server": "config errdefs events executor identifiers log metrics os plugin ttrpc",
    "services": "plugin server",
    "services/containers": "events metadata plugin protobuf server services",
    "services/content": "content events log metadata plugin protobuf server services",
    "services/diff": "diff plugin protobuf server services",
    "services/events": "events plugin server services",
    "services/healthcheck": "plugin server services",
    "services/images": "events gc metadata plugin protobuf server services",
    "services/introspection": "errdefs filters os plugin server services",
    "services/leases": "gc metadata plugin protobuf server services",
    "services/namespaces": "events identifiers metadata plugin server services",
    "services/snapshots": "events metadata mount plugin protobuf server snapshots services",
    "services/tasks": "errdefs filters log metadata monitor os plugin protobuf runtime server services",
    "services/version": "plugin server version services",
    "restart": "config errdefs log metadata plugin services/tasks",
    "cri": "cni config content diff errdefs events executor images log metadata mount oci os plugin remotes runtime "
           "server services/containers services/images services/snapshots services/tasks streaming unpack version",
    "unpack": "content diff digest errdefs images log metadata snapshots",
    "cmd/ctrd": "*",
    "cmd/pause": "",
}

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')


def main(src):
    layer_of = {m: i for i, layer in enumerate(LAYERS) for m in layer}
    # Folders with a CMakeLists.txt, and services/ for the helpers every service shares.
    modules = sorted([os.path.relpath(root, src) for root, _, files in os.walk(src)
                      if "CMakeLists.txt" in files and root != src] + ["services"], key=len, reverse=True)
    problems = []
    for m in modules:
        if m not in layer_of or m not in MAY_USE:
            problems.append(f"{m}: a module missing from the layering table (tests/repo/layering.py)")
    for m, uses in MAY_USE.items():
        for u in uses.split():
            if u != "*" and layer_of.get(u, 99) >= layer_of.get(m, -1):
                problems.append(f"{m} declares {u}, which is not on a lower layer")

    def module_of(path):
        return next((m for m in modules if path == m or path.startswith(m + "/")), None)

    for root, _, files in os.walk(src):
        for name in sorted(files):
            if not name.endswith((".h", ".cpp", ".cc")):
                continue
            path = os.path.join(root, name)
            mine = module_of(os.path.relpath(path, src))
            allowed = MAY_USE.get(mine, "").split()
            with open(path, encoding="utf-8") as f:
                for number, line in enumerate(f, 1):
                    match = INCLUDE.match(line)
                    if not match:
                        continue
                    theirs = module_of(match.group(1))
                    if theirs is None or theirs == mine or "*" in allowed or theirs in allowed:
                        continue
                    problems.append(f"{os.path.relpath(path, src)}:{number}: {mine} includes "
                                    f"\"{match.group(1)}\" of {theirs}, which it does not declare")
    for p in problems:
        print(p)
    print(f"{len(modules)} modules, {len(problems)} layering problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "..", "src")))
