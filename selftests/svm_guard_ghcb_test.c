// SPDX-License-Identifier: GPL-2.0-only
/*
 * svm_guard_ghcb_test
 *
 * A malformed GHCB request from an SEV-ES guest gets an answer, not a kill.
 *
 * The guest builds its own GHCB (the selftest library only speaks the GHCB
 * MSR protocol): a shared page, C-bit clear, whose GPA it writes to the GHCB
 * MSR.  It sends one malformed request per reason KVM gives an SEV-ES guest,
 * the not-registered reason from an SNP guest, and the cases Linux 7.3.4
 * does not answer at all: a string I/O count above INT_MAX, a count times
 * size that overflows, a scratch area outside guest memory (GHCB v1 only:
 * v2 refuses any scratch area outside the GHCB page) and an SNP-only
 * MSR-protocol request from a non-SNP guest.  The guest checks each answer
 * itself: SW_EXITINFO1 = 2 and the reason in SW_EXITINFO2, or, for the MSR
 * protocol, the request still in the GHCB MSR.
 *
 * With the ghcb path of svm_guard in
 *   guard:    one guest sends all its requests and keeps running; each
 *             request grows its reason's vCPU stat and debugfs counter, and
 *             its beyond-upstream one, by exactly one, and nothing else;
 *   upstream: 7.3.4 gives the same answers but kills the guest on the
 *             beyond-upstream requests (KVM_RUN fails with EINVAL or EFAULT,
 *             or KVM_SYSTEM_EVENT_SEV_TERM for the MSR request) or hands
 *             the VMM a port access of 3 bytes (KVM_EXIT_IO): what guard
 *             is for;
 *   legacy:   each request goes to a fresh guest, and the first malformed
 *             one stops it with KVM_SYSTEM_EVENT_SEV_TERM and counts only as
 *             a termination, which shows the test sees the bug.
 *
 * ucall does not work in an SEV-ES guest: its port I/O needs a #VC handler,
 * and the host would need KVM_GET_REGS.  So the guest talks through its
 * GHCB: a sync is an IOIO request (OUT to SYNC_PORT) that KVM hands to
 * userspace as KVM_EXIT_IO, while the end of the guest and a failed guest
 * assertion are GHCB MSR protocol termination requests with reason codes of
 * their own, as in sev_smoke_test.  Details go in a shared report page.
 *
 * The selftest library creates SEV-ES VMs with KVM_SEV_INIT2, which makes
 * them GHCB version 2 unless the test asks for another version
 * (sev_ghcb_version); the row that needs version 1 (the scratch area
 * outside guest memory) runs in a VM created with version 1.  The guest
 * reads the version it got from the MSR protocol's SEV_INFO and skips a
 * row whose version it did not get.
 *
 * Needs SEV-ES hardware (and SEV-SNP for the not-registered request); skips
 * elsewhere.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "test_util.h"
#include "kvm_util.h"
#include "processor.h"
#include "sev.h"
#include "svm_guard_module.h"
#include "svm_guard_trace.h"

/* The GHCB page, as arch/x86/include/asm/svm.h lays it out. */
struct ghcb_save_area {
	u8 reserved_0x0[203];
	u8 cpl;
	u8 reserved_0xcc[116];
	u64 xss;
	u8 reserved_0x148[24];
	u64 dr7;
	u8 reserved_0x168[16];
	u64 rip;
	u8 reserved_0x180[88];
	u64 rsp;
	u8 reserved_0x1e0[24];
	u64 rax;
	u8 reserved_0x200[264];
	u64 rcx;
	u64 rdx;
	u64 rbx;
	u8 reserved_0x320[8];
	u64 rbp;
	u64 rsi;
	u64 rdi;
	u64 r8;
	u64 r9;
	u64 r10;
	u64 r11;
	u64 r12;
	u64 r13;
	u64 r14;
	u64 r15;
	u8 reserved_0x380[16];
	u64 sw_exit_code;
	u64 sw_exit_info_1;
	u64 sw_exit_info_2;
	u64 sw_scratch;
	u8 reserved_0x3b0[56];
	u64 xcr0;
	u8 valid_bitmap[16];
	u64 x87_state_gpa;
} __packed;

#define GHCB_SHARED_BUF_SIZE	2032

struct ghcb {
	struct ghcb_save_area save;
	u8 reserved_save[2048 - sizeof(struct ghcb_save_area)];
	u8 shared_buffer[GHCB_SHARED_BUF_SIZE];
	u8 reserved_0xff0[10];
	u16 protocol_version;
	u32 ghcb_usage;
} __packed;

kvm_static_assert(sizeof(struct ghcb_save_area) == 1032);
kvm_static_assert(offsetof(struct ghcb_save_area, sw_exit_code) == 0x390);
kvm_static_assert(offsetof(struct ghcb, shared_buffer) == 0x800);
kvm_static_assert(sizeof(struct ghcb) == PAGE_SIZE);

/* Set the u64 save-area field at @offset and its bit (@offset / 8) in the valid bitmap. */
static void __ghcb_set(struct ghcb *ghcb, size_t offset, u64 val)
{
	unsigned int bit = offset / 8;

	*(u64 *)((u8 *)&ghcb->save + offset) = val;
	ghcb->save.valid_bitmap[bit / 8] |= BIT(bit % 8);
}

#define ghcb_set(ghcb, field, val)						\
	__ghcb_set(ghcb, offsetof(struct ghcb_save_area, field), val)

/* arch/x86/include/asm/sev-common.h */
#define GHCB_MSR_INFO_MASK		0xfffull
#define GHCB_MSR_SEV_INFO_RESP		0x001
#define GHCB_MSR_SEV_INFO_REQ		0x002
#define GHCB_MSR_PREF_GPA_REQ		0x010
#define GHCB_MSR_REG_GPA_REQ		0x012
#define GHCB_MSR_REG_GPA_RESP		0x013
#define GHCB_MSR_PROTO_MAX(v)		((v) >> 48)

#define GHCB_HV_RESP_MALFORMED_INPUT	2

#define GHCB_ERR_NOT_REGISTERED		1
#define GHCB_ERR_INVALID_USAGE		2
#define GHCB_ERR_INVALID_SCRATCH_AREA	3
#define GHCB_ERR_MISSING_INPUT		4
#define GHCB_ERR_INVALID_INPUT		5
#define GHCB_ERR_INVALID_EVENT		6

/* Termination requests in reason set 0xf, which no guest OS uses. */
#define TERM_DONE	(GHCB_MSR_TERM_REQ | 0xf000 | (1 << 16))
#define TERM_FAIL	(GHCB_MSR_TERM_REQ | 0xf000 | (2 << 16))

/* Not the ucall port: the library would read RDI with KVM_GET_REGS. */
#define SYNC_PORT	0x1010
#define IO_PORT		0x1011

#define IOIO_OUT32(port)	(((u64)(port) << 16) | (4 << SVM_IOIO_SIZE_SHIFT))
/* An OUT whose size field no CPU writes: SZ8 and SZ16 both set. */
#define IOIO_OUT_SIZE3(port)	(((u64)(port) << 16) | (3 << SVM_IOIO_SIZE_SHIFT))
#define IOIO_INS(port, size)	(((u64)(port) << 16) | ((size) << SVM_IOIO_SIZE_SHIFT) | \
				 SVM_IOIO_STR_MASK | SVM_IOIO_TYPE_MASK)

#define MMIO_GPA	0xc0000000ull
/* No memslot this high: a scratch area here is outside guest memory. */
#define FAR_GPA		0x1000000000ull

enum sync { SYNC_HELLO = 1, SYNC_ROW, SYNC_SKIPPED };

/*
 * What svm_guard counts, as vCPU stats svm_policy_ghcb_<name> and as lines
 * of debugfs ghcb/counters (which has neither handler_malformed nor
 * disagree: kvm-amd counts those).  The reasons are in GHCB_ERR_* order.
 */
enum counter {
	C_NONE,
	C_ACCEPT,
	C_TERMINATE,
	C_NOT_REGISTERED,
	C_INVALID_USAGE,
	C_INVALID_SCRATCH_AREA,
	C_MISSING_INPUT,
	C_INVALID_INPUT,
	C_INVALID_EVENT,
	C_STRING_IO_COUNT,
	C_STRING_IO_OVERFLOW,
	C_SCRATCH_OUTSIDE_MEMORY,
	C_MSR_SNP_ONLY,
	C_IOIO_SIZE,
	C_HANDLER_MALFORMED,
	C_DISAGREE,
	NR_COUNTERS,
};

#define REASON_COUNTER(reason)	(C_NOT_REGISTERED + (reason) - GHCB_ERR_NOT_REGISTERED)

static const char * const counter_names[NR_COUNTERS] = {
	[C_ACCEPT] = "accept",
	[C_TERMINATE] = "terminate",
	[C_NOT_REGISTERED] = "not_registered",
	[C_INVALID_USAGE] = "invalid_usage",
	[C_INVALID_SCRATCH_AREA] = "invalid_scratch_area",
	[C_MISSING_INPUT] = "missing_input",
	[C_INVALID_INPUT] = "invalid_input",
	[C_INVALID_EVENT] = "invalid_event",
	[C_STRING_IO_COUNT] = "string_io_count",
	[C_STRING_IO_OVERFLOW] = "string_io_overflow",
	[C_SCRATCH_OUTSIDE_MEMORY] = "scratch_outside_memory",
	[C_MSR_SNP_ONLY] = "msr_snp_only",
	[C_IOIO_SIZE] = "ioio_size",
	[C_HANDLER_MALFORMED] = "handler_malformed",
	[C_DISAGREE] = "disagree",
};

#define COUNTERS_FILE	"/sys/kernel/debug/svm_guard/ghcb/counters"

enum vm_kind { VM_SEV_ES, VM_SEV_ES_V1, VM_SNP, NR_VM_KINDS };

static const char * const vm_names[NR_VM_KINDS] = {
	[VM_SEV_ES] = "SEV-ES", [VM_SEV_ES_V1] = "SEV-ES GHCB v1", [VM_SNP] = "SNP",
};

/* Fields a request marks valid besides SW_EXITCODE and SW_EXITINFO1/2. */
#define REQ_RAX		BIT(0)
#define REQ_RCX		BIT(1)
#define REQ_SCRATCH	BIT(2)

/* A SW_SCRATCH @off bytes into the GHCB page the request is sent in. */
#define SCRATCH_IN_GHCB	BIT_ULL(63)
#define IN_GHCB(off)	(SCRATCH_IN_GHCB | (off))

struct ghcb_req {
	u64 exit_code, info1, info2;
	u64 rax, rcx, scratch;
	u32 fields;
	u32 usage;
};

struct ghcb_row {
	const char *name;
	enum vm_kind vm;
	struct ghcb_req req;
	bool unregistered;	/* sent in a GHCB the SNP guest did not register */
	u64 msr;		/* an MSR-protocol request instead of the GHCB page */
	u64 reason;		/* GHCB_ERR_* the guest expects in SW_EXITINFO2 */
	enum counter beyond;	/* a case 7.3.4 does not answer: its counter */
	int upstream_errno;	/* and 7.3.4's KVM_RUN error for it, if any */
	int upstream_io_size;	/* or the size of the KVM_EXIT_IO 7.3.4 makes */
};

static const struct ghcb_row rows[] = {
	{
		.name = "not_registered: GHCB the SNP guest did not register",
		.vm = VM_SNP,
		.req = { .exit_code = SVM_EXIT_CPUID, .fields = REQ_RAX | REQ_RCX },
		.unregistered = true,
		.reason = GHCB_ERR_NOT_REGISTERED,
	}, {
		.name = "invalid_usage: GHCB usage 1",
		.req = { .exit_code = SVM_EXIT_CPUID, .fields = REQ_RAX | REQ_RCX, .usage = 1 },
		.reason = GHCB_ERR_INVALID_USAGE,
	}, {
		.name = "snp_only_exit_code: page state change from SEV-ES",
		.req = { .exit_code = SVM_VMGEXIT_PSC },
		.reason = GHCB_ERR_INVALID_EVENT,
	}, {
		.name = "missing_input: CPUID without RCX",
		.req = { .exit_code = SVM_EXIT_CPUID, .fields = REQ_RAX },
		.reason = GHCB_ERR_MISSING_INPUT,
	}, {
		.name = "invalid_scratch_area: MMIO read, scratch 0",
		.req = { .exit_code = SVM_VMGEXIT_MMIO_READ, .info1 = MMIO_GPA, .info2 = 8,
			 .fields = REQ_SCRATCH, .scratch = 0 },
		.reason = GHCB_ERR_INVALID_SCRATCH_AREA,
	}, {
		.name = "invalid_scratch_area: MMIO read, scratch past the shared buffer's end",
		.req = { .exit_code = SVM_VMGEXIT_MMIO_READ, .info1 = MMIO_GPA, .info2 = 8,
			 .fields = REQ_SCRATCH, .scratch = IN_GHCB(0xfec) },
		.reason = GHCB_ERR_INVALID_SCRATCH_AREA,
	}, {
		.name = "invalid_input: AP jump table sub-code 2",
		.req = { .exit_code = SVM_VMGEXIT_AP_JUMP_TABLE, .info1 = 2 },
		.reason = GHCB_ERR_INVALID_INPUT,
	}, {
		.name = "invalid_input: AP creation, request 7 for APIC ID 0 (SNP)",
		.vm = VM_SNP,
		.req = { .exit_code = SVM_VMGEXIT_AP_CREATION, .info1 = 7, .fields = REQ_RAX },
		.reason = GHCB_ERR_INVALID_INPUT,
	}, {
		.name = "invalid_event: exit code 0x8000abcd",
		.req = { .exit_code = 0x8000abcd },
		.reason = GHCB_ERR_INVALID_EVENT,
	}, {
		.name = "string_io_count: INSB, count 0x80000000",
		.req = { .exit_code = SVM_EXIT_IOIO, .info1 = IOIO_INS(IO_PORT, 1),
			 .info2 = 0x80000000, .fields = REQ_SCRATCH, .scratch = IN_GHCB(0x800) },
		.reason = GHCB_ERR_INVALID_INPUT,
		.beyond = C_STRING_IO_COUNT,
		.upstream_errno = EINVAL,
	}, {
		.name = "string_io_overflow: INSD, count 0x40000000",
		.req = { .exit_code = SVM_EXIT_IOIO, .info1 = IOIO_INS(IO_PORT, 4),
			 .info2 = 0x40000000, .fields = REQ_SCRATCH, .scratch = IN_GHCB(0x800) },
		.reason = GHCB_ERR_INVALID_INPUT,
		.beyond = C_STRING_IO_OVERFLOW,
		.upstream_errno = EINVAL,
	}, {
		.name = "scratch_outside_memory: MMIO read, scratch beyond guest memory (GHCB v1)",
		.vm = VM_SEV_ES_V1,
		.req = { .exit_code = SVM_VMGEXIT_MMIO_READ, .info1 = MMIO_GPA, .info2 = 8,
			 .fields = REQ_SCRATCH, .scratch = FAR_GPA },
		.reason = GHCB_ERR_INVALID_SCRATCH_AREA,
		.beyond = C_SCRATCH_OUTSIDE_MEMORY,
		.upstream_errno = EFAULT,
	}, {
		.name = "msr_snp_only: MSR protocol PREF_GPA from SEV-ES",
		.msr = GHCB_MSR_PREF_GPA_REQ,
		.beyond = C_MSR_SNP_ONLY,
	}, {
		.name = "ioio_size: OUT with operand size 3",
		.req = { .exit_code = SVM_EXIT_IOIO, .info1 = IOIO_OUT_SIZE3(IO_PORT),
			 .fields = REQ_RAX },
		.reason = GHCB_ERR_INVALID_INPUT,
		.beyond = C_IOIO_SIZE,
		.upstream_io_size = 3,
	},
};

kvm_static_assert(ARRAY_SIZE(rows) <= 64);

/* What the guest tells the host beyond a sync code. */
struct ghcb_report {
	u64 version;		/* the VM's GHCB protocol version (SEV_INFO) */
	u64 row;		/* the row the guest is at */
	u64 line, a, b;		/* a failed guest assertion */
};

/* Shared pages: the guest's GHCB, a spare one and the report. */
struct ghcb_shared {
	struct ghcb ghcb;	/* registered, for an SNP guest */
	struct ghcb spare;	/* never registered */
	struct ghcb_report report;
};

static struct ghcb_report *guest_report;

/* sev.h's vmgexit() without a memory clobber would let reads of the GHCB move. */
static inline void ghcb_vmgexit(void)
{
	asm volatile("rep; vmmcall" ::: "memory");
}

static void guest_fail(u64 line, u64 a, u64 b)
{
	WRITE_ONCE(guest_report->line, line);
	WRITE_ONCE(guest_report->a, a);
	WRITE_ONCE(guest_report->b, b);
	for (;;) {
		wrmsr(MSR_AMD64_SEV_ES_GHCB, TERM_FAIL);
		ghcb_vmgexit();
	}
}

/* GUEST_ASSERT_EQ() for a guest without ucall. */
#define GHCB_GUEST_ASSERT_EQ(a, b)				\
do {								\
	u64 __a = (a), __b = (b);				\
								\
	if (__a != __b)						\
		guest_fail(__LINE__, __a, __b);			\
} while (0)

static u64 guest_msr_protocol(u64 request)
{
	wrmsr(MSR_AMD64_SEV_ES_GHCB, request);
	ghcb_vmgexit();
	return rdmsr(MSR_AMD64_SEV_ES_GHCB);
}

/* Send @req in the GHCB @ghcb at @gpa. */
static void guest_ghcb_call(struct ghcb *ghcb, u64 gpa, u16 version,
			    const struct ghcb_req *req)
{
	u64 scratch = req->scratch;

	if (scratch & SCRATCH_IN_GHCB)
		scratch = gpa + (scratch & ~SCRATCH_IN_GHCB);

	memset(ghcb, 0, sizeof(*ghcb));
	ghcb_set(ghcb, sw_exit_code, req->exit_code);
	ghcb_set(ghcb, sw_exit_info_1, req->info1);
	ghcb_set(ghcb, sw_exit_info_2, req->info2);
	if (req->fields & REQ_RAX)
		ghcb_set(ghcb, rax, req->rax);
	if (req->fields & REQ_RCX)
		ghcb_set(ghcb, rcx, req->rcx);
	if (req->fields & REQ_SCRATCH)
		ghcb_set(ghcb, sw_scratch, scratch);
	ghcb->protocol_version = version;
	ghcb->ghcb_usage = req->usage;

	wrmsr(MSR_AMD64_SEV_ES_GHCB, gpa);
	ghcb_vmgexit();
}

static void guest_sync(struct ghcb_shared *sh, u64 gpa, u16 version, u32 code)
{
	struct ghcb_req out = {
		.exit_code = SVM_EXIT_IOIO,
		.info1 = IOIO_OUT32(SYNC_PORT),
		.rax = code,
		.fields = REQ_RAX,
	};

	guest_ghcb_call(&sh->ghcb, gpa, version, &out);
	GHCB_GUEST_ASSERT_EQ(sh->ghcb.save.sw_exit_info_1, 0);
}

/* Run the rows in @mask; @sh is the shared pages at GPA @gpa. */
static void guest_code(u64 mask, struct ghcb_shared *sh, u64 gpa)
{
	u64 spare_gpa = gpa + offsetof(struct ghcb_shared, spare);
	u64 sev = rdmsr(MSR_AMD64_SEV);
	u64 info, i;
	u16 version;

	guest_report = &sh->report;
	GHCB_GUEST_ASSERT_EQ(sev & MSR_AMD64_SEV_ES_ENABLED, MSR_AMD64_SEV_ES_ENABLED);
	if (sev & MSR_AMD64_SEV_SNP_ENABLED)
		GHCB_GUEST_ASSERT_EQ(guest_msr_protocol(GHCB_MSR_REG_GPA_REQ | gpa),
				     GHCB_MSR_REG_GPA_RESP | gpa);

	info = guest_msr_protocol(GHCB_MSR_SEV_INFO_REQ);
	GHCB_GUEST_ASSERT_EQ(info & GHCB_MSR_INFO_MASK, GHCB_MSR_SEV_INFO_RESP);
	version = GHCB_MSR_PROTO_MAX(info);
	WRITE_ONCE(sh->report.version, version);
	guest_sync(sh, gpa, version, SYNC_HELLO);

	for (i = 0; i < ARRAY_SIZE(rows); i++) {
		const struct ghcb_row *row = &rows[i];
		struct ghcb *ghcb = row->unregistered ? &sh->spare : &sh->ghcb;

		if (!(mask & BIT_ULL(i)))
			continue;
		WRITE_ONCE(sh->report.row, i);
		if (row->vm == VM_SEV_ES_V1 && version != 1) {
			guest_sync(sh, gpa, version, SYNC_SKIPPED);
			continue;
		}

		if (row->msr) {
			/* Unanswered: the GHCB MSR still holds the request. */
			GHCB_GUEST_ASSERT_EQ(guest_msr_protocol(row->msr), row->msr);
		} else {
			guest_ghcb_call(ghcb, row->unregistered ? spare_gpa : gpa,
					version, &row->req);
			GHCB_GUEST_ASSERT_EQ(ghcb->save.sw_exit_info_1,
					     GHCB_HV_RESP_MALFORMED_INPUT);
			GHCB_GUEST_ASSERT_EQ(ghcb->save.sw_exit_info_2, row->reason);
		}
		guest_sync(sh, gpa, version, SYNC_ROW);
	}

	for (;;) {
		wrmsr(MSR_AMD64_SEV_ES_GHCB, TERM_DONE);
		ghcb_vmgexit();
	}
}

enum mode { MODE_GUARD, MODE_UPSTREAM, MODE_LEGACY, NR_MODES };

static const char * const mode_names[NR_MODES] = { "guard", "upstream", "legacy" };

struct ghcb_vm {
	struct kvm_vm *vm;
	struct kvm_vcpu *vcpu;
	struct ghcb_shared *sh;		/* the host's view of the shared pages */
	u64 gpa;			/* their GPA */
};

static void ghcb_vm_create(struct ghcb_vm *v, enum vm_kind kind, u64 mask)
{
	gva_t gva;

	sev_ghcb_version = kind == VM_SEV_ES_V1 ? 1 : 0;
	v->vm = vm_sev_create_with_one_vcpu(kind == VM_SNP ? KVM_X86_SNP_VM : KVM_X86_SEV_ES_VM,
					    guest_code, &v->vcpu);
	sev_ghcb_version = 0;

	gva = vm_alloc_shared(v->vm, sizeof(struct ghcb_shared), KVM_UTIL_MIN_VADDR,
			      MEM_REGION_TEST_DATA);
	v->sh = addr_gva2hva(v->vm, gva);
	v->gpa = addr_gva2gpa(v->vm, gva);
	vcpu_args_set(v->vcpu, 3, mask, gva, v->gpa);
	vm_sev_launch(v->vm, kind == VM_SNP ? snp_default_policy() : SEV_POLICY_ES, NULL);
}

enum outcome_kind { OUT_SYNC, OUT_DONE, OUT_GUEST_FAIL, OUT_SEV_TERM, OUT_ERRNO, OUT_OTHER };

struct outcome {
	enum outcome_kind kind;
	u64 val;	/* sync code, SEV_TERM data, errno or exit reason */
};

static struct outcome ghcb_vm_run(struct ghcb_vm *v)
{
	struct kvm_run *run = v->vcpu->run;
	struct outcome o = { .kind = OUT_OTHER };

	if (_vcpu_run(v->vcpu))
		return (struct outcome){ OUT_ERRNO, errno };

	o.val = run->exit_reason;
	switch (run->exit_reason) {
	case KVM_EXIT_IO:
		if (run->io.port == SYNC_PORT && run->io.direction == KVM_EXIT_IO_OUT &&
		    run->io.size == 4 && run->io.count == 1) {
			o.kind = OUT_SYNC;
			o.val = *(u32 *)((u8 *)run + run->io.data_offset);
		}
		break;
	case KVM_EXIT_SYSTEM_EVENT:
		if (run->system_event.type != KVM_SYSTEM_EVENT_SEV_TERM ||
		    !run->system_event.ndata)
			break;
		o.val = run->system_event.data[0];
		o.kind = o.val == TERM_DONE ? OUT_DONE :
			 o.val == TERM_FAIL ? OUT_GUEST_FAIL : OUT_SEV_TERM;
		break;
	}
	return o;
}

static void describe(const struct ghcb_vm *v, const struct outcome *o, char *buf, size_t len)
{
	const struct ghcb_report *r = &v->sh->report;

	switch (o->kind) {
	case OUT_SYNC:
		snprintf(buf, len, "sync %lu at row %lu", o->val, READ_ONCE(r->row));
		break;
	case OUT_DONE:
		snprintf(buf, len, "the guest finished");
		break;
	case OUT_GUEST_FAIL:
		snprintf(buf, len, "guest assertion at line %lu: %#lx != %#lx",
			 READ_ONCE(r->line), READ_ONCE(r->a), READ_ONCE(r->b));
		break;
	case OUT_SEV_TERM:
		snprintf(buf, len, "SEV_TERM, GHCB MSR %#lx", o->val);
		break;
	case OUT_ERRNO:
		snprintf(buf, len, "KVM_RUN failed: %s", strerror(o->val));
		break;
	case OUT_OTHER:
		snprintf(buf, len, "exit %s", exit_reason_str(o->val));
		break;
	}
}

/* Did running row @i of @v in mode @m end as it must?  Says what it saw in @why. */
static bool check_outcome(enum mode m, int i, const struct ghcb_vm *v,
			  const struct outcome *o, char *why, size_t len)
{
	const struct ghcb_row *row = &rows[i];
	u64 ghcb_msr = row->msr ?: v->gpa + (row->unregistered ?
					     offsetof(struct ghcb_shared, spare) : 0);
	char want[96], got[128];
	bool ok;

	if (m == MODE_LEGACY) {
		ok = o->kind == OUT_SEV_TERM && o->val == ghcb_msr;
		snprintf(want, sizeof(want), "SEV_TERM, GHCB MSR %#lx", ghcb_msr);
	} else if (m == MODE_UPSTREAM && row->upstream_errno) {
		ok = o->kind == OUT_ERRNO && o->val == row->upstream_errno;
		snprintf(want, sizeof(want), "KVM_RUN failed: %s", strerror(row->upstream_errno));
	} else if (m == MODE_UPSTREAM && row->upstream_io_size) {
		ok = o->kind == OUT_OTHER && o->val == KVM_EXIT_IO &&
		     v->vcpu->run->io.port == IO_PORT &&
		     v->vcpu->run->io.size == row->upstream_io_size;
		snprintf(want, sizeof(want), "KVM_EXIT_IO of %d bytes to port %#x",
			 row->upstream_io_size, IO_PORT);
	} else if (m == MODE_UPSTREAM && row->beyond) {
		ok = o->kind == OUT_SEV_TERM && o->val == row->msr;
		snprintf(want, sizeof(want), "SEV_TERM, GHCB MSR %#lx", row->msr);
	} else {
		ok = o->kind == OUT_SYNC && o->val == SYNC_ROW &&
		     READ_ONCE(v->sh->report.row) == i;
		if (row->msr)
			snprintf(want, sizeof(want), "request left unanswered, guest running");
		else
			snprintf(want, sizeof(want), "answered %d/%lu, guest running",
				 GHCB_HV_RESP_MALFORMED_INPUT, row->reason);
	}

	if (ok) {
		snprintf(why, len, "%s%s", want,
			 m == MODE_UPSTREAM && row->beyond ? " (the guest is lost)" : "");
		return true;
	}
	describe(v, o, got, sizeof(got));
	snprintf(why, len, "want %s, got %s", want, got);
	return false;
}

struct counters {
	u64 stat[NR_COUNTERS];		/* vCPU stats svm_policy_ghcb_<name> */
	u64 dbg[NR_COUNTERS];		/* debugfs ghcb/counters */
	u64 trace[NR_COUNTERS];		/* kvm_svm_policy_ghcb events so far */
};

#define TRACE_EVENT_NAME	"kvm_svm_policy_ghcb"

/* Why the events are not checked, if they are not. */
static const char *trace_off;
static u64 trace_total[NR_COUNTERS];

/*
 * Count the kvm_svm_policy_ghcb events since the last call into
 * trace_total, by the stat each one must move: accept, terminate, and for
 * a malformed request its reason (GHCB page only) and its beyond-upstream
 * case (1-5, in the order of the counters from string_io_count on).
 */
static void trace_collect(void)
{
	static char buf[1 << 20];
	char word[32];
	int i;

	if (trace_off)
		return;
	svm_guard_trace_take(TRACE_EVENT_NAME, buf, sizeof(buf));
	trace_total[C_ACCEPT] += svm_guard_trace_lines(buf, "verdict accept", NULL);
	trace_total[C_TERMINATE] += svm_guard_trace_lines(buf, "verdict terminate", NULL);
	for (i = GHCB_ERR_NOT_REGISTERED; i <= GHCB_ERR_INVALID_EVENT; i++) {
		snprintf(word, sizeof(word), "reason %d", i);
		trace_total[REASON_COUNTER(i)] +=
			svm_guard_trace_lines(buf, "ghcb", "verdict malformed", word, NULL);
	}
	for (i = C_STRING_IO_COUNT; i <= C_IOIO_SIZE; i++) {
		snprintf(word, sizeof(word), "beyond %d", i - C_STRING_IO_COUNT + 1);
		trace_total[i] += svm_guard_trace_lines(buf, "verdict malformed", word, NULL);
	}
}

static void read_counters(const struct ghcb_vm *v, struct counters *c)
{
	char name[64], val[32];
	u64 found = 0;
	FILE *f;
	int i;

	for (i = C_ACCEPT; i < NR_COUNTERS; i++) {
		snprintf(name, sizeof(name), "svm_policy_ghcb_%s", counter_names[i]);
		kvm_get_stat(&v->vcpu->stats, name, &c->stat[i], 1);
	}
	trace_collect();
	memcpy(c->trace, trace_total, sizeof(c->trace));

	f = fopen(COUNTERS_FILE, "r");
	TEST_ASSERT(f, "open %s: %s", COUNTERS_FILE, strerror(errno));
	while (fscanf(f, "%63s %31s", name, val) == 2) {
		for (i = C_ACCEPT; i < C_HANDLER_MALFORMED; i++) {
			if (strcmp(name, counter_names[i]))
				continue;
			c->dbg[i] = strtoull(val, NULL, 0);
			found |= BIT_ULL(i);
		}
	}
	fclose(f);
	for (i = C_ACCEPT; i < C_HANDLER_MALFORMED; i++)
		TEST_ASSERT(found & BIT_ULL(i), "%s has no %s", COUNTERS_FILE, counter_names[i]);
}

#define ANY	-1

/*
 * How much counter @c must grow when row @row runs in mode @m, or ANY.  In
 * guard mode a request counts once as its reason (an MSR-protocol request
 * gets no reason code, so none) and once more as its beyond-upstream case,
 * if it is one; in legacy mode it counts only as a termination.  Not
 * checked: accept (the guest's syncs are accepted requests), and everything
 * in upstream mode, where kvm-amd decides on its own.
 */
static int want_delta(enum mode m, const struct ghcb_row *row, enum counter c)
{
	if (c == C_ACCEPT || m == MODE_UPSTREAM)
		return ANY;
	if (m == MODE_LEGACY)
		return c == C_TERMINATE;
	if (c == C_TERMINATE || c == C_HANDLER_MALFORMED || c == C_DISAGREE)
		return 0;
	if (c >= C_STRING_IO_COUNT)
		return c == row->beyond;
	return !row->msr && c == REASON_COUNTER(row->reason);
}

static void __printf(3, 4) append(char *buf, size_t len, const char *fmt, ...)
{
	size_t n = strnlen(buf, len);
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf + n, len - n, fmt, ap);
	va_end(ap);
}

/* Did the counters grow as they must?  Appends what it saw to @why. */
static bool check_counters(enum mode m, const struct ghcb_row *row,
			   const struct counters *before, const struct counters *after,
			   char *why, size_t len)
{
	bool ok = true, checked = false;
	int c, want;
	u64 d;

	for (c = C_ACCEPT; c < NR_COUNTERS; c++) {
		want = want_delta(m, row, c);
		if (want == ANY)
			continue;
		checked = true;
		d = after->stat[c] - before->stat[c];
		if (d != want) {
			append(why, len, "; stat svm_policy_ghcb_%s +%lu, want +%d",
			       counter_names[c], d, want);
			ok = false;
		}
		d = after->dbg[c] - before->dbg[c];
		if (c < C_HANDLER_MALFORMED && d != want) {
			append(why, len, "; debugfs %s +%lu, want +%d", counter_names[c], d, want);
			ok = false;
		}
	}
	/* In every mode, each counted verdict has its event, and no more. */
	for (c = C_ACCEPT; !trace_off && c < C_HANDLER_MALFORMED; c++) {
		u64 t = after->trace[c] - before->trace[c];

		d = after->stat[c] - before->stat[c];
		if (t != d) {
			append(why, len, "; %lu kvm_svm_policy_ghcb events for stat %s +%lu",
			       t, counter_names[c], d);
			ok = false;
		}
	}
	if (ok && checked)
		append(why, len, "; stats and counters as expected");
	return ok;
}

/* Run the rows in @mask, in this order, in a fresh VM of kind @kind. */
static void run_rows(enum mode m, enum vm_kind kind, u64 mask)
{
	struct counters before, after;
	char why[512], got[128];
	struct outcome o;
	struct ghcb_vm v;
	bool alive = true;
	int i;

	ghcb_vm_create(&v, kind, mask);
	o = ghcb_vm_run(&v);
	describe(&v, &o, got, sizeof(got));
	TEST_ASSERT(o.kind == OUT_SYNC && o.val == SYNC_HELLO,
		    "%s, %s VM: the guest did not start: %s", mode_names[m], vm_names[kind], got);
	ksft_print_msg("%s: %s VM, GHCB v%lu\n", mode_names[m], vm_names[kind],
		       READ_ONCE(v.sh->report.version));

	for (i = 0; i < ARRAY_SIZE(rows); i++) {
		if (!(mask & BIT_ULL(i)))
			continue;
		if (!alive) {
			ksft_test_result_fail("%s: %s: not run, the guest stopped earlier\n",
					      mode_names[m], rows[i].name);
			continue;
		}

		read_counters(&v, &before);
		o = ghcb_vm_run(&v);
		if (o.kind == OUT_SYNC && o.val == SYNC_SKIPPED) {
			ksft_test_result_skip("%s: %s: the VM speaks GHCB v%lu\n", mode_names[m],
					      rows[i].name, READ_ONCE(v.sh->report.version));
			continue;
		}
		read_counters(&v, &after);

		if (check_outcome(m, i, &v, &o, why, sizeof(why)))
			ksft_test_result(check_counters(m, &rows[i], &before, &after,
							why, sizeof(why)),
					 "%s: %s: %s\n", mode_names[m], rows[i].name, why);
		else
			ksft_test_result_fail("%s: %s: %s\n", mode_names[m], rows[i].name, why);
		alive = o.kind == OUT_SYNC;
	}

	if (alive) {
		o = ghcb_vm_run(&v);
		describe(&v, &o, got, sizeof(got));
		TEST_ASSERT(o.kind == OUT_DONE, "%s, %s VM: want the guest to finish, got %s",
			    mode_names[m], vm_names[kind], got);
	}
	kvm_vm_free(v.vm);
}

/*
 * Rows a guest survives run in one VM per kind; each row that stops its
 * guest (in upstream the beyond-upstream ones, in legacy all) in a VM of
 * its own.
 */
static void run_mode(enum mode m, bool have_snp)
{
	u64 batch, alone;
	int kind, i;

	for (kind = 0; kind < NR_VM_KINDS; kind++) {
		batch = 0;
		alone = 0;
		for (i = 0; i < ARRAY_SIZE(rows); i++) {
			if (rows[i].vm != kind)
				continue;
			if (kind == VM_SNP && !have_snp)
				ksft_test_result_skip("%s: %s: KVM offers no SNP VM type\n",
						      mode_names[m], rows[i].name);
			else if (m == MODE_GUARD || (m == MODE_UPSTREAM && !rows[i].beyond))
				batch |= BIT_ULL(i);
			else
				alone |= BIT_ULL(i);
		}

		if (batch)
			run_rows(m, kind, batch);
		for (i = 0; i < ARRAY_SIZE(rows); i++) {
			if (alone & BIT_ULL(i))
				run_rows(m, kind, BIT_ULL(i));
		}
	}
}

static void load(const char *ko, const char *params)
{
	int r;

	if (svm_guard_loaded()) {
		r = svm_guard_unload();
		TEST_ASSERT(!r, "rmmod svm_guard: %s", strerror(-r));
	}
	r = svm_guard_load(ko, params);
	TEST_ASSERT(!r, "insmod %s %s: %s", ko, params, strerror(-r));
}

int main(int argc, char *argv[])
{
	bool was_loaded, have_snp;
	const char *ko;
	int m, r;

	TEST_REQUIRE(kvm_cpu_has(X86_FEATURE_SEV_ES));
	TEST_REQUIRE(kvm_check_cap(KVM_CAP_VM_TYPES) & BIT(KVM_X86_SEV_ES_VM));
	ko = svm_guard_require_ko();
	was_loaded = svm_guard_loaded();
	have_snp = kvm_cpu_has(X86_FEATURE_SEV_SNP) &&
		   (kvm_check_cap(KVM_CAP_VM_TYPES) & BIT(KVM_X86_SNP_VM));

	ksft_print_header();
	ksft_set_plan(NR_MODES * ARRAY_SIZE(rows) + 1);
	trace_off = svm_guard_trace_start(TRACE_EVENT_NAME);

	for (m = 0; m < NR_MODES; m++) {
		if (m == MODE_GUARD)
			load(ko, "");
		else if (m == MODE_LEGACY)
			load(ko, "allow_legacy=1");
		r = svm_guard_set_mode("ghcb", mode_names[m]);
		TEST_ASSERT(!r, "ghcb mode %s: %s", mode_names[m], strerror(-r));
		run_mode(m, have_snp);
	}

	if (!trace_off)
		ksft_print_msg("ghcb events: accept %lu, terminate %lu, with a reason %lu\n",
			       trace_total[C_ACCEPT], trace_total[C_TERMINATE],
			       trace_total[C_NOT_REGISTERED] + trace_total[C_INVALID_USAGE] +
			       trace_total[C_INVALID_SCRATCH_AREA] + trace_total[C_MISSING_INPUT] +
			       trace_total[C_INVALID_INPUT] + trace_total[C_INVALID_EVENT]);
	svm_guard_trace_finish(TRACE_EVENT_NAME, trace_off);

	/* Without allow_legacy. */
	svm_guard_restore(ko, was_loaded);
	ksft_finished();
}
