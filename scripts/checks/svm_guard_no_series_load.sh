#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# In the VM: what a user sees who loads svm_guard on a kernel without the hook
# series. The module's only link to kvm-amd is the series' symbols
# (kvm_svm_policy_register/unregister). With kvm_amd unloaded no module exports
# them, as on a kernel whose kvm-amd lacks the series, so insmod must fail and
# the kernel log must name the missing symbol. kvm_amd is then loaded again
# with the run's parameters, which must come back unchanged. Not a kselftest:
# it checks what the pipeline promises users (README, "Out of tree").
# Exit: 0 pass, 1 fail, 4 skip.
ko=$SVM_GUARD_KO
if [ -z "$ko" ] || [ ! -r "$ko" ]; then
	echo "SKIP: SVM_GUARD_KO names no readable module"
	exit 4
fi
fail() { echo "FAIL: $*"; exit 1; }
params() {
	for p in npt nrips vnmi sev sev_es; do
		printf '%s=%s ' "$p" "$(cat "/sys/module/kvm_amd/parameters/$p" 2>/dev/null || echo -)"
	done
}
# shellcheck disable=SC2086 # KVM_AMD_PARAMS is a parameter list.
reload() { modprobe -d "$MODROOT" kvm_amd $KVM_AMD_PARAMS; }

! grep -q '^svm_guard ' /proc/modules || fail "svm_guard is already loaded"
before=$(params)
modprobe -d "$MODROOT" -r kvm_amd || {
	echo "SKIP: kvm_amd could not be unloaded"
	exit 4
}
mark="svm_guard_no_series_load: $$"
echo "$mark" >/dev/kmsg
if out=$(insmod "$ko" 2>&1); then
	rmmod svm_guard
	reload
	fail "insmod succeeded with no kvm-amd hooks to link against"
fi
log=$(dmesg | sed -n "\|$mark|,\$p" | grep 'svm_guard')
reload || fail "kvm_amd did not load again"
after=$(params)
[ "$before" = "$after" ] || fail "kvm_amd came back with '$after', was '$before'"
echo "# insmod: $out"
echo "# kernel: $log"
echo "$log" | grep -q 'svm_guard: Unknown symbol kvm_svm_policy_register' ||
	fail "the kernel log does not name kvm_svm_policy_register"
echo "# insmod failed and the kernel named the missing hook symbol; kvm_amd is back ($after)"
exit 0
