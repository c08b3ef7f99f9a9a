#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# In the VM: kvm_stat, from the test kernel's tree (tools/kvm/kvm_stat), lists
# every svm_policy_* vCPU stat that kvm-amd declares, with the value KVM's
# debugfs has for it: the stats are the record of what the policy decided, and
# the tool a KVM engineer reaches for shows them. A VM with one vCPU, created
# for the purpose, is open while kvm_stat reads. Not a kselftest: it checks
# the series' stats against a tool of the kernel tree.
# Exit: 0 pass, 1 fail, 4 skip (no kvm_stat or python3).
fail() { echo "FAIL: $*"; exit 1; }
kdir=${MODROOT%/.modroot}
kvm_stat=$kdir/tools/kvm/kvm_stat/kvm_stat
if [ ! -r "$kvm_stat" ] || ! command -v python3 >/dev/null; then
	echo "SKIP: no $kvm_stat or no python3"
	exit 4
fi
dbg=/sys/kernel/debug/kvm
names=$(cd "$dbg" && ls -d svm_policy_* 2>/dev/null)
[ -n "$names" ] || fail "$dbg has no svm_policy_* stats (is this the series' kvm-amd?)"
echo "# $(echo "$names" | wc -l) svm_policy_* stats in $dbg"
# kvm_stat's debugfs mode reads the per-VM directories: hold a VM with one
# vCPU open (KVM_CREATE_VM, KVM_CREATE_VCPU) while it runs.
out=$(python3 - "$kvm_stat" 2>&1 <<'PY'
import fcntl, os, subprocess, sys
kvm = os.open("/dev/kvm", os.O_RDWR)
vm = fcntl.ioctl(kvm, 0xAE01, 0)    # KVM_CREATE_VM
fcntl.ioctl(vm, 0xAE41, 0)          # KVM_CREATE_VCPU, vCPU 0
r = subprocess.run([sys.executable, sys.argv[1], "-1", "-d", "-f", "svm_policy_.*"],
                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
sys.stdout.write(r.stdout)
sys.exit(r.returncode)
PY
) || fail "kvm_stat -1 -d failed: $out"
echo "$out" | sed 's/^/# kvm_stat: /'
missing=
for n in $names; do
	echo "$out" | grep -q "^$n " || missing="$missing $n"
done
[ -z "$missing" ] || fail "kvm_stat does not list:$missing"
extra=$(echo "$out" | awk '{ print $1 }' | grep -v '^svm_policy_' || true)
[ -z "$extra" ] || fail "kvm_stat -f 'svm_policy_.*' listed other fields: $extra"
echo "# kvm_stat lists all $(echo "$names" | wc -l) svm_policy_* stats"
exit 0
