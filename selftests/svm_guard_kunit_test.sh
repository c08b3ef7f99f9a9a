#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# svm_guard_kunit_test: run svm_guard's KUnit suites in the running kernel and
# report their KTAP.  The suites are built into a variant of the module
# (SVM_GUARD_KUNIT=1) named by $SVM_GUARD_KUNIT_KO; they run when it loads,
# against kvm-amd's real code: the ghcb suite sends requests through
# kvm_svm_policy_test_ghcb(), kvm-amd's VMGEXIT path on a synthetic SEV-ES
# vCPU, in each of the path's modes.  The module is left as it was found.
#
# Exit: 0 every suite passed, 1 a suite failed or did not run, 4 skipped.

ksft_skip=4
suites="svm_guard_ghcb"
kunit=/sys/kernel/debug/kunit

skip() { echo "SKIP: $*"; exit $ksft_skip; }
fail() { echo "FAIL: $*"; rc=1; }

[ "$(id -u)" = 0 ] || skip "must run as root"
[ -n "$SVM_GUARD_KUNIT_KO" ] && [ -r "$SVM_GUARD_KUNIT_KO" ] ||
	skip "SVM_GUARD_KUNIT_KO must name svm_guard.ko built with SVM_GUARD_KUNIT=1"
[ -d "$kunit" ] || skip "no $kunit (needs CONFIG_KUNIT_DEBUGFS and debugfs mounted)"
[ -d /sys/module/kvm_amd ] || skip "kvm_amd is not loaded"
[ "$(cat /sys/module/kunit/parameters/enable 2>/dev/null)" != N ] ||
	skip "KUnit is disabled (boot with kunit.enable=1)"

was_loaded=0
[ -d /sys/module/svm_guard ] && was_loaded=1
[ $was_loaded = 1 ] && { rmmod svm_guard || { echo "FAIL: rmmod svm_guard"; exit 1; }; }

rc=0
# The suites set legacy mode themselves, which the module refuses without this.
if insmod "$SVM_GUARD_KUNIT_KO" allow_legacy=1; then
	for suite in $suites; do
		dir=$kunit/$suite
		if [ ! -r "$dir/results" ]; then
			fail "suite $suite is not registered (no $dir/results)"
			continue
		fi
		# Suites run at load unless the kernel boots with kunit.autorun=0;
		# then run them through debugfs.
		if ! grep -qE '^ +(not )?ok [0-9]+ ' "$dir/results"; then
			echo "# $suite did not run at load (kunit.autorun=0?): running it"
			echo 1 >"$dir/run" || fail "cannot run suite $suite"
		fi
		cat "$dir/results"
		plan=$(sed -n 's/^ *1\.\.\([0-9]*\)$/\1/p' "$dir/results" | tail -n 1)
		passed=$(grep -cE '^ +ok [0-9]+ ' "$dir/results")
		last=$(grep -E "^(not )?ok [0-9]+ $suite\$" "$dir/results" | tail -n 1)
		# A suite whose cases did not run also reads "ok": count the cases.
		if [ "${last%% *}" = ok ] && [ "${plan:-0}" -gt 0 ] && [ "$passed" = "$plan" ]; then
			echo "# $suite: $passed of $plan test cases passed"
		else
			fail "suite $suite: $passed of ${plan:-?} test cases passed" \
				"(${last:-no result line})"
		fi
	done
	rmmod svm_guard || fail "rmmod of the KUnit variant"
else
	fail "insmod $SVM_GUARD_KUNIT_KO"
fi

if [ $was_loaded = 1 ]; then
	insmod "${SVM_GUARD_KO:?}" || fail "reloading $SVM_GUARD_KO"
fi
exit $rc
