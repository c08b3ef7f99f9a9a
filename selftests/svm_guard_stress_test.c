// SPDX-License-Identifier: GPL-2.0-only
/*
 * svm_guard_stress_test
 *
 * svm_guard loaded and unloaded over and over while every vCPU storms the
 * paths it hooks and another thread flips every path's mode:
 *
 *   - one vCPU per host CPU (at least two), each looping over INT3 and
 *     INT 0x80, each on a stack page of its own that its host thread drops
 *     before every run, so that their delivery faults and KVM re-injects
 *     them (svm_skip), an NMI from the host before every run (nmi), and
 *     VMMCALL, CPUID and IN from the PIC (exits that go through no GHCB);
 *   - a thread writing guard, upstream and legacy in turn to the mode of
 *     svm_skip, sev_skip, nmi and ghcb;
 *   - the main thread: CYCLES insmod (allow_legacy=1) and rmmod pairs.  A
 *     mode write that meets the module on its way out fails with ENOENT or
 *     EIO and changes nothing.  An rmmod refused because the
 *     flipper holds a debugfs file open (EAGAIN) is retried: it must leave
 *     the module loaded and working, and the next try must succeed.
 *
 * Checked: every load and unload succeeds; every round of every vCPU is
 * accounted for (each INT delivered exactly once, as many NMIs delivered as
 * sent); the guest never rewrites its code, so no mode may ever drop an
 * event (svm_policy_soft_int_drop stays 0); the mode flips took effect.
 * The VM runner fails the run on any splat in the kernel log; make stress
 * runs this on the debug kernel (KASAN, lockdep, KFENCE, kmemleak).
 *
 * CYCLES: $SVM_GUARD_STRESS_CYCLES, default 100.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sysinfo.h>

#include "test_util.h"
#include "kvm_util.h"
#include "processor.h"
#include "svm_guard_module.h"

#define MAX_VCPUS	8
#define PAGES_PER_VCPU	8
#define STORM_SLOT	10
#define STORM_GPA	0x10000000ull
#define INTN_VECTOR	0x80
#define PIC_MASTER_IMR	0x21
#define UNKNOWN_HC	0x5a5a

/* Guest side: handlers count for all vCPUs, each vCPU counts its rounds. */
static u64 bp_hits, intn_hits, nmi_hits;
static u64 rounds_done[MAX_VCPUS];

static void bp_handler(struct ex_regs *regs)
{
	__atomic_fetch_add(&bp_hits, 1, __ATOMIC_SEQ_CST);
}

static void intn_handler(struct ex_regs *regs)
{
	__atomic_fetch_add(&intn_hits, 1, __ATOMIC_SEQ_CST);
}

static void nmi_handler(struct ex_regs *regs)
{
	__atomic_fetch_add(&nmi_hits, 1, __ATOMIC_SEQ_CST);
}

static void guest_code(u64 idx)
{
	u64 base = STORM_GPA + idx * PAGES_PER_VCPU * PAGE_SIZE;
	u32 eax, ebx, ecx, edx;
	u64 round, p, rsp;
	u8 imr;

	for (round = 0;; round++) {
		for (p = 0; p < PAGES_PER_VCPU; p += 2) {
			rsp = base + (p + 1) * PAGE_SIZE;
			asm volatile("mov %%rsp, %%r15\n\t"
				     "mov %0, %%rsp\n\t"
				     "int3\n\t"
				     "mov %1, %%rsp\n\t"
				     "int $" __stringify(INTN_VECTOR) "\n\t"
				     "mov %%r15, %%rsp\n\t"
				     :: "r"(rsp), "r"(rsp + PAGE_SIZE) : "r15", "memory");
		}
		kvm_hypercall(UNKNOWN_HC, 0, 0, 0, 0);
		eax = 1;
		ecx = 0;
		__cpuid(eax, ecx, &eax, &ebx, &ecx, &edx);
		asm volatile("inb %w1, %0" : "=a"(imr) : "Nd"((u16)PIC_MASTER_IMR));
		WRITE_ONCE(rounds_done[idx], round + 1);
		GUEST_SYNC(round);
	}
}

/* Host side. */
static const char *ko_path;
static struct kvm_vm *vm;
static atomic_bool stop;
static atomic_ulong flips;

struct vcpu_thread {
	struct kvm_vcpu *vcpu;
	pthread_t thread;
	void *stacks;
	u64 runs, nmis_sent;
};

static void *run_vcpu(void *arg)
{
	struct vcpu_thread *t = arg;
	struct ucall uc;

	while (!atomic_load(&stop)) {
		/* Only between runs: the guest's frames live on these pages. */
		TEST_ASSERT(!madvise(t->stacks, PAGES_PER_VCPU * PAGE_SIZE, MADV_DONTNEED),
			    "madvise: %s", strerror(errno));
		vcpu_ioctl(t->vcpu, KVM_NMI, NULL);
		t->nmis_sent++;
		svm_guard_run_to_sync(t->vcpu, &uc, false);
		TEST_ASSERT(uc.args[1] == t->runs, "vCPU %u: guest round %lu, host run %lu",
			    t->vcpu->id, uc.args[1], t->runs);
		t->runs++;
	}
	return NULL;
}

/* Write every mode to every path while the module comes and goes. */
static void *flip_modes(void *arg)
{
	static const char * const paths[] = { "svm_skip", "sev_skip", "nmi", "ghcb" };
	static const char * const modes[] = { "guard", "upstream", "legacy" };
	unsigned long i;
	int r;

	for (i = 0; !atomic_load(&stop); i++) {
		r = svm_guard_set_mode(paths[i % 4], modes[(i / 4) % 3]);
		/* Unloaded (ENOENT) or on its way out (EIO): nothing to change. */
		TEST_ASSERT(!r || r == -ENOENT || r == -EIO, "mode %s of %s: %s",
			    modes[(i / 4) % 3], paths[i % 4], strerror(-r));
		if (!r)
			atomic_fetch_add(&flips, 1);
		/* svm_guard logs every mode change: keep the console readable. */
		usleep(1000);
	}
	return NULL;
}

int main(int argc, char *argv[])
{
	struct kvm_vcpu *vcpus[MAX_VCPUS];
	struct vcpu_thread threads[MAX_VCPUS] = {};
	u64 cycles = 100, busy = 0, rounds = 0, nmis = 0, drops = 0;
	const char *env = getenv("SVM_GUARD_STRESS_CYCLES");
	int nr_vcpus, i, r;
	pthread_t flipper;
	bool was_loaded;
	char *end;

	TEST_REQUIRE(kvm_cpu_has(X86_FEATURE_SVM));
	ko_path = svm_guard_require_ko();
	was_loaded = svm_guard_loaded();
	if (env) {
		cycles = strtoull(env, &end, 10);
		TEST_ASSERT(*env && !*end && cycles,
			    "SVM_GUARD_STRESS_CYCLES=%s: want a positive number", env);
	}
	nr_vcpus = get_nprocs();
	nr_vcpus = nr_vcpus < 2 ? 2 : nr_vcpus > MAX_VCPUS ? MAX_VCPUS : nr_vcpus;

	vm = vm_create_with_vcpus(nr_vcpus, guest_code, vcpus);
	vm_install_exception_handler(vm, BP_VECTOR, bp_handler);
	vm_install_exception_handler(vm, INTN_VECTOR, intn_handler);
	vm_install_exception_handler(vm, NMI_VECTOR, nmi_handler);
	vm_userspace_mem_region_add(vm, VM_MEM_SRC_ANONYMOUS, STORM_GPA, STORM_SLOT,
				    nr_vcpus * PAGES_PER_VCPU, 0);
	virt_map(vm, STORM_GPA, STORM_GPA, nr_vcpus * PAGES_PER_VCPU);

	ksft_print_header();
	ksft_set_plan(1);

	if (svm_guard_loaded())
		TEST_ASSERT(!svm_guard_unload(), "rmmod svm_guard: %s", strerror(errno));
	for (i = 0; i < nr_vcpus; i++) {
		vcpu_args_set(vcpus[i], 1, i);
		threads[i].vcpu = vcpus[i];
		threads[i].stacks = addr_gpa2hva(vm, STORM_GPA + i * PAGES_PER_VCPU * PAGE_SIZE);
		r = pthread_create(&threads[i].thread, NULL, run_vcpu, &threads[i]);
		TEST_ASSERT(!r, "pthread_create: %s", strerror(r));
	}
	r = pthread_create(&flipper, NULL, flip_modes, NULL);
	TEST_ASSERT(!r, "pthread_create: %s", strerror(r));

	for (u64 c = 0; c < cycles; c++) {
		r = svm_guard_load(ko_path, "allow_legacy=1");
		TEST_ASSERT(!r, "cycle %lu: insmod %s: %s", c, ko_path, strerror(-r));
		/* Refused while a debugfs file is open: retried, never forced. */
		while ((r = svm_guard_unload()) == -EAGAIN || r == -EWOULDBLOCK) {
			TEST_ASSERT(svm_guard_loaded(), "cycle %lu: a refused rmmod unloaded", c);
			busy++;
			usleep(100);
		}
		TEST_ASSERT(!r, "cycle %lu: rmmod svm_guard: %s", c, strerror(-r));
	}

	atomic_store(&stop, true);
	pthread_join(flipper, NULL);
	for (i = 0; i < nr_vcpus; i++) {
		pthread_join(threads[i].thread, NULL);
		rounds += threads[i].runs;
		nmis += threads[i].nmis_sent;
		drops += vcpu_get_stat(vcpus[i], svm_policy_soft_int_drop);
	}

	sync_global_from_guest(vm, bp_hits);
	sync_global_from_guest(vm, intn_hits);
	sync_global_from_guest(vm, nmi_hits);
	sync_global_from_guest(vm, rounds_done);
	for (i = 0; i < nr_vcpus; i++)
		TEST_ASSERT(rounds_done[i] == threads[i].runs,
			    "vCPU %d: the guest finished %lu rounds, the host saw %lu",
			    i, rounds_done[i], threads[i].runs);
	TEST_ASSERT(bp_hits == rounds * PAGES_PER_VCPU / 2 &&
		    intn_hits == rounds * PAGES_PER_VCPU / 2,
		    "%lu rounds of %d INT3 and INT 0x%x: %lu #BP and %lu INT 0x%x delivered",
		    rounds, PAGES_PER_VCPU / 2, INTN_VECTOR, bp_hits, intn_hits, INTN_VECTOR);
	TEST_ASSERT(nmi_hits == nmis, "%lu NMIs sent, %lu delivered", nmis, nmi_hits);
	TEST_ASSERT(!drops, "%lu soft interrupts dropped, though no guest code changed", drops);
	TEST_ASSERT(atomic_load(&flips), "no mode write took effect in %lu cycles", cycles);

	ksft_print_msg("%d vCPUs, %lu rounds: %lu INT3, %lu INT 0x%x, %lu NMIs, each once\n",
		       nr_vcpus, rounds, bp_hits, intn_hits, INTN_VECTOR, nmi_hits);
	ksft_test_result_pass("%lu load/unload cycles, %lu rmmods retried when busy, %lu flips\n",
			      cycles, busy, atomic_load(&flips));

	kvm_vm_free(vm);
	svm_guard_restore(ko_path, was_loaded);
	ksft_finished();
}
