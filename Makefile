# SPDX-License-Identifier: GPL-2.0
# svm_guard entry points. Kbuild reads ./Kbuild, not this file.
#
#   make vm-test     the main job: set up, build kernel + module + selftests, run them in a VM
#                    (RUNNER=vng: boot it with virtme-ng instead of scripts/vm-run)
#   make test        host checks (cargo, rustfmt, clippy, module build) and the VM run
#   make host-test   host checks only
#   make modules     build svm_guard.ko against KDIR (default: the cached test kernel)
#   make kernel      fetch and build the test kernel (cached); prints its path
#   make selftests   build the selftests against KDIR (default: the cached test kernel)
#   make bench       the benchmark: host decisions, the skip step and the cost of being loaded
#                    in the VM, one table in out/bench-<time>.txt (SHORT=1: few reps)
#   make stress      the debug kernel (KASAN, KFENCE, lockdep, UBSAN, kmemleak), CYCLES
#                    load/unload cycles of svm_guard under storms (default 1000)
#   make bench-host  instructions per call of each pure decision on the host (callgrind)
#   make series      the in-tree series with a cover letter in out/series/ (git am to Linux 7.3)
#   make check-series  checkpatch --strict over it; reports must be justified in the cover letter
#   make series-steps  build the tree after each patch of the series, W=1 and KVM_WERROR (by hand)
#   make kselftest-install  the KVM selftest collection with svm_guard's tests (cache)
#   make deb-dkms    bindeb-pkg of the test kernel, its headers installed, svm_guard built by DKMS
#
# KDIR must be a built CONFIG_RUST=y tree, not a headers package. CLIPPY=1 and
# W=e are passed through to kbuild.

KDIR ?=
RUNNER ?=
SHORT ?=
CYCLES ?= 1000
MODES ?=

.PHONY: vm-test test host-test modules kernel selftests bench bench-host stress setup clean \
	series check-series series-steps kselftest-install deb-dkms sev-guest

vm-test:
	SVM_GUARD_RUNNER=$(RUNNER) scripts/vm-test

test:
	scripts/test

host-test:
	KDIR=$(KDIR) scripts/host-test

modules:
	CLIPPY=$(CLIPPY) W=$(W) scripts/build-module $(KDIR)

kernel:
	scripts/build-kernel

selftests:
	scripts/build-selftests $(KDIR)

bench:
	scripts/bench $(if $(SHORT),--short)

bench-host:
	scripts/bench-host

stress:
	scripts/stress $(CYCLES)

sev-guest:
	scripts/sev-guest $(MODES)

series:
	scripts/series

check-series:
	scripts/check-series

series-steps:
	scripts/series-steps

kselftest-install:
	scripts/kselftest-install $(KDIR)

deb-dkms:
	scripts/deb-dkms $(KDIR)

setup:
	scripts/setup

clean:
	rm -rf out rust/target
