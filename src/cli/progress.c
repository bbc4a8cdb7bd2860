/* A one-line progress bar on stderr for long operations, only on a terminal. */
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "util/banned.h"

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void progress_bar_init(struct progress_bar *p, const char *label, const char *unit)
{
	p->label = label;
	p->unit = unit;
	p->enabled = isatty(STDERR_FILENO);
	p->started_ns = now_ns();
	p->last_ns = 0;
}

void progress_bar_update(void *ctx, uint64_t done, uint64_t total)
{
	struct progress_bar *p = ctx;
	uint64_t t = now_ns();
	char bar[31];
	unsigned fill, pct;

	if (!p->enabled || (t - p->last_ns < 100000000u && done != total))
		return;
	p->last_ns = t;
	pct = total ? (unsigned)(done * 100 / total) : 100;
	fill = pct * 30 / 100;
	for (unsigned i = 0; i < 30; i++)
		bar[i] = i < fill ? '#' : '.';
	bar[30] = '\0';
	fprintf(stderr, "\r%s [%s] %3u%%", p->label, bar, pct);
	if (p->unit)
		fprintf(stderr, " %llu/%llu %s", (unsigned long long)done,
		        (unsigned long long)total, p->unit);
	fprintf(stderr, " %.1fs", (double)(t - p->started_ns) / 1e9);
	fflush(stderr);
}

void progress_bar_finish(struct progress_bar *p)
{
	if (p->enabled && p->last_ns)
		fputc('\n', stderr);
}
