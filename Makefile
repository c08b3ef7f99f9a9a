# SPDX-License-Identifier: GPL-2.0
# svm_guard entry points. Kbuild reads ./Kbuild, not this file.
#
#   make vm-test     the main job: set up, build kernel + module + selftests, run them in a VM
#   make test        host checks (cargo, rustfmt, clippy, module build) and the VM run
#   make host-test   host checks only
#   make modules     build svm_guard.ko against KDIR (default: the cached test kernel)
#   make kernel      fetch and build the test kernel (cached); prints its path
#   make selftests   build the selftests against KDIR (default: the cached test kernel)
#   make bench-host  instructions per call of each pure decision on the host (callgrind), by hand
#
# KDIR must be a built CONFIG_RUST=y tree, not a headers package. CLIPPY=1 and
# W=e are passed through to kbuild.

KDIR ?=

.PHONY: vm-test test host-test modules kernel selftests bench-host setup clean

vm-test:
	scripts/vm-test

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

bench-host:
	scripts/bench-host

setup:
	scripts/setup

clean:
	rm -rf out rust/target
