#!/usr/bin/python3
"""The layering rules of docs/architecture.md, checked on the #include lines.

    lib/           may include nothing of ours
    proto/         lib/
    backplane/     lib/
    gateway/wire/      lib/ proto/                      pure codecs
    gateway/core/      lib/ proto/ gateway/wire/        the transport: no feature
    gateway/features/  lib/ proto/ backplane/ gateway/wire/ gateway/core/
    gateway/           all of the above (main, run, master, the wiring)

A file belongs to the deepest folder of the table that holds it (a
gateway/<sub>/ folder is a layer of its own, not part of gateway/).

A quoted include names a header; the folder holding it must be the file's
own or one it may use, and the graph of folders actually used must have no
cycle.  The build enforces the same rules with per-folder include paths
(Makefile INC_*); this check names the offending line instead of a missing
header, and also runs where nothing is compiled.

    check_layers.py [ROOT]      check the tree at ROOT (default: the repo)
    check_layers.py --selftest  check the repo, then prove on scratch copies
                                that a violation and a cycle are caught;
                                prints "# layers: N passed, M failed"
"""
import os
import re
import shutil
import sys
import tempfile

ALLOWED = {
    "lib": set(),
    "proto": {"lib"},
    "backplane": {"lib"},
    "gateway/wire": {"lib", "proto"},
    "gateway/core": {"lib", "proto", "gateway/wire"},
    "gateway/features": {"lib", "proto", "backplane", "gateway/wire", "gateway/core"},
    "gateway": {"lib", "proto", "backplane", "gateway/wire", "gateway/core", "gateway/features"},
}
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def layer_files(root, folder):
    """(dirpath, files) of the folder's layer: its subfolders that are
    layers of their own are left out."""
    top = os.path.join(root, folder)
    for dirpath, dirs, files in os.walk(top):
        rel = os.path.relpath(dirpath, root).replace(os.sep, "/")
        dirs[:] = sorted(d for d in dirs if rel + "/" + d not in ALLOWED)
        yield dirpath, files


def headers(root):
    """header name -> folder that holds it (each name must be unique)."""
    where, errors = {}, []
    for folder in ALLOWED:
        for dirpath, files in layer_files(root, folder):
            for f in files:
                if f.endswith(".h"):
                    if f in where:
                        errors.append("%s: header name also in %s/" % (os.path.join(dirpath, f), where[f]))
                    where[f] = folder
    return where, errors


def check(root):
    """Returns the list of violations (empty when the tree is layered)."""
    where, errors = headers(root)
    edges = {f: set() for f in ALLOWED}
    for folder in ALLOWED:
        for dirpath, files in layer_files(root, folder):
            for f in sorted(files):
                if not f.endswith((".c", ".h")):
                    continue
                path = os.path.join(dirpath, f)
                text = open(path, encoding="utf-8", errors="replace").read()
                for m in INCLUDE.finditer(text):
                    name = os.path.basename(m.group(1))
                    used = where.get(name)
                    if used is None or used == folder:
                        continue            # generated, system or own folder
                    edges[folder].add(used)
                    if used not in ALLOWED[folder]:
                        line = text.count("\n", 0, m.start()) + 1
                        errors.append('%s:%d: #include "%s" — %s/ may not use %s/'
                                      % (os.path.relpath(path, root), line, m.group(1), folder, used))
    # a cycle between folders (only possible if ALLOWED itself changes)
    state = {}

    def visit(n, stack):
        state[n] = 1
        for m in sorted(edges[n]):
            if state.get(m) == 1:
                errors.append("cycle between folders: " + " -> ".join(stack + [n, m]))
            elif m not in state:
                visit(m, stack + [n])
        state[n] = 2
    for n in sorted(edges):
        if n not in state:
            visit(n, [])
    return errors


def selftest(repo):
    passed = failed = 0

    def result(name, ok, detail=""):
        nonlocal passed, failed
        if ok:
            passed += 1
        else:
            failed += 1
            print("FAIL %s %s" % (name, detail))

    errs = check(repo)
    result("repo_is_layered", not errs, "\n".join(errs))
    with tempfile.TemporaryDirectory() as tmp:
        for top in sorted({f.split("/")[0] for f in ALLOWED}):
            shutil.copytree(os.path.join(repo, top), os.path.join(tmp, top))
        victim = os.path.join(tmp, "proto", "ws_frame.c")
        with open(victim, "a") as f:
            f.write('\n#include "backplane.h"   /* deliberate violation */\n')
        errs = check(tmp)
        result("proto_using_backplane_refused",
               any("proto/ws_frame.c" in e and "proto/ may not use backplane/" in e for e in errs), errs)
        with open(os.path.join(tmp, "gateway", "wire", "envelope.c"), "a") as f:
            f.write('\n#include "log.h"   /* deliberate violation */\n')
        errs = check(tmp)
        result("wire_using_core_refused",
               any("gateway/wire/envelope.c" in e and "gateway/wire/ may not use gateway/core/" in e for e in errs), errs)
        with open(os.path.join(tmp, "gateway", "core", "conn.c"), "a") as f:
            f.write('\n#include "cluster.h"   /* deliberate violation */\n')
        errs = check(tmp)
        result("core_using_features_refused",
               any("gateway/core/conn.c" in e and "gateway/core/ may not use gateway/features/" in e for e in errs), errs)
        ALLOWED["lib"] = {"proto"}          # a rule change that makes a cycle
        with open(os.path.join(tmp, "lib", "ws_alloc.c"), "a") as f:
            f.write('\n#include "ws_frame.h"\n')
        errs = check(tmp)
        ALLOWED["lib"] = set()
        result("folder_cycle_refused", any(e.startswith("cycle between folders") for e in errs), errs)
    print("# layers: %d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


def main():
    repo = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
    if sys.argv[1:] == ["--selftest"]:
        return selftest(repo)
    root = sys.argv[1] if len(sys.argv) > 1 else repo
    errs = check(root)
    for e in errs:
        print(e, file=sys.stderr)
    if errs:
        print("check_layers: %d violation(s)" % len(errs), file=sys.stderr)
        return 1
    print("check_layers: %s layered as docs/architecture.md says" % " ".join(f + "/" for f in ALLOWED))
    return 0


if __name__ == "__main__":
    sys.exit(main())
