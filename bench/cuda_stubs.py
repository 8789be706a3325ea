#!/usr/bin/env python3
"""Stub CUDA libraries so that PyPI's (CUDA-built) torch wheel imports and runs on CPU.

PyPI's Linux torch wheels link against NVIDIA's CUDA libraries (cuBLAS, cuDNN, NCCL, ...,
about 3 GB of further wheels). For CPU-only benchmarking none of their code runs, but the
dynamic linker must find every library and symbol. This script writes, into OUT_DIR, one
small shared library per missing soname, defining every symbol torch imports from it (with
the right symbol versions); functions return a CUDA error code (100, "no device"), so
`torch.cuda.is_available()` is False. Put OUT_DIR on LD_LIBRARY_PATH.

usage: cuda_stubs.py SITE_PACKAGES OUT_DIR
"""

import collections
import glob
import os
import re
import subprocess
import sys

SYSTEM_VERSIONS = ("GLIBC", "GLIBCXX", "CXXABI", "GCC", "GOMP", "OMP", "QUADMATH")
SYSTEM_DIRS = ["/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64", "/usr/lib64"]
VERSION_SONAME = {"NVSHMEM": "libnvshmem_host.so.3"}
# Unversioned symbols (NCCL, cuSPARSELt, cuFile) all go into this one stub.
UNVERSIONED_HOME = "libnccl.so.2"


def dyn_symbols(path):
    out = subprocess.run(["readelf", "--dyn-syms", "-W", path], capture_output=True, text=True).stdout
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 8 and parts[0].endswith(":"):
            yield parts[3], parts[6], parts[7]  # type, section index, name[@version]


def needed(path):
    out = subprocess.run(["readelf", "-d", path], capture_output=True, text=True).stdout
    return re.findall(r"NEEDED.*\[(.*)\]", out)


def main(site, out_dir):
    torch_libs = glob.glob(os.path.join(site, "torch", "lib", "*.so*")) + glob.glob(
        os.path.join(site, "torch", "_C*.so")
    )
    if not torch_libs:
        sys.exit(f"no torch libraries under {site}")
    system = [p for d in SYSTEM_DIRS for p in glob.glob(os.path.join(d, "lib*.so*"))]
    present = {os.path.basename(p) for p in torch_libs + system}
    defined, undefined = set(), set()
    for lib in torch_libs:
        for typ, ndx, name in dyn_symbols(lib):
            base = name.split("@")[0]
            if ndx != "UND":
                defined.add(base)
            elif base:
                undefined.add((typ, name))
    for lib in glob.glob("/lib/x86_64-linux-gnu/libc.so.6") + glob.glob("/usr/lib/x86_64-linux-gnu/libstdc++.so.6"):
        defined.update(n.split("@")[0] for _, ndx, n in dyn_symbols(lib) if ndx != "UND")
    missing = sorted({n for lib in torch_libs for n in needed(lib)} - present)
    groups = collections.defaultdict(set)
    for typ, name in undefined:
        base, _, version = name.partition("@")
        version = version.lstrip("@").split(" ")[0]
        if base in defined or version.startswith(SYSTEM_VERSIONS):
            continue
        soname = VERSION_SONAME.get(version, version) if version else UNVERSIONED_HOME
        groups[soname].add((typ, base, version))
    os.makedirs(out_dir, exist_ok=True)
    for soname in sorted(set(missing) | set(groups)):
        src = ['static const char message[] = "CUDA is not available (stub library)";']
        versions = set()
        for typ, base, version in sorted(groups.get(soname, ())):
            if typ == "OBJECT":
                src.append(f"char {base}[256];")
            elif "ErrorString" in base or "ErrorName" in base or "GetString" in base:
                src.append(f"const char *{base}(void) {{ return message; }}")
            else:
                src.append(f"long {base}(void) {{ return 100; }}")
            if version:
                versions.add(version)
        c_file = os.path.join(out_dir, soname + ".c")
        with open(c_file, "w") as f:
            f.write("\n".join(src) + "\n")
        cmd = ["gcc", "-shared", "-fPIC", "-w", "-o", os.path.join(out_dir, soname), c_file, f"-Wl,-soname,{soname}"]
        if versions:
            map_file = os.path.join(out_dir, soname + ".map")
            with open(map_file, "w") as f:
                f.write("".join(f"{v} {{ global: *; }};\n" for v in sorted(versions)))
            cmd.append(f"-Wl,--version-script={map_file}")
        subprocess.run(cmd, check=True)
        print(f"stub {soname}: {len(groups.get(soname, ()))} symbols")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
