#!/usr/bin/env bash
# Installs what building HiGHS from source needs: a C++ compiler, cmake, and the
# libclang that bindgen loads. Decides by package state (dpkg), not by globbing for
# files: libclang-cpp14's libclang-cpp.so is not the library bindgen loads.
# Debian/Ubuntu; uses sudo when not root. Quiet and idempotent when nothing is missing.
set -euo pipefail

installed() {
    [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]
}

missing=()
for pkg in g++ cmake libclang-dev; do
    installed "$pkg" || missing+=("$pkg")
done

if [ ${#missing[@]} -gt 0 ]; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo=sudo
    echo "installing ${missing[*]}" >&2
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# bindgen (clang-sys) loads libclang.so or libclang-<N>.so*, never libclang-cpp.
if ! compgen -G '/usr/lib/llvm-*/lib/libclang.so*' >/dev/null &&
    ! compgen -G '/usr/lib/llvm-*/lib/libclang-[0-9]*.so*' >/dev/null &&
    ! compgen -G '/usr/lib/*/libclang.so*' >/dev/null &&
    ! compgen -G '/usr/lib/*/libclang-[0-9]*.so*' >/dev/null; then
    echo "install-deps: libclang-dev is installed but no libclang.so or libclang-<N>.so was found" >&2
    echo "install-deps: under /usr/lib/llvm-*/lib or /usr/lib/*/; set LIBCLANG_PATH to the folder holding it" >&2
    exit 1
fi
