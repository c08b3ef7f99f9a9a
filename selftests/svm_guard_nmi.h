/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Host-side helpers the svm_guard NMI selftests share: the modes they step
 * through (no module, guard, upstream, legacy), snapshots of kvm-amd's NMI
 * vCPU stats and of the module's nmi counters, the stat relations every mode
 * must keep without vNMI, and checks of the NMI state KVM_GET_VCPU_EVENTS
 * reports.  Every delta also checks kvm-amd's kvm_svm_policy_nmi events
 * against its svm_policy_nmi_* stats, where tracefs has them.
 */
#ifndef SELFTEST_SVM_GUARD_NMI_H
#define SELFTEST_SVM_GUARD_NMI_H

#include <stdio.h>
#include <string.h>

#include "test_util.h"
#include "kvm_util.h"
#include "processor.h"
#include "svm_guard_module.h"
#include "svm_guard_trace.h"

enum nmi_mode {
	NMI_MODE_NONE,
	NMI_MODE_GUARD,
	NMI_MODE_UPSTREAM,
	NMI_MODE_LEGACY,
	NR_NMI_MODES,
};

static const char * const nmi_mode_names[NR_NMI_MODES] = {
	"no module", "guard", "upstream", "legacy",
};

/* kvm-amd's vCPU stats the NMI path moves. */
enum nmi_stat {
	NMI_WINDOW_EXITS,
	NMI_INJECTIONS,
	NMI_INJECT_ONLY,
	NMI_INTERCEPT_IRET,
	NMI_MASK_HARDWARE,
	NMI_MASK_SOFTWARE,
	NR_NMI_STATS,
};

static const char * const nmi_stat_names[NR_NMI_STATS] = {
	"nmi_window_exits", "nmi_injections",
	"svm_policy_nmi_inject_hardware", "svm_policy_nmi_inject_software",
	"svm_policy_nmi_mask_hardware", "svm_policy_nmi_mask_software",
};

/* The module's counters in /sys/kernel/debug/svm_guard/nmi/counters. */
enum nmi_counter {
	NMI_MOD_UPSTREAM,
	NMI_MOD_INJECT_ONLY,
	NMI_MOD_INTERCEPT_IRET,
	NMI_MOD_MASK_HARDWARE,
	NMI_MOD_MASK_SOFTWARE,
	NR_NMI_COUNTERS,
};

static const char * const nmi_counter_names[NR_NMI_COUNTERS] = {
	"upstream", "inject_hardware", "inject_software", "mask_hardware", "mask_software",
};

/* The mode being tested, for failure messages; "set-up" before the first. */
static const char *nmi_mode_now = "set-up";

struct nmi_snapshot {
	u64 stat[NR_NMI_STATS];
	u64 mod[NR_NMI_COUNTERS];
	/* kvm_svm_policy_nmi events so far, per stat they must match. */
	u64 trace[NR_NMI_STATS];
};

#define NMI_TRACE_EVENT	"kvm_svm_policy_nmi"

/* Why the events are not checked; NULL once tracing has started. */
static const char *nmi_trace_off = "not started";
static u64 nmi_trace_total[NR_NMI_STATS];

/*
 * Count @vcpu's kvm_svm_policy_nmi events since the last call into
 * nmi_trace_total: per site, a verdict kvm-amd applied (what the event
 * reports as tracking) is what its stat counts.
 */
static inline void nmi_trace_collect(struct kvm_vcpu *vcpu)
{
	static const char * const words[NR_NMI_STATS][3] = {
		[NMI_INJECT_ONLY] = { "site inject", "verdict hardware", "tracks hardware" },
		[NMI_INTERCEPT_IRET] = { "site inject", "verdict software", "tracks software" },
		[NMI_MASK_HARDWARE] = { "site set_mask", "verdict hardware", "tracks hardware" },
		[NMI_MASK_SOFTWARE] = { "site set_mask", "verdict software", "tracks software" },
	};
	static bool started;
	static char buf[1 << 20];
	char id[32];
	int i;

	if (!started) {
		started = true;
		nmi_trace_off = svm_guard_trace_start(NMI_TRACE_EVENT);
		if (nmi_trace_off)
			ksft_print_msg("kvm_svm_policy_nmi events not checked: %s\n",
				       nmi_trace_off);
		return;
	}
	if (nmi_trace_off)
		return;
	svm_guard_trace_take(NMI_TRACE_EVENT, buf, sizeof(buf));
	snprintf(id, sizeof(id), "vcpu %u", vcpu->id);
	for (i = NMI_INJECT_ONLY; i < NR_NMI_STATS; i++)
		nmi_trace_total[i] += svm_guard_trace_lines(buf, id, words[i][0], words[i][1],
							    words[i][2], NULL);
}

/* Does the vCPU's binary stats fd have a stat called @name? */
static inline bool svm_guard_vcpu_has_stat(struct kvm_vcpu *vcpu, const char *name)
{
	struct kvm_binary_stats *stats = &vcpu->stats;
	struct kvm_stats_desc *desc;
	int i;

	if (!stats->desc) {
		read_stats_header(stats->fd, &stats->header);
		stats->desc = read_stats_descriptors(stats->fd, &stats->header);
	}
	for (i = 0; i < stats->header.num_desc; i++) {
		desc = get_stats_descriptor(stats->desc, i, &stats->header);
		if (!strcmp(desc->name, name))
			return true;
	}
	return false;
}

/* kvm-amd has the SET_MASK site's stats (svm_set_nmi_mask() is hooked). */
static inline bool nmi_has_mask_stats(struct kvm_vcpu *vcpu)
{
	return svm_guard_vcpu_has_stat(vcpu, nmi_stat_names[NMI_MASK_HARDWARE]) &&
	       svm_guard_vcpu_has_stat(vcpu, nmi_stat_names[NMI_MASK_SOFTWARE]);
}

/* Fail, with the reason, on a kernel whose series lacks the SET_MASK hook. */
static inline void nmi_require_mask_stats(struct kvm_vcpu *vcpu)
{
	TEST_ASSERT(nmi_has_mask_stats(vcpu),
		    "kvm-amd has no %s / %s vCPU stats: this kernel's hook series does not ask the policy at svm_set_nmi_mask() (the SET_MASK site)",
		    nmi_stat_names[NMI_MASK_HARDWARE], nmi_stat_names[NMI_MASK_SOFTWARE]);
}

/*
 * Read the stats and, if svm_guard is loaded, its nmi counters.  Stats the
 * kernel does not have (the SET_MASK ones on an older series) read as 0.
 */
static inline void nmi_snapshot(struct kvm_vcpu *vcpu, struct nmi_snapshot *s)
{
	unsigned long long value;
	char name[64];
	FILE *f;
	int i;

	memset(s, 0, sizeof(*s));
	nmi_trace_collect(vcpu);
	memcpy(s->trace, nmi_trace_total, sizeof(s->trace));
	for (i = 0; i < NR_NMI_STATS; i++) {
		if (i >= NMI_MASK_HARDWARE && !nmi_has_mask_stats(vcpu))
			continue;
		kvm_get_stat(&vcpu->stats, nmi_stat_names[i], &s->stat[i], 1);
	}

	if (!svm_guard_loaded())
		return;
	f = fopen("/sys/kernel/debug/svm_guard/nmi/counters", "r");
	TEST_ASSERT(f, "open svm_guard nmi counters: %s", strerror(errno));
	while (fscanf(f, "%63s %llu", name, &value) == 2) {
		for (i = 0; i < NR_NMI_COUNTERS; i++) {
			if (!strcmp(name, nmi_counter_names[i]))
				s->mod[i] = value;
		}
	}
	fclose(f);
}

/* @d = @after - @before, field by field. */
static inline void nmi_delta(struct nmi_snapshot *d, const struct nmi_snapshot *after,
			     const struct nmi_snapshot *before)
{
	int i;

	for (i = 0; i < NR_NMI_STATS; i++) {
		d->stat[i] = after->stat[i] - before->stat[i];
		d->trace[i] = after->trace[i] - before->trace[i];
	}
	for (i = 0; i < NR_NMI_COUNTERS; i++)
		d->mod[i] = after->mod[i] - before->mod[i];

	for (i = NMI_INJECT_ONLY; !nmi_trace_off && i < NR_NMI_STATS; i++)
		TEST_ASSERT(d->trace[i] == d->stat[i],
			    "%s: %lu kvm_svm_policy_nmi events for %s +%lu",
			    nmi_mode_now, d->trace[i], nmi_stat_names[i], d->stat[i]);
}

/*
 * Put the nmi path in mode @m.  Modes must be entered in enum order: "no
 * module" unloads svm_guard; the first mode after it loads the module with
 * allow_legacy=1, so that "legacy" is accepted later.
 */
static inline void nmi_enter_mode(const char *ko, enum nmi_mode m)
{
	if (!nmi_trace_off)
		ksft_print_msg("nmi events before %s: inject %lu/%lu, mask %lu/%lu (hw/sw)\n",
			       nmi_mode_names[m], nmi_trace_total[NMI_INJECT_ONLY],
			       nmi_trace_total[NMI_INTERCEPT_IRET],
			       nmi_trace_total[NMI_MASK_HARDWARE],
			       nmi_trace_total[NMI_MASK_SOFTWARE]);
	nmi_mode_now = nmi_mode_names[m];
	svm_guard_use_mode(ko, "allow_legacy=1", "nmi",
			   m == NMI_MODE_NONE ? NULL : nmi_mode_names[m]);
}

/*
 * Without vNMI (in L1, or with the vCPU in guest mode) every decision is
 * "KVM tracks NMI blocking": check what kvm-amd and the module counted in
 * mode @m over a stretch in which the host made @set_masks
 * KVM_SET_VCPU_EVENTS calls (one svm_set_nmi_mask() each) and every
 * svm_inject_nmi() call counted one nmi_injections (KVM's own NMIs, none
 * that L1 injects into L2).
 *
 *   no module: no svm_policy_nmi_* stat moves;
 *   guard, legacy: one inject_software per injection, one mask_software per
 *     svm_set_nmi_mask(), in kvm-amd's stats and the module's counters;
 *     legacy differs from guard only with vNMI;
 *   upstream: kvm-amd decides alone: no svm_policy_nmi_* stat moves, the
 *     module counts "upstream" once per call at either site.
 */
static inline void nmi_assert_policy_stats(enum nmi_mode m, const struct nmi_snapshot *d,
					   u64 set_masks, const char *what)
{
	u64 inj = d->stat[NMI_INJECTIONS];
	bool software = m == NMI_MODE_GUARD || m == NMI_MODE_LEGACY;
	const char *mode = nmi_mode_names[m];

	TEST_ASSERT(d->stat[NMI_INJECT_ONLY] == 0 && d->stat[NMI_MASK_HARDWARE] == 0,
		    "%s: %s: hardware tracking counted without vNMI: inject_hardware +%lu mask_hardware +%lu",
		    mode, what, d->stat[NMI_INJECT_ONLY], d->stat[NMI_MASK_HARDWARE]);
	TEST_ASSERT(d->stat[NMI_INTERCEPT_IRET] == (software ? inj : 0),
		    "%s: %s: svm_policy_nmi_inject_software +%lu for %lu injections, want +%lu",
		    mode, what, d->stat[NMI_INTERCEPT_IRET], inj, software ? inj : 0);
	TEST_ASSERT(d->stat[NMI_MASK_SOFTWARE] == (software ? set_masks : 0),
		    "%s: %s: svm_policy_nmi_mask_software +%lu for %lu KVM_SET_VCPU_EVENTS, want +%lu",
		    mode, what, d->stat[NMI_MASK_SOFTWARE], set_masks,
		    software ? set_masks : 0);
	if (m == NMI_MODE_NONE)
		return;

	TEST_ASSERT(d->mod[NMI_MOD_UPSTREAM] == (software ? 0 : inj + set_masks),
		    "%s: %s: module counter upstream +%lu for %lu injections and %lu mask changes, want +%lu",
		    mode, what, d->mod[NMI_MOD_UPSTREAM], inj, set_masks,
		    software ? 0 : inj + set_masks);
	TEST_ASSERT(d->mod[NMI_MOD_INJECT_ONLY] == 0 && d->mod[NMI_MOD_MASK_HARDWARE] == 0,
		    "%s: %s: the module decided hardware tracking without vNMI", mode, what);
	TEST_ASSERT(d->mod[NMI_MOD_INTERCEPT_IRET] == d->stat[NMI_INTERCEPT_IRET] &&
		    d->mod[NMI_MOD_MASK_SOFTWARE] == d->stat[NMI_MASK_SOFTWARE],
		    "%s: %s: module counters inject_software +%lu mask_software +%lu, kvm-amd's stats +%lu +%lu",
		    mode, what, d->mod[NMI_MOD_INTERCEPT_IRET], d->mod[NMI_MOD_MASK_SOFTWARE],
		    d->stat[NMI_INTERCEPT_IRET], d->stat[NMI_MASK_SOFTWARE]);
}

/* KVM_GET_VCPU_EVENTS reports @pending NMIs, NMIs (un)masked, none injected. */
static inline void nmi_assert_events(struct kvm_vcpu *vcpu, u8 pending, bool masked,
				     const char *what)
{
	struct kvm_vcpu_events events;

	vcpu_events_get(vcpu, &events);
	TEST_ASSERT(events.nmi.pending == pending && !!events.nmi.masked == masked &&
		    !events.nmi.injected,
		    "%s: %s: KVM reports nmi.pending %u masked %u injected %u, want %u %u 0",
		    nmi_mode_now, what, events.nmi.pending, events.nmi.masked, events.nmi.injected,
		    pending, masked);
}

#endif /* SELFTEST_SVM_GUARD_NMI_H */
