# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=bash disable=SC2034
# Shared settings and helpers for the svm_guard scripts. Source it; do not run it.
#
# Every pinned version lives here and only here.

# The kernel the module and the hook series target. The Debian package is
# linux-source-$SVM_GUARD_KSERIES; its upstream version must start with
# $SVM_GUARD_KSERIES. (a dot after it or the end of the string).
SVM_GUARD_KSERIES=7.3
# Debian suites tried, in order, for linux-source-$SVM_GUARD_KSERIES.
SVM_GUARD_KSUITES="trixie-backports sid forky"
# QEMU for the emulated NRIPS/vNMI CPU model (scripts/build-qemu): the upstream
# version of Debian's qemu source package that scripts/setup installs from
# bookworm-backports; qemu/*.patch applies to it.
SVM_GUARD_QEMU_VERSION=10.0.2+ds
# bindgen-cli version the kernel build uses (the kernel's minimum is 0.65.1;
# 0.71.1 is the one known to work with libclang 19 here).
SVM_GUARD_BINDGEN_VERSION=0.71.1
SVM_GUARD_LIBCLANG=/usr/lib/llvm-19/lib
# virtme-ng (PyPI virtme-ng) for the alternative VM runner scripts/vm-run-vng,
# installed by scripts/setup-vng into a venv in the cache.
SVM_GUARD_VNG_VERSION=1.42
# cargo-fuzz for scripts/fuzz (built with the rustup toolchain and RUSTC_BOOTSTRAP=1).
SVM_GUARD_CARGO_FUZZ_VERSION=0.13.2

# Everything built or downloaded lives outside the repo, in the cache.
SVM_GUARD_CACHE=${SVM_GUARD_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/svm_guard}

SVM_GUARD_TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# The kernel is built with Debian's rustc-web (it ships the library sources the
# kernel needs); never with whatever rustc a shell has first on PATH.
SVM_GUARD_KRUSTC=/usr/bin/rustc
SVM_GUARD_KRUSTFMT=/usr/bin/rustfmt
SVM_GUARD_KCLIPPY=/usr/bin/clippy-driver
SVM_GUARD_BINDGEN=$SVM_GUARD_CACHE/tools/bin/bindgen
# The debug kernel (scripts/stress) is built with clang: LLVM=-19, the
# clang-19/lld-19 that scripts/setup installs for bindgen.
SVM_GUARD_LLVM=-19
# The host crate (rust/) builds with the machine's rustup toolchain.
SVM_GUARD_CARGO=${SVM_GUARD_CARGO:-$HOME/.cargo/bin/cargo}

# Make variables for every make against the kernel tree KDIR ($1, optional).
svm_guard_kmake_vars() {
	# A tree built with clang (the debug variant) builds its modules with it.
	if [ -n "${1:-}" ] && grep -q '^CONFIG_CC_IS_CLANG=y' "$1/.config" 2>/dev/null; then
		echo "LLVM=$SVM_GUARD_LLVM"
	fi
	printf '%s\n' \
		"RUSTC=$SVM_GUARD_KRUSTC" \
		"RUSTFMT=$SVM_GUARD_KRUSTFMT" \
		"CLIPPY_DRIVER=$SVM_GUARD_KCLIPPY" \
		"BINDGEN=$SVM_GUARD_BINDGEN" \
		"LIBCLANG_PATH=$SVM_GUARD_LIBCLANG" \
		"HOSTRUSTC=$SVM_GUARD_KRUSTC"
}

# The paths the patch files "$@" touch (git diff headers), one per line, sorted.
svm_guard_patch_paths() {
	cat "$@" | sed -n 's|^diff --git a/\([^ ]*\) b/.*|\1|p' | sort -u
}

log() { printf '[svm_guard %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { printf '[svm_guard] error: %s\n' "$*" >&2; exit 1; }

# Private apt: a sources file and lists directory of our own, so the system's
# lists stay as they are. Usage: svm_guard_apt <name> <sources lines> -- <apt-get args>.
svm_guard_apt_dir() {
	local name=$1 sources=$2 dir
	dir=$SVM_GUARD_CACHE/apt/$name
	mkdir -p "$dir/lists/partial" "$dir/archives/partial"
	if [ ! -f "$dir/sources.list" ] || [ "$(cat "$dir/sources.list")" != "$sources" ]; then
		printf '%s\n' "$sources" >"$dir/sources.list"
		rm -f "$dir/updated"
	fi
	printf '%s\n' "$dir"
}

svm_guard_apt() {
	local dir=$1
	shift
	apt-get -q \
		-o Dir::Etc::SourceList="$dir/sources.list" \
		-o Dir::Etc::SourceParts=/dev/null \
		-o Dir::State::Lists="$dir/lists" \
		-o Dir::Cache::Archives="$dir/archives" \
		-o APT::Get::List-Cleanup=0 \
		-o APT::Sandbox::User=root \
		"$@"
}

svm_guard_apt_update() {
	local dir=$1
	# One update per day is enough; the lists are ours alone.
	if [ -f "$dir/updated" ] && [ -n "$(find "$dir/updated" -mmin -1440)" ]; then
		return 0
	fi
	svm_guard_apt "$dir" update >&2 || return 1
	touch "$dir/updated"
}
