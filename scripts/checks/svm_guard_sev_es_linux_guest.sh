#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# svm_guard-timeout: 1900
# In the VM: a real SEV-ES guest speaks GHCB to svm_guard. Debian's QEMU
# boots Debian's OVMF and kernel (scripts/sev-guest-image, built on the host,
# SVM_GUARD_SEV_GUEST_IMG) as an SEV-ES guest on the test kernel's KVM, with
# svm_guard in guard mode on every path (scripts/sev-guest-vm). Passes when
# the guest reaches userspace with "AMD SEV SEV-ES" active and powers off and
# svm_guard accepted its GHCB requests and answered none of them as malformed
# (scripts/sev-guest-boot). Not a kselftest: the guest is
# Debian's firmware and kernel, none of the project's code, so it is a check
# of the whole stack and not part of the series.
# About 5 minutes under TCG (4.5 of them OVMF's), twice that with other work on
# the same cores; the svm_guard-timeout line above gives vm-guest's limit, a
# little over sev-guest-boot's own 1800 s so that its diagnosis comes first.
# Exit: 0 pass, 1 fail, 4 skip (no image, or kvm_amd without sev_es).
img=$SVM_GUARD_SEV_GUEST_IMG
if [ -z "$img" ]; then
	echo "SKIP: no SEV guest image (SVM_GUARD_SEV_GUEST_IMG): scripts/vm-test boots it once, on the qemu runner and the emulated model"
	exit 4
fi
if [ ! -r "$img/vmlinuz" ]; then
	echo "FAIL: $img has no vmlinuz (scripts/sev-guest-image builds the image)"
	exit 1
fi
case $(cat /sys/module/kvm_amd/parameters/sev_es 2>/dev/null) in
Y | 1) ;;
*)
	echo "SKIP: kvm_amd offers no SEV-ES guests on this CPU"
	exit 4
	;;
esac
# Progress on the console (fd 3 from vm-guest), where there is one.
progress() { { echo "svm_guard-vm: $*" >&3; } 2>/dev/null || true; }
progress "booting a Debian SEV-ES guest nested in this VM (about 5 minutes under TCG)"
start=$(date +%s)
log=${TMPDIR:-/tmp}/sev-es-linux-guest.log
"$(dirname "$0")/../sev-guest-vm" "$img" sev-es >"$log" 2>&1
rc=$?
cat "$log"
progress "SEV-ES guest: exit $rc after $(($(date +%s) - start)) s"
[ "$rc" = 0 ] || exit 1
# svm_guard must have been in the path: the module's own count of the
# guest's requests, as sev-guest-boot printed it.
counts=$(sed -n 's/.*svm_guard ghcb: \([0-9]*\) accepted, \([0-9]*\) upstream, \([0-9]*\) malformed$/\1 \2 \3/p' "$log" | tail -n 1)
# shellcheck disable=SC2086 # three numbers, split on purpose.
set -- $counts
[ $# = 3 ] || { echo "FAIL: no svm_guard ghcb counts in the boot's output (module not loaded?)"; exit 1; }
[ "$1" -gt 0 ] || { echo "FAIL: svm_guard accepted none of the guest's GHCB requests ($2 upstream)"; exit 1; }
[ "$3" = 0 ] || { echo "FAIL: svm_guard answered $3 of the guest's GHCB requests as malformed"; exit 1; }
echo "# svm_guard accepted $1 GHCB requests of the guest, answered none as malformed"
exit 0
