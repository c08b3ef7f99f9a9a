#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# In the VM: the svm_guard.ko that DKMS built from the test kernel's headers
# package alone (scripts/deb-dkms) loads, registers with kvm-amd (its debugfs
# paths come up in guard mode) and unloads. Not a kselftest: it checks the
# pipeline's packaging, so it is not part of the series.
# Exit: 0 pass, 1 fail, 4 skip (no DKMS build to load).
ko=$SVM_GUARD_DKMS_KO
if [ -z "$ko" ] || [ ! -r "$ko" ]; then
	echo "SKIP: SVM_GUARD_DKMS_KO names no readable module (scripts/deb-dkms did not run)"
	exit 4
fi
fail() { echo "FAIL: $*"; exit 1; }
! grep -q '^svm_guard ' /proc/modules || fail "svm_guard is already loaded"
echo "# modinfo: $(modinfo -F vermagic "$ko")"
insmod "$ko" || fail "insmod $ko"
for p in svm_skip sev_skip nmi ghcb; do
	mode=$(cat "/sys/kernel/debug/svm_guard/$p/mode" 2>/dev/null)
	[ "$mode" = guard ] || { rmmod svm_guard; fail "$p mode is '$mode', want guard"; }
done
rmmod svm_guard || fail "rmmod"
echo "# the DKMS-built module loaded, registered in guard mode on every path and unloaded"
exit 0
