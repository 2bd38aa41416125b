#!/usr/bin/env python3
"""Walks the daemon's directories and proves another user can use none of it.

  nobody_walk.py list DIR...   (as root) print "KIND<TAB>PATH" for everything
                               below each DIR, not descending into mounts
  nobody_walk.py try TOP...    (as the other user) read that list on stdin and
                               try to list, read, execute or connect to each
                               entry; first prove each TOP can be reached

`try` prints one "ACCESSIBLE ..." line per success and exits 1 if there was
any, or if a TOP could not be reached (then it would pass by seeing nothing).
"""
import os
import socket
import stat
import sys


def kind_of(mode):
    if stat.S_ISDIR(mode):
        return "dir"
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISFIFO(mode):
        return "fifo"
    if stat.S_ISSOCK(mode):
        return "socket"
    if stat.S_ISLNK(mode):
        return "link"
    return "other"


def list_below(tops):
    for top in tops:
        print(f"dir\t{top}")
        for dirpath, dirnames, filenames in os.walk(top):
            keep = []
            for name in sorted(dirnames):
                path = os.path.join(dirpath, name)
                print(f"{kind_of(os.lstat(path).st_mode)}\t{path}")
                if not os.path.ismount(path) and not os.path.islink(path):
                    keep.append(name)
            dirnames[:] = keep
            for name in sorted(filenames):
                path = os.path.join(dirpath, name)
                print(f"{kind_of(os.lstat(path).st_mode)}\t{path}")


def attempts(kind, path):
    """(what, callable) pairs; each callable succeeding is a finding."""
    if kind == "dir":
        yield "list", lambda: os.listdir(path)
        yield "create in", lambda: os.close(os.open(os.path.join(path, ".nobody-was-here"),
                                                     os.O_CREAT | os.O_WRONLY | os.O_EXCL, 0o600))
    elif kind == "socket":
        def connect():
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.connect(path)
        yield "connect to", connect
    elif kind == "fifo":
        yield "open", lambda: os.close(os.open(path, os.O_RDONLY | os.O_NONBLOCK))
    else:  # files, and links followed to whatever they lead to
        yield "read", lambda: open(path, "rb").read(1)
        def execute():
            if not os.access(path, os.X_OK) or os.path.isdir(path):
                raise PermissionError
        yield "execute", execute
        yield "write", lambda: os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))


def try_all(tops):
    failed = False
    for top in tops:
        try:
            os.stat(top)
        except OSError as e:
            print(f"UNREACHABLE {top}: {e}")
            failed = True
    tried = 0
    for line in sys.stdin:
        kind, _, path = line.rstrip("\n").partition("\t")
        if not path:
            continue
        tried += 1
        for what, attempt in attempts(kind, path):
            try:
                attempt()
            except OSError:
                continue
            print(f"ACCESSIBLE {what} {kind} {path}")
            failed = True
    print(f"reached {len(tops)} top directories as uid {os.getuid()}; tried {tried} entries")
    return 1 if failed else 0


def main():
    if len(sys.argv) < 3 or sys.argv[1] not in ("list", "try"):
        print(__doc__, file=sys.stderr)
        return 2
    if sys.argv[1] == "list":
        list_below(sys.argv[2:])
        return 0
    return try_all(sys.argv[2:])


if __name__ == "__main__":
    sys.exit(main())
