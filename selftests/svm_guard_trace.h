/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Reading kvm-amd's policy tracepoints (events/kvm/kvm_svm_policy_*) from
 * tracefs, so that a test can check them against the svm_policy_* stats.
 */
#ifndef SELFTEST_SVM_GUARD_TRACE_H
#define SELFTEST_SVM_GUARD_TRACE_H

#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/mount.h>

#include "kselftest.h"
#include "test_util.h"
#include "svm_guard_module.h"

static const char *svm_guard_tracefs_dir;

/* Write @val to @dir/@file; returns 0 or -errno. */
static inline int svm_guard_trace_write(const char *dir, const char *file,
					const char *val, int flags)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	return svm_guard_write_file(path, val, flags);
}

/* The events a test enabled, disabled again when it exits, however it exits. */
static const char *svm_guard_trace_events[4];

static inline void svm_guard_trace_stop(const char *event);

static inline void svm_guard_trace_stop_all(void)
{
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(svm_guard_trace_events); i++) {
		if (svm_guard_trace_events[i])
			svm_guard_trace_stop(svm_guard_trace_events[i]);
	}
}

/*
 * Enable kvm/@event in tracefs and empty the trace buffer.  Returns NULL, or
 * why the event cannot be traced (the test then skips its trace checks).
 */
static inline const char *svm_guard_trace_start(const char *event)
{
	static const char * const dirs[] = {
		"/sys/kernel/tracing", "/sys/kernel/debug/tracing",
	};
	static char why[128];
	char file[128];
	unsigned int i;

	for (i = 0; !svm_guard_tracefs_dir && i < ARRAY_SIZE(dirs); i++) {
		snprintf(file, sizeof(file), "%s/events/kvm", dirs[i]);
		if (!access(file, F_OK))
			svm_guard_tracefs_dir = dirs[i];
	}
	/* Not mounted yet: mount it where it belongs. */
	if (!svm_guard_tracefs_dir &&
	    !mount("nodev", dirs[0], "tracefs", 0, NULL) &&
	    !access("/sys/kernel/tracing/events/kvm", F_OK))
		svm_guard_tracefs_dir = dirs[0];
	if (!svm_guard_tracefs_dir)
		return "no tracefs with kvm events";

	snprintf(file, sizeof(file), "events/kvm/%s/enable", event);
	if (svm_guard_trace_write(svm_guard_tracefs_dir, file, "1", 0)) {
		snprintf(why, sizeof(why), "no tracepoint kvm:%s", event);
		return why;
	}
	for (i = 0; i < ARRAY_SIZE(svm_guard_trace_events); i++) {
		if (!svm_guard_trace_events[i] || !strcmp(svm_guard_trace_events[i], event))
			break;
	}
	TEST_ASSERT(i < ARRAY_SIZE(svm_guard_trace_events), "more than %zu events traced",
		    ARRAY_SIZE(svm_guard_trace_events));
	if (!svm_guard_trace_events[i]) {
		if (i == 0)
			atexit(svm_guard_trace_stop_all);
		svm_guard_trace_events[i] = event;
	}
	TEST_ASSERT(!svm_guard_trace_write(svm_guard_tracefs_dir, "trace", "", O_TRUNC),
		    "clear %s/trace", svm_guard_tracefs_dir);
	return NULL;
}

static inline void svm_guard_trace_stop(const char *event)
{
	char file[128];

	if (!svm_guard_tracefs_dir)
		return;
	snprintf(file, sizeof(file), "events/kvm/%s/enable", event);
	svm_guard_trace_write(svm_guard_tracefs_dir, file, "0", 0);
}

/*
 * Stop tracing @event and report the test result that stands for the trace
 * checks: passed, or skipped for the reason @off (svm_guard_trace_start()).
 */
static inline void svm_guard_trace_finish(const char *event, const char *off)
{
	svm_guard_trace_stop(event);
	if (off)
		ksft_test_result_skip("trace events checked against the stats: %s\n", off);
	else
		ksft_test_result_pass("trace events checked against the stats\n");
}

/*
 * Take the events @event out of the trace buffer: their text, one line
 * each, goes to @buf (@len bytes, NUL-terminated), and the buffer is
 * emptied.  Returns how many there were.  Fails the test if tracefs lost
 * events or @buf is too small, since the count would then be wrong.
 */
static inline int svm_guard_trace_take(const char *event, char *buf, size_t len)
{
	char path[256], tag[96], line[1024];
	size_t used = 0;
	int n = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/trace", svm_guard_tracefs_dir);
	snprintf(tag, sizeof(tag), " %s: ", event);
	f = fopen(path, "r");
	TEST_ASSERT(f, "open %s: %s", path, strerror(errno));
	buf[0] = 0;
	while (fgets(line, sizeof(line), f)) {
		const char *text = strstr(line, tag);
		size_t l;

		TEST_ASSERT(!strstr(line, "[LOST "), "tracefs lost events: %s", line);
		if (line[0] == '#' || !text)
			continue;
		text += strlen(tag);
		l = strlen(text);
		TEST_ASSERT(used + l < len, "more %s events than fit in %zu bytes", event, len);
		memcpy(buf + used, text, l + 1);
		used += l;
		n++;
	}
	fclose(f);
	TEST_ASSERT(!svm_guard_trace_write(svm_guard_tracefs_dir, "trace", "", O_TRUNC),
		    "clear %s/trace", svm_guard_tracefs_dir);
	return n;
}

/* Does the line [@p, @eol) hold @word, ending at a space or the line's end? */
static inline bool svm_guard_trace_has_word(const char *p, const char *eol, const char *word)
{
	size_t wl = strlen(word);
	const char *q = p;

	while ((q = strstr(q, word)) && q + wl <= eol) {
		if ((q == p || q[-1] == ' ') && (q + wl == eol || q[wl] == ' '))
			return true;
		q += wl;
	}
	return false;
}

/*
 * How many lines of @buf (from svm_guard_trace_take()) hold every one of the
 * words that follow, up to NULL, e.g. "verdict drop", "insn_len 0".
 */
static inline int svm_guard_trace_lines(const char *buf, ...)
{
	const char *p = buf, *eol, *word;
	va_list ap;
	int n = 0;
	bool all;

	for (; *p; p = *eol ? eol + 1 : eol) {
		eol = strchr(p, '\n');
		if (!eol)
			eol = p + strlen(p);
		all = true;
		va_start(ap, buf);
		while (all && (word = va_arg(ap, const char *)))
			all = svm_guard_trace_has_word(p, eol, word);
		va_end(ap);
		n += all;
	}
	return n;
}

#endif /* SELFTEST_SVM_GUARD_TRACE_H */
