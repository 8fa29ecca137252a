#!/usr/bin/env python3
"""Compares two unpacked root filesystems: paths, types, permission bits, owners, symlink targets,
device numbers, file contents and mtimes, and hard-link groups. (Not the root directory itself:
GNU `cpio -i` does not apply a "." member to an existing directory; the kernel does.) Prints each difference; exit 1 if any.

    treecmp.py EXPECTED_DIR ACTUAL_DIR [--absent PATH]...

--absent PATH: PATH (relative) is in EXPECTED but must not be in ACTUAL (Wyrcan leaves the kernel
out of the initrd); hard-link groups are compared without it.
"""
import hashlib, os, stat, sys

def scan(root, absent=()):
    out, inodes = {}, {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, root)
            if rel in absent:
                continue
            st = os.lstat(full)
            kind = stat.S_IFMT(st.st_mode)
            rec = {"type": kind, "perm": stat.S_IMODE(st.st_mode), "uid": st.st_uid, "gid": st.st_gid}
            if stat.S_ISLNK(st.st_mode):
                rec["target"] = os.readlink(full)
            elif stat.S_ISREG(st.st_mode):
                with open(full, "rb") as f:
                    rec["sha256"] = hashlib.sha256(f.read()).hexdigest()
                rec["mtime"] = int(st.st_mtime)
                inodes.setdefault(st.st_ino, []).append(rel)
            elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
                rec["rdev"] = (os.major(st.st_rdev), os.minor(st.st_rdev))
            out[rel] = rec
    for paths in inodes.values():
        group = tuple(sorted(paths))
        for p in paths:
            out[p]["links"] = group
    return out

def main():
    args, absent = sys.argv[1:3], set()
    rest = sys.argv[3:]
    while rest[:1] == ["--absent"]:
        absent.add(rest[1])
        rest = rest[2:]
    a, b = scan(args[0], absent), scan(args[1])
    diffs = [f"present but should be absent: {p}" for p in sorted(absent) if os.path.lexists(os.path.join(args[1], p))]
    for p in sorted(set(a) | set(b)):
        if p not in b:
            diffs.append(f"missing: {p}")
        elif p not in a:
            diffs.append(f"extra: {p}")
        elif a[p] != b[p]:
            diffs.append(f"differs: {p}: expected {a[p]}, got {b[p]}")
    for d in diffs:
        print(d)
    print(f"compared {len(a)} paths, {len(diffs)} differences")
    sys.exit(1 if diffs else 0)

if __name__ == "__main__":
    main()
