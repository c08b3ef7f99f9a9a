// SPDX-License-Identifier: GPL-2.0-only
/*
 * svm_guard_bench
 *
 * The in-VM groups of make bench (scripts/bench); not a test: it measures
 * and prints, and fails only when a run goes wrong (a lost round, a stat
 * that does not add up), never on a number.
 *
 * Skip step.  A storm of soft interrupts whose delivery faults: the guest
 * raises INT3 or INT 0x80 with RSP at the top of a stack page that the host
 * has just dropped (MADV_DONTNEED), so pushing the frame takes a #NPF while
 * the CPU vectors the event and KVM re-injects it; without NRIPS it must
 * skip the instruction at CS:RIP to find the return address.  Two numbers
 * per event: the guest's TSC around the instruction (the whole re-injection
 * round trip: #NPF exit, page fault-in, skip, re-injection, handler), and
 * the duration of kvm-amd's skip step, svm_update_soft_interrupt_rip(),
 * from ftrace's function_graph tracer on the x86-tsc clock.  With svm_guard
 * in guard mode the skip is the hook's read of the bytes at CS:RIP and the
 * module's decoder; unloaded it is KVM's instruction emulator; in upstream
 * mode the hook reads the bytes, then the module hands the skip to the
 * emulator.  A second storm times the parts (the emulator, the hook's read,
 * its call into the module), a third the tracer's own cost per call, on
 * svm_get_rflags(), which only loads a field.
 *
 * Cost of being loaded.  Exit-heavy guest loops, timed with the guest's TSC:
 * INT3 into the guest's own IDT (no exit at all), VMMCALL (an unknown
 * hypercall), IN from the in-kernel PIC, and an NMI per round trip to the
 * host (KVM_NMI, delivery, the IRET that kvm-amd intercepts without vNMI).
 *
 * Every row runs in each mode: svm_guard unloaded, loaded in guard, loaded
 * in upstream, interleaved rep by rep in one boot.  Under QEMU with
 * -icount shift=0 (scripts/bench) the TSC advances by one per guest
 * instruction, so every number is an instruction count of the VM (L1 and
 * L2), not a wall-clock time.
 *
 * With SVM_GUARD_BENCH_BASELINE set, on a kernel without the series: only
 * the rows without the module, as mode "no-series" (scripts/bench's check
 * that the unloaded hooks cost nothing, their static key being off).
 *
 * Output, one line per row and mode (min, median and max over the samples:
 * one per event for the storm, one per rep, in cycles per iteration, for
 * the loops):
 *   bench <row> <mode> <samples> <min> <median> <max>
 *
 * Usage: svm_guard_bench [REPS [ROUNDS [ITERS]]]
 *   REPS: reps per mode (default 5); ROUNDS: storm rounds of STORM_PAGES
 *   events per rep (default 4); ITERS: iterations per loop rep (default 2000).
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "test_util.h"
#include "kvm_util.h"
#include "processor.h"
#include "svm_guard_module.h"

#define STORM_SLOT	10
#define STORM_GPA	0x10000000ull
#define STORM_PAGES	64
#define PIC_MASTER_IMR	0x21
#define UNKNOWN_HC	0x5a5a
/*
 * kvm-amd's skip step for a re-injected soft event: finds the return
 * address (NRIPS, or the skip by emulation or by svm_guard) before the
 * event is written to EVENTINJ; called for INT3 and INT n alike.
 */
#define SKIP_FUNC	"svm_update_soft_interrupt_rip"

enum op {
	OP_STORM_INT3,
	OP_STORM_INTN,
	OP_INT3,
	OP_VMMCALL,
	OP_PIO,
	OP_NMI,
};

/* Guest side. */
static u64 guest_op, guest_iters, guest_stacks;
static u64 storm_cycles[STORM_PAGES], loop_cycles;
static u64 bp_hits, int80_hits, nmi_hits;

static void bp_handler(struct ex_regs *regs)
{
	bp_hits++;
}

static void int80_handler(struct ex_regs *regs)
{
	int80_hits++;
}

static void nmi_handler(struct ex_regs *regs)
{
	nmi_hits++;
}

/* Raise INT3 or INT 0x80 with RSP at @rsp; returns the TSC cycles it took. */
static noinline u64 storm_one(u64 rsp, bool int3)
{
	u64 t0 = rdtsc();

	if (int3)
		asm volatile("mov %%rsp, %%r15\n\t"
			     "mov %0, %%rsp\n\t"
			     "int3\n\t"
			     "mov %%r15, %%rsp\n\t"
			     :: "r"(rsp) : "r15", "memory");
	else
		asm volatile("mov %%rsp, %%r15\n\t"
			     "mov %0, %%rsp\n\t"
			     "int $0x80\n\t"
			     "mov %%r15, %%rsp\n\t"
			     :: "r"(rsp) : "r15", "memory");
	return rdtsc() - t0;
}

static void guest_code(void)
{
	u64 i, n, t0;

	for (;;) {
		n = READ_ONCE(guest_iters);
		switch (READ_ONCE(guest_op)) {
		case OP_STORM_INT3:
		case OP_STORM_INTN:
			for (i = 0; i < STORM_PAGES; i++)
				storm_cycles[i] = storm_one(guest_stacks + (i + 1) * PAGE_SIZE,
							    guest_op == OP_STORM_INT3);
			break;
		case OP_INT3:
			t0 = rdtsc();
			for (i = 0; i < n; i++)
				asm volatile("int3" ::: "memory");
			loop_cycles = rdtsc() - t0;
			break;
		case OP_VMMCALL:
			t0 = rdtsc();
			for (i = 0; i < n; i++)
				kvm_hypercall(UNKNOWN_HC, 0, 0, 0, 0);
			loop_cycles = rdtsc() - t0;
			break;
		case OP_PIO:
			t0 = rdtsc();
			for (i = 0; i < n; i++)
				asm volatile("inb %w0, %%al" :: "Nd"((u16)PIC_MASTER_IMR) : "rax");
			loop_cycles = rdtsc() - t0;
			break;
		case OP_NMI:
			/* The host sends an NMI before each run: one per sync. */
			t0 = rdtsc();
			for (i = 0; i < n; i++)
				GUEST_SYNC(OP_NMI);
			loop_cycles = rdtsc() - t0;
			break;
		}
		GUEST_SYNC(0);
	}
}

/* Host side. */
static struct kvm_vm *vm;
static struct kvm_vcpu *vcpu;
static const char *tracefs;

enum mode { UNLOADED, GUARD, UPSTREAM, NR_MODES };
static const char *mode_names[NR_MODES] = { "unloaded", "guard", "upstream" };
/* A kernel without the series: no module, no svm_policy_* stats. */
static bool baseline;
/* Storm events and svm_guard's skips for them, per mode. */
static u64 events[NR_MODES], module_skips[NR_MODES];

struct samples {
	u64 *v;
	size_t n, cap;
};

static void add(struct samples *s, u64 v)
{
	if (s->n == s->cap) {
		s->cap = s->cap ? 2 * s->cap : 256;
		s->v = realloc(s->v, s->cap * sizeof(*s->v));
		TEST_ASSERT(s->v, "out of memory");
	}
	s->v[s->n++] = v;
}

static int cmp_u64(const void *a, const void *b)
{
	u64 x = *(const u64 *)a, y = *(const u64 *)b;

	return x < y ? -1 : x > y;
}

static void print_row(const char *row, enum mode m, struct samples *s)
{
	TEST_ASSERT(s->n, "%s %s: no samples", row, mode_names[m]);
	qsort(s->v, s->n, sizeof(*s->v), cmp_u64);
	printf("bench %s %s %zu %lu %lu %lu\n", row, mode_names[m], s->n,
	       s->v[0], s->v[s->n / 2], s->v[s->n - 1]);
}

static void tr_write(const char *file, const char *val)
{
	char path[256];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", tracefs, file);
	fd = open(path, O_WRONLY | O_TRUNC);
	TEST_ASSERT(fd >= 0, "open %s: %s", path, strerror(errno));
	TEST_ASSERT(write(fd, val, strlen(val)) == (ssize_t)strlen(val),
		    "write '%s' to %s: %s", val, path, strerror(errno));
	close(fd);
}

/* Timestamps from the TSC; nothing traced until trace_on(). */
static void trace_setup(void)
{
	tracefs = !access("/sys/kernel/tracing/trace", F_OK) ? "/sys/kernel/tracing" :
		  "/sys/kernel/debug/tracing";
	__TEST_REQUIRE(!access(tracefs, F_OK),
		       "no tracefs: the kernel needs CONFIG_FUNCTION_GRAPH_TRACER");
	tr_write("tracing_on", "0");
	tr_write("current_tracer", "nop");
	tr_write("trace_clock", "x86-tsc");
}

/*
 * Trace the functions in @funcs (NULL-terminated) and nothing else: their
 * callees are not hooked, so only the traced functions pay for the tracer.
 * None of them may call another, or the caller's time would hold the
 * callee's tracing.
 */
static void trace_on(const char * const *funcs)
{
	char path[256];
	int fd;

	tr_write("tracing_on", "0");
	snprintf(path, sizeof(path), "%s/set_ftrace_filter", tracefs);
	fd = open(path, O_WRONLY | O_TRUNC);
	TEST_ASSERT(fd >= 0, "open %s: %s", path, strerror(errno));
	for (; *funcs; funcs++) {
		if (write(fd, *funcs, strlen(*funcs)) == (ssize_t)strlen(*funcs) &&
		    write(fd, "\n", 1) == 1)
			continue;
		/* Without the series the hook's functions do not exist. */
		TEST_ASSERT(baseline && (errno == EINVAL || errno == ENOENT),
			    "trace %s: %s", *funcs, strerror(errno));
	}
	close(fd);
	tr_write("current_tracer", "function_graph");
	tr_write("trace", "");
	tr_write("tracing_on", "1");
}

/*
 * Stop tracing after collecting: switching back to the nop tracer (which
 * empties the buffer) unhooks the functions, so that nothing measured
 * untraced pays for them.
 */
static void trace_off(void)
{
	tr_write("tracing_on", "0");
	tr_write("current_tracer", "nop");
}

/*
 * Durations of @func in the trace, in TSC cycles (function_graph prints them
 * in "us", i.e. the clock's units / 1000); at least one unless @may_miss.
 */
static void trace_collect(const char *func, struct samples *s, bool may_miss)
{
	char path[256], line[512], name[128];
	size_t before = s->n, len;
	unsigned long whole, frac;
	char *us, *at;
	FILE *f;

	/* " func();" or, in a module, " func [kvm_amd]();". */
	len = snprintf(name, sizeof(name), " %s", func);
	snprintf(path, sizeof(path), "%s/trace", tracefs);
	f = fopen(path, "r");
	TEST_ASSERT(f, "open %s: %s", path, strerror(errno));
	while (fgets(line, sizeof(line), f)) {
		at = strstr(line, name);
		us = strstr(line, " us ");
		if (line[0] == '#' || !at || (at[len] != '(' && at[len] != ' ') || !us)
			continue;
		while (us > line && us[-1] != ' ' && us[-1] != '+' && us[-1] != '!' &&
		       us[-1] != '#' && us[-1] != '*' && us[-1] != '@' && us[-1] != '$')
			us--;
		if (sscanf(us, "%lu.%3lu", &whole, &frac) == 2)
			add(s, whole * 1000 + frac);
	}
	fclose(f);
	TEST_ASSERT(may_miss || s->n > before, "no %s in the trace", func);
}

static void run_to_sync(void)
{
	struct ucall uc;

	svm_guard_run_to_sync(vcpu, &uc, false);
}

static void set_op(enum op op, u64 iters)
{
	guest_op = op;
	guest_iters = iters;
	sync_global_to_guest(vm, guest_op);
	sync_global_to_guest(vm, guest_iters);
}

/*
 * @rounds storm rounds: drop every stack page, then one event per page.
 * Every event must be delivered once, and in guard mode each one skipped by
 * the module (svm_policy_soft_int_skip), in the other modes none.
 */
static void storm(enum op op, enum mode m, u64 rounds, struct samples *round_trip)
{
	void *stacks = addr_gpa2hva(vm, STORM_GPA);
	u64 skips = baseline ? 0 : vcpu_get_stat(vcpu, svm_policy_soft_int_skip);
	u64 hits = 0, want = rounds * STORM_PAGES;
	u64 r, i;

	set_op(op, 0);
	bp_hits = 0;
	int80_hits = 0;
	sync_global_to_guest(vm, bp_hits);
	sync_global_to_guest(vm, int80_hits);
	for (r = 0; r < rounds; r++) {
		TEST_ASSERT(!madvise(stacks, STORM_PAGES * PAGE_SIZE, MADV_DONTNEED),
			    "madvise: %s", strerror(errno));
		run_to_sync();
		sync_global_from_guest(vm, storm_cycles);
		for (i = 0; i < STORM_PAGES; i++)
			add(round_trip, storm_cycles[i]);
	}
	tr_write("tracing_on", "0");
	sync_global_from_guest(vm, bp_hits);
	sync_global_from_guest(vm, int80_hits);
	hits = op == OP_STORM_INT3 ? bp_hits : int80_hits;
	TEST_ASSERT(hits == want, "%s: %lu events delivered, want %lu",
		    mode_names[m], hits, want);
	events[m] += want;
	if (baseline)
		return;
	/*
	 * Every event skipped by the module in guard, none elsewhere.  An entry
	 * that KVM cancels after the injection (a host interrupt or request
	 * came in) rewinds RIP and skips again on the next one: more skips than
	 * events is KVM's normal course, fewer is a lost round.
	 */
	skips = vcpu_get_stat(vcpu, svm_policy_soft_int_skip) - skips;
	TEST_ASSERT(m == GUARD ? skips >= want : !skips,
		    "%s: svm_guard skipped %lu times for %lu events", mode_names[m], skips, want);
	module_skips[m] += skips;
}

/* One rep of a loop: cycles per iteration. */
static u64 loop(enum op op, u64 iters)
{
	struct ucall uc;
	u64 i;

	set_op(op, iters);
	nmi_hits = 0;
	sync_global_to_guest(vm, nmi_hits);
	if (op == OP_NMI) {
		for (i = 0; i < iters; i++) {
			vcpu_ioctl(vcpu, KVM_NMI, NULL);
			svm_guard_run_to_sync(vcpu, &uc, false);
			TEST_ASSERT(uc.args[1] == OP_NMI, "NMI round trips: sync %lu", uc.args[1]);
		}
		vcpu_ioctl(vcpu, KVM_NMI, NULL);
	}
	run_to_sync();
	sync_global_from_guest(vm, loop_cycles);
	if (op == OP_NMI) {
		sync_global_from_guest(vm, nmi_hits);
		TEST_ASSERT(nmi_hits == iters + 1, "NMI round trips: %lu NMIs delivered, want %lu",
			    nmi_hits, iters + 1);
	}
	return loop_cycles / iters;
}

static void set_mode(enum mode m, const char *ko)
{
	if (!baseline)
		svm_guard_use_mode(ko, "", "svm_skip", m == UNLOADED ? NULL : mode_names[m]);
}

/*
 * The skip step's parts, none calling another: KVM's instruction emulator
 * (unloaded, upstream), the hook's read of the bytes at CS:RIP and its call
 * into svm_guard's decision (guard, upstream).
 */
#define NR_PARTS 3
static const char * const part_funcs[NR_PARTS + 1] = {
	"kvm_emulate_instruction", "kvm_read_guest_virt", "svm_policy_soft_int", NULL,
};

static const char * const part_rows[NR_PARTS] = {
	"part-emulator", "part-read", "part-policy",
};

static const struct {
	const char *row;
	enum op op;
} loops[] = {
	{ "loop-int3-own-idt", OP_INT3 },
	{ "loop-vmmcall", OP_VMMCALL },
	{ "loop-pio-in", OP_PIO },
	{ "loop-nmi", OP_NMI },
};

static u64 arg(int argc, char *argv[], int i, u64 def)
{
	char *end;
	u64 v;

	if (argc <= i)
		return def;
	v = strtoull(argv[i], &end, 10);
	TEST_ASSERT(*argv[i] && !*end && v, "usage: %s [REPS [ROUNDS [ITERS]]]", argv[0]);
	return v;
}

int main(int argc, char *argv[])
{
	static const char * const skip_func[] = { SKIP_FUNC, NULL };
	static const char * const tracer_func[] = { "svm_get_rflags", NULL };
	struct samples trip[2][NR_MODES] = {}, step[2][NR_MODES] = {};
	struct samples part[NR_PARTS][NR_MODES] = {}, tracer[NR_MODES] = {}, unused = {};
	struct samples per_iter[ARRAY_SIZE(loops)][NR_MODES] = {};
	u64 reps = arg(argc, argv, 1, 5), rounds = arg(argc, argv, 2, 4);
	u64 iters = arg(argc, argv, 3, 2000);
	const char *ko = NULL;
	bool was_loaded = false;
	int nr_modes = NR_MODES;
	unsigned int l, p;
	u64 rep;
	int m, s;

	TEST_REQUIRE(kvm_cpu_has(X86_FEATURE_SVM));
	baseline = getenv("SVM_GUARD_BENCH_BASELINE");
	if (baseline) {
		mode_names[UNLOADED] = "no-series";
		nr_modes = 1;
	} else {
		ko = svm_guard_require_ko();
		was_loaded = svm_guard_loaded();
	}
	/* With NRIPS the CPU hands KVM the return address: no skip to time. */
	__TEST_REQUIRE(!get_kvm_amd_param_integer("nrips"),
		       "kvm_amd uses NRIPS: soft interrupts are re-injected without a skip (load it with nrips=0)");

	vm = vm_create_with_one_vcpu(&vcpu, guest_code);
	vm_install_exception_handler(vm, BP_VECTOR, bp_handler);
	vm_install_exception_handler(vm, 0x80, int80_handler);
	vm_install_exception_handler(vm, NMI_VECTOR, nmi_handler);
	vm_userspace_mem_region_add(vm, VM_MEM_SRC_ANONYMOUS, STORM_GPA, STORM_SLOT,
				    STORM_PAGES, 0);
	virt_map(vm, STORM_GPA, STORM_GPA, STORM_PAGES);
	guest_stacks = STORM_GPA;
	sync_global_to_guest(vm, guest_stacks);
	trace_setup();

	printf("# svm_guard_bench: %lu reps per mode, %lu storm rounds of %d, %lu iterations\n",
	       reps, rounds, STORM_PAGES, iters);
	for (rep = 0; rep < reps; rep++) {
		for (m = 0; m < nr_modes; m++) {
			set_mode(m, ko);
			/* Round trips untraced, then the skip step, its parts, the tracer. */
			for (s = 0; s < 2; s++)
				storm(s ? OP_STORM_INTN : OP_STORM_INT3, m, rounds, &trip[s][m]);
			for (s = 0; s < 2; s++) {
				trace_on(skip_func);
				storm(s ? OP_STORM_INTN : OP_STORM_INT3, m, rounds, &unused);
				trace_collect(SKIP_FUNC, &step[s][m], false);
				trace_off();
			}
			trace_on(part_funcs);
			storm(OP_STORM_INT3, m, rounds, &unused);
			for (p = 0; p < NR_PARTS; p++)
				trace_collect(part_funcs[p], &part[p][m], true);
			trace_off();
			trace_on(tracer_func);
			storm(OP_STORM_INT3, m, rounds, &unused);
			trace_collect(tracer_func[0], &tracer[m], false);
			trace_off();
			for (l = 0; l < ARRAY_SIZE(loops); l++)
				add(&per_iter[l][m], loop(loops[l].op, iters));
		}
	}
	tr_write("set_ftrace_filter", "");

	for (m = 0; m < nr_modes; m++)
		printf("# %s: %lu storm events, each delivered once; %lu skips by svm_guard\n",
		       mode_names[m], events[m], module_skips[m]);
	for (m = 0; m < nr_modes; m++) {
		for (s = 0; s < 2; s++) {
			print_row(s ? "skip-step-intn" : "skip-step-int3", m, &step[s][m]);
			print_row(s ? "reinject-intn" : "reinject-int3", m, &trip[s][m]);
		}
		for (p = 0; p < NR_PARTS; p++)
			if (part[p][m].n)
				print_row(part_rows[p], m, &part[p][m]);
		print_row("tracer", m, &tracer[m]);
		for (l = 0; l < ARRAY_SIZE(loops); l++)
			print_row(loops[l].row, m, &per_iter[l][m]);
	}

	kvm_vm_free(vm);
	if (!baseline)
		svm_guard_restore(ko, was_loaded);
	return 0;
}
