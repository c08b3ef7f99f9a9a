// SPDX-License-Identifier: GPL-2.0-only
/*
 * svm_guard_soft_int_test
 *
 * Re-injection of a soft interrupt whose delivery faulted, driven from a
 * guest.  The guest points RSP into a page that is backed by userfaultfd and
 * not yet present, then executes INT3, INT 0x20 or INT 0: pushing the
 * interrupt frame takes a #NPF while the CPU vectors the event, and KVM must
 * re-inject it, skipping the instruction at CS:RIP to find the return
 * address.  The fault handler may rewrite that instruction before it
 * resolves the page, as INT3 patching in a guest kernel does.
 *
 *   int3, int 0x20, int 0: unchanged; the handler sees the return RIP
 *     right after the instruction.
 *   int3 -> nopl (5 bytes): the event must be dropped and the NOP run;
 *     a #BP at all, let alone one returning past the NOP, is the bug.
 *   int 0x20 -> int 0x21: the event must be dropped and INT 0x21 run.
 *   into (in a 32-bit compatibility-mode code segment, OF set): #OF
 *     returning right after it; rewritten to a 2-byte NOP: no #OF.
 *
 * Each case runs without svm_guard, and with it in the modes guard,
 * upstream and legacy.  guard and upstream (and no module) must get every
 * case right; with guard, kvm-amd's svm_policy_soft_int_* stats must show a
 * skip for each unchanged case and a drop for each rewrite.  legacy skips
 * whatever instruction is there without checking it: the test must see the
 * rewrite cases go wrong, which shows that it detects the bug.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <linux/userfaultfd.h>

#include "test_util.h"
#include "kvm_util.h"
#include "processor.h"
#include "userfaultfd_util.h"
#include "svm_guard_module.h"

#define STACK_SLOT	10
#define STACK_GPA	0x10000000ull
#define STACK_PAGES	32	/* At least 4 modes x NR_CASES. */

enum soft_case {
	CASE_INT3,
	CASE_INTN,
	CASE_INT0,
	CASE_INT3_TO_NOP,
	CASE_INTN_TO_OTHER,
	CASE_INTO_COMPAT,
	CASE_INTO_COMPAT_TO_NOP,
	NR_CASES,
};

static const char * const case_names[NR_CASES] = {
	"int3", "int 0x20", "int 0", "int3 rewritten to nopl", "int 0x20 rewritten to int 0x21",
	"compat into", "compat into rewritten to a 2-byte nop",
};

/* The selftest library's 64-bit code and data selectors (lib/x86/processor.c). */
#define LIB_KERNEL_CS	0x08
#define LIB_KERNEL_DS	0x10
/* 32-bit code and stack segments for compatibility mode, after the TSS. */
#define COMPAT_CS	0x30
#define COMPAT_SS	0x38
#define GDT_CODE32	0x00cf9b000000ffffull
#define GDT_DATA32	0x00cf93000000ffffull

/* Guest side. */
static u64 guest_case, guest_stack;
static u64 hits[256], hit_rip[256];

extern char int3_site[], int20_site[], int0_site[], into_site[];

static void guest_handler(struct ex_regs *regs)
{
	hits[regs->vector]++;
	hit_rip[regs->vector] = regs->rip;
}

/*
 * Each site is padded to five bytes so a rewrite may use them all.  The
 * event is raised with RSP at the top of a page that is not present yet.
 */
#define SOFT_INT_SITE(name, insn, pad)					\
static noinline void guest_##name(u64 rsp)				\
{									\
	asm volatile("mov %%rsp, %%r15\n\t"				\
		     "mov %0, %%rsp\n\t"					\
		     ".globl " #name "_site\n"				\
		     #name "_site:\n\t"					\
		     insn "\n\t"						\
		     pad "\n\t"						\
		     "mov %%r15, %%rsp\n\t"				\
		     :: "r"(rsp) : "r15", "memory");			\
}

SOFT_INT_SITE(int3, "int3", "nop; nop; nop; nop")
SOFT_INT_SITE(int20, "int $0x20", "nop; nop; nop")
SOFT_INT_SITE(int0, "int $0", "nop; nop; nop")

/*
 * INTO is invalid in 64-bit mode: far-return into a 32-bit code segment
 * (with a 32-bit stack segment, so pushes use ESP), set OF, raise INTO with
 * ESP at the top of a page that is not present yet, and far-return to
 * 64-bit mode.  Everything stays below 4 GiB, as compatibility mode needs.
 */
/* Referenced only from asm: keep it (tools' __used means "maybe unused"). */
static u64 saved_rsp __attribute__((used));

static noinline void guest_into(u64 rsp)
{
	asm volatile("mov %%rsp, saved_rsp(%%rip)\n\t"
		     "mov $" __stringify(COMPAT_SS) ", %%ax\n\t"
		     "mov %%ax, %%ss\n\t"
		     "pushq $" __stringify(COMPAT_CS) "\n\t"
		     "lea 1f(%%rip), %%rax\n\t"
		     "pushq %%rax\n\t"
		     "lretq\n\t"
		     ".code32\n"
		     "1:\n\t"
		     "mov %%ebx, %%esp\n\t"
		     "mov $0x7f, %%al\n\t"
		     "add $1, %%al\n\t"
		     ".globl into_site\n"
		     "into_site:\n\t"
		     "into\n\t"
		     "nop; nop; nop; nop\n\t"
		     "pushl $" __stringify(LIB_KERNEL_CS) "\n\t"
		     "call 2f\n"
		     "2:\n\t"
		     "addl $(3f - 2b), (%%esp)\n\t"
		     "lret\n\t"
		     ".code64\n"
		     "3:\n\t"
		     "mov $" __stringify(LIB_KERNEL_DS) ", %%ax\n\t"
		     "mov %%ax, %%ss\n\t"
		     "mov saved_rsp(%%rip), %%rsp\n\t"
		     :: "b"(rsp) : "rax", "memory", "cc");
}

static void guest_code(void)
{
	int i;

	for (;;) {
		for (i = 0; i < 256; i++)
			hits[i] = 0;

		switch (guest_case) {
		case CASE_INT3:
		case CASE_INT3_TO_NOP:
			guest_int3(guest_stack);
			break;
		case CASE_INTN:
		case CASE_INTN_TO_OTHER:
			guest_int20(guest_stack);
			break;
		case CASE_INT0:
			guest_int0(guest_stack);
			break;
		case CASE_INTO_COMPAT:
		case CASE_INTO_COMPAT_TO_NOP:
			guest_into(guest_stack);
			break;
		}
		GUEST_SYNC(guest_case);
	}
}

/* Host side. */
static struct kvm_vm *vm;
static u8 *rewrite_hva;
static u8 rewrite_bytes[5];
static size_t rewrite_len;
static int faults_seen;

/*
 * The vCPU is blocked on the stack page: rewrite the code, then resolve the
 * fault with a writable page, so the frame push does not fault again.
 */
static int handle_stack_fault(int uffd_mode, int uffd, struct uffd_msg *msg)
{
	static u8 zeroes[4096] __aligned(4096);
	struct uffdio_copy copy = {
		.dst = msg->arg.pagefault.address & ~(u64)(getpagesize() - 1),
		.src = (u64)zeroes,
		.len = getpagesize(),
	};

	if (rewrite_len)
		memcpy(rewrite_hva, rewrite_bytes, rewrite_len);
	WRITE_ONCE(faults_seen, faults_seen + 1);
	if (ioctl(uffd, UFFDIO_COPY, &copy) && errno != EEXIST) {
		pr_info("UFFDIO_COPY: %s\n", strerror(errno));
		return -errno;
	}
	return 0;
}

struct soft_stats {
	u64 skip, drop, unchecked;
};

static struct soft_stats soft_stats(struct kvm_vcpu *vcpu)
{
	return (struct soft_stats) {
		.skip = vcpu_get_stat(vcpu, svm_policy_soft_int_skip),
		.drop = vcpu_get_stat(vcpu, svm_policy_soft_int_drop),
		.unchecked = vcpu_get_stat(vcpu, svm_policy_soft_int_skip_unchecked),
	};
}

/*
 * Run @c with the stack in page @page; returns NULL if the guest saw the
 * architecturally right outcome, else what went wrong.
 */
static const char *run_case(struct kvm_vcpu *vcpu, enum soft_case c, int page)
{
	static const u8 nopl[5] = { 0x0f, 0x1f, 0x44, 0x00, 0x00 };
	static const u8 int21[2] = { 0xcd, 0x21 };
	static const u8 nop2[2] = { 0x66, 0x90 };
	static char why[160];
	u64 site, want_vector, want_rip;
	u8 saved[5];
	struct ucall uc;
	int vector;

	switch (c) {
	case CASE_INT3:
	case CASE_INT3_TO_NOP:
		site = (u64)int3_site;
		break;
	case CASE_INT0:
		site = (u64)int0_site;
		break;
	case CASE_INTO_COMPAT:
	case CASE_INTO_COMPAT_TO_NOP:
		site = (u64)into_site;
		break;
	default:
		site = (u64)int20_site;
		break;
	}
	rewrite_hva = addr_gva2hva(vm, site);
	memcpy(saved, rewrite_hva, sizeof(saved));
	rewrite_len = 0;
	if (c == CASE_INT3_TO_NOP) {
		memcpy(rewrite_bytes, nopl, sizeof(nopl));
		rewrite_len = sizeof(nopl);
	} else if (c == CASE_INTN_TO_OTHER) {
		memcpy(rewrite_bytes, int21, sizeof(int21));
		rewrite_len = sizeof(int21);
	} else if (c == CASE_INTO_COMPAT_TO_NOP) {
		memcpy(rewrite_bytes, nop2, sizeof(nop2));
		rewrite_len = sizeof(nop2);
	}

	guest_case = c;
	guest_stack = STACK_GPA + (u64)(page + 1) * getpagesize();
	sync_global_to_guest(vm, guest_case);
	sync_global_to_guest(vm, guest_stack);
	faults_seen = 0;

	svm_guard_run_to_sync(vcpu, &uc, false);
	memcpy(rewrite_hva, saved, sizeof(saved));
	TEST_ASSERT(READ_ONCE(faults_seen) == 1,
		    "%s: %d faults on the stack page, want 1: the delivery did not fault",
		    case_names[c], faults_seen);

	sync_global_from_guest(vm, hits);
	sync_global_from_guest(vm, hit_rip);

	switch (c) {
	case CASE_INT3:
		want_vector = BP_VECTOR, want_rip = site + 1;
		break;
	case CASE_INTN:
		want_vector = 0x20, want_rip = site + 2;
		break;
	case CASE_INT0:
		want_vector = 0, want_rip = site + 2;
		break;
	case CASE_INT3_TO_NOP:
	case CASE_INTO_COMPAT_TO_NOP:
		want_vector = 256, want_rip = 0;
		break;
	case CASE_INTO_COMPAT:
		want_vector = OF_VECTOR, want_rip = site + 1;
		break;
	default:
		/* The rewritten instruction runs: INT 0x21, returning after it. */
		want_vector = 0x21, want_rip = site + 2;
		break;
	}

	for (vector = 0; vector < 256; vector++) {
		if (vector == want_vector)
			continue;
		if (hits[vector]) {
			snprintf(why, sizeof(why),
				 "%s: vector 0x%x delivered, returning to site+%lu",
				 case_names[c], vector, hit_rip[vector] - site);
			return why;
		}
	}
	if (want_vector < 256 &&
	    (hits[want_vector] != 1 || hit_rip[want_vector] != want_rip)) {
		snprintf(why, sizeof(why),
			 "%s: vector 0x%lx delivered %lu times, returning to site+%lu, want once to site+%lu",
			 case_names[c], want_vector, hits[want_vector],
			 hit_rip[want_vector] - site, want_rip - site);
		return why;
	}
	return NULL;
}

/* Stack pages are used once each: a mode's cases start at @first_page. */
static void run_mode(struct kvm_vcpu *vcpu, const char *mode, int first_page)
{
	bool legacy = !strcmp(mode, "legacy");
	struct soft_stats before, after;
	const char *why;
	int c;

	for (c = 0; c < NR_CASES; c++) {
		bool rewrite = c == CASE_INT3_TO_NOP || c == CASE_INTN_TO_OTHER ||
			       c == CASE_INTO_COMPAT_TO_NOP;

		before = soft_stats(vcpu);
		why = run_case(vcpu, c, first_page + c);
		after = soft_stats(vcpu);

		if (legacy && rewrite) {
			/* The proof that the check above catches the bug. */
			TEST_ASSERT(why, "legacy: %s went right; the test cannot see the bug",
				    case_names[c]);
			ksft_test_result_pass("%s: %s: wrong outcome detected (%s)\n",
					      mode, case_names[c], why);
			continue;
		}
		TEST_ASSERT(!why, "%s: %s", mode, why);

		if (!strcmp(mode, "guard")) {
			u64 skips = after.skip - before.skip, drops = after.drop - before.drop;
			const char *want = rewrite ? "drop" : "skip";
			bool ok = rewrite ? drops && !skips : skips && !drops;

			TEST_ASSERT(ok, "guard: %s: policy stats skip +%lu drop +%lu, want a %s",
				    case_names[c], skips, drops, want);
		} else if (legacy) {
			TEST_ASSERT(after.unchecked > before.unchecked,
				    "legacy: %s: no unchecked skip counted", case_names[c]);
		} else {
			TEST_ASSERT(after.skip == before.skip && after.drop == before.drop &&
				    after.unchecked == before.unchecked,
				    "%s: %s: policy stats moved", mode, case_names[c]);
		}
		ksft_test_result_pass("%s: %s\n", mode, case_names[c]);
	}
}

int main(int argc, char *argv[])
{
	static const char * const modes[] = { "no module", "guard", "upstream", "legacy" };
	struct uffd_desc *uffd;
	struct kvm_vcpu *vcpu;
	u64 *gdt;
	const char *ko_path;
	bool was_loaded;
	unsigned int m;
	int r;

	TEST_REQUIRE(kvm_cpu_has(X86_FEATURE_SVM));
	ko_path = svm_guard_require_ko();
	was_loaded = svm_guard_loaded();

	vm = vm_create_with_one_vcpu(&vcpu, guest_code);
	vm_install_exception_handler(vm, 0, guest_handler);
	vm_install_exception_handler(vm, BP_VECTOR, guest_handler);
	vm_install_exception_handler(vm, OF_VECTOR, guest_handler);
	vm_install_exception_handler(vm, 0x20, guest_handler);
	vm_install_exception_handler(vm, 0x21, guest_handler);

	gdt = addr_gva2hva(vm, vm->arch.gdt);
	gdt[COMPAT_CS / 8] = GDT_CODE32;
	gdt[COMPAT_SS / 8] = GDT_DATA32;

	vm_userspace_mem_region_add(vm, VM_MEM_SRC_ANONYMOUS, STACK_GPA, STACK_SLOT,
				    STACK_PAGES, 0);
	virt_map(vm, STACK_GPA, STACK_GPA, STACK_PAGES);
	uffd = uffd_setup_demand_paging(UFFDIO_REGISTER_MODE_MISSING, 0,
					addr_gpa2hva(vm, STACK_GPA),
					STACK_PAGES * getpagesize(), 1,
					handle_stack_fault);

	ksft_print_header();
	ksft_set_plan(ARRAY_SIZE(modes) * NR_CASES);

	for (m = 0; m < ARRAY_SIZE(modes); m++) {
		if (m == 0) {
			if (svm_guard_loaded())
				TEST_ASSERT(!svm_guard_unload(), "rmmod svm_guard failed");
		} else if (m == 1) {
			r = svm_guard_load(ko_path, "allow_legacy=1");
			TEST_ASSERT(!r, "insmod %s: %s", ko_path, strerror(-r));
		}
		if (m > 0) {
			r = svm_guard_set_mode("svm_skip", modes[m]);
			TEST_ASSERT(!r, "svm_skip mode %s: %s", modes[m], strerror(-r));
		}
		run_mode(vcpu, modes[m], m * NR_CASES);
	}

	uffd_stop_demand_paging(uffd);
	kvm_vm_free(vm);

	/* Without allow_legacy. */
	svm_guard_restore(ko_path, was_loaded);
	ksft_finished();
}
