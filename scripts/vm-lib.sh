# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=bash
# What the VM runners (scripts/vm-run with QEMU, scripts/vm-run-vng with
# virtme-ng) share: arguments and path checks, the results directory and its
# run.conf, the choice of accelerator, and the verdict from the files the
# guest left behind. Source it after lib.sh; do not run it.
#
# Both runners take: KDIR MODULE_KO KSELFTEST_DIR [KUNIT_MODULE_KO]
# and the environment knobs SVM_GUARD_OUT, SVM_GUARD_VM_TIMEOUT,
# SVM_GUARD_TEST_TIMEOUT, SVM_GUARD_DKMS_KO, SVM_GUARD_SEV_GUEST_IMG,
# SVM_GUARD_KVM_AMD_PARAMS, SVM_GUARD_ACCEL, SVM_GUARD_QEMU, SVM_GUARD_ONLY and SVM_GUARD_COMMAND (see
# scripts/vm-run).

# The runner's name, for messages.
vm_name=$(basename "$0")

# vm_args "$@": check the arguments and paths; sets kdir, ko, ksft,
# kunit_ko, dkms_ko, sev_img, bzimage and modroot.
vm_args() {
	[ $# = 3 ] || [ $# = 4 ] || die "usage: $vm_name KDIR MODULE_KO KSELFTEST_DIR [KUNIT_MODULE_KO]"
	kdir=$1 ko=$2 ksft=$3 kunit_ko=${4:-} dkms_ko=${SVM_GUARD_DKMS_KO:-}
	sev_img=${SVM_GUARD_SEV_GUEST_IMG:-}
	bzimage=$kdir/arch/x86/boot/bzImage
	modroot=$kdir/.modroot
	local f
	for f in "$bzimage" "$ko" "$ksft" "$modroot" "$SVM_GUARD_TOP" ${kunit_ko:+"$kunit_ko"} ${dkms_ko:+"$dkms_ko"} ${sev_img:+"$sev_img"}; do
		[ -e "$f" ] || die "$vm_name: $f does not exist"
		# The guest sees the host's files except under what it mounts itself.
		case $(realpath "$f") in
		/run/* | /proc/* | /sys/* | /dev/*) die "$vm_name: $f is under /run, /proc, /sys or /dev, which the guest mounts over" ;;
		esac
	done
}

# vm_out: create the results directory (SVM_GUARD_OUT, default
# out/vm-<time>), clear what a previous run left there, and point out/latest
# at it; sets out (absolute) and vm_timeout.
vm_out() {
	out=${SVM_GUARD_OUT:-$SVM_GUARD_TOP/out/vm-$(date +%Y%m%d-%H%M%S)}
	mkdir -p "$out"
	out=$(cd "$out" && pwd)
	rm -f "$out"/{tap,status,dmesg,guest.log,console.log,*.log}
	ln -sfn "$out" "$SVM_GUARD_TOP/out/latest" 2>/dev/null || true
	vm_timeout=${SVM_GUARD_VM_TIMEOUT:-1200}
}

# vm_run_conf: write $out/run.conf, which scripts/vm-guest reads in the guest;
# sets tests (the tests.list the run uses). KSFT is the installed selftest
# collection.
vm_run_conf() {
	# SVM_GUARD_ONLY: run only the tests.list lines matching this extended regex.
	tests=$SVM_GUARD_TOP/selftests/tests.list
	if [ -n "${SVM_GUARD_ONLY:-}" ]; then
		grep -E -- "$SVM_GUARD_ONLY" "$tests" | grep -v '^[[:space:]]*#' >"$out/tests.list" ||
			die "SVM_GUARD_ONLY='$SVM_GUARD_ONLY' matches no test in $tests"
		tests=$out/tests.list
	fi
	cat >"$out/run.conf" <<EOF
MODROOT='$modroot'
MODULE='$ko'
KUNIT_MODULE='$kunit_ko'
KSFT='$ksft'
DKMS_MODULE='$dkms_ko'
SEV_GUEST_IMG='$sev_img'
TESTS='$tests'
TEST_TIMEOUT='${SVM_GUARD_TEST_TIMEOUT:-300}'
KVM_AMD_PARAMS='${SVM_GUARD_KVM_AMD_PARAMS:-}'
COMMAND='${SVM_GUARD_COMMAND:-}'
EOF
}

# vm_accel: KVM acceleration only where the host really has SVM; otherwise
# TCG (SVM_GUARD_ACCEL overrides). Sets accel and writes $out/accel.
vm_accel() {
	accel=${SVM_GUARD_ACCEL:-}
	if [ -z "$accel" ]; then
		if grep -qw svm /proc/cpuinfo && [ -w /dev/kvm ]; then accel=kvm; else accel=tcg; fi
	fi
	case $accel in
	kvm | tcg) ;;
	*) die "SVM_GUARD_ACCEL=$accel: want kvm or tcg" ;;
	esac
	echo "$accel" >"$out/accel"
}

# vm_verdict RC WHAT START: judge the run from what the guest wrote into $out
# (status, tap, dmesg) and from $out/console.log; RC is the exit status of the
# VM command WHAT (timeout's 124/137 mean the guest hung), started at START
# (seconds since the epoch). Prints the TAP and
# the per-path table; returns 0 when every test passed or skipped and the
# kernel log is clean, 1 otherwise.
vm_verdict() {
	local rc=$1 what=$2 start=$3 fail=0 status f
	log "vm: $what exited $rc after $(($(date +%s) - start)) s"
	if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
		log "vm: the guest hung: no power-off within ${vm_timeout}s (console: $out/console.log)"
		fail=1
	fi
	status=$(cat "$out/status" 2>/dev/null || echo missing)
	if [ "$status" != 0 ]; then
		log "vm: the guest run failed (status: $status); last console lines:"
		tail -n 30 "$out/console.log" >&2
		fail=1
	fi

	# Any splat in the kernel log fails the run, whatever the tests said.
	# Lockdep's reports open with WARNING: or INFO:, not with the word
	# "lockdep", which a debug kernel prints at boot ("RCU lockdep checking
	# is enabled."); KFENCE's and KASAN's open with BUG:.
	local splat='(WARNING:|BUG:|kernel BUG|Oops|general protection fault|KASAN:|KFENCE:|UBSAN:|possible circular locking|possible recursive locking|inconsistent lock state|suspicious RCU usage|INFO: possible|INFO: task .* blocked|DEBUG_LOCKS_WARN_ON|list_add corruption|list_del corruption|kmemleak: [0-9]+ new suspected|Kernel panic)'
	for f in "$out/dmesg" "$out/console.log"; do
		[ -f "$f" ] || continue
		# Only kernel messages (timestamped), not what tests printed.
		if grep -E "^\[ *[0-9]+\.[0-9]+\] .*$splat" "$f" >"$out/splat.txt"; then
			log "vm: kernel log $(basename "$f") has a splat:"
			head -n 20 "$out/splat.txt" >&2
			fail=1
			break
		fi
	done
	[ -s "$out/splat.txt" ] || rm -f "$out/splat.txt"

	# A run of one command (SVM_GUARD_COMMAND) leaves its output, not TAP;
	# its exit status is the guest's status.
	if [ -n "${SVM_GUARD_COMMAND:-}" ]; then
		if [ ! -s "$out/command.log" ]; then
			log "vm: the command left no output (log: $out/command.log)"
			fail=1
		fi
	# TAP and the per-path table.
	elif [ -s "$out/tap" ]; then
		cat "$out/tap"
		"$SVM_GUARD_TOP/scripts/report" "$out/tap" "$tests" || fail=1
	else
		log "vm: the guest wrote no TAP"
		fail=1
	fi
	log "vm: kvm_amd $(cat "$out/kvm_amd.params" 2>/dev/null || echo 'params unknown'); logs in $out"
	return $fail
}
