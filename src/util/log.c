/* The daemon's log: level filter, line formatting, and one write(2) per line so that lines of
 * concurrent threads never interleave. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "banned.h"

#define LINE_MAX_BYTES 2048

static int log_level = LOG_LEVEL_WARNING;
static bool journal;

static const char *const level_names[] = {
    [LOG_LEVEL_ERROR] = "error",
    [LOG_LEVEL_WARNING] = "warning",
    [LOG_LEVEL_INFO] = "info",
    [LOG_LEVEL_DEBUG] = "debug",
};

const char *log_level_name(enum log_level level)
{
	if ((unsigned)level < sizeof(level_names) / sizeof(level_names[0]) && level_names[level])
		return level_names[level];
	return "unknown";
}

int log_level_parse(const char *name)
{
	for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++)
		if (level_names[i] && !strcasecmp(name, level_names[i]))
			return (int)i;
	return -1;
}

/* JOURNAL_STREAM is "device:inode" of the journal's socket, inherited as stderr by a service. */
static bool stderr_is_journal(void)
{
	const char *js = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	if (!js || sscanf(js, "%llu:%llu", &dev, &ino) != 2 || fstat(STDERR_FILENO, &st) < 0)
		return false;
	return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

void log_setup(void)
{
	const char *env = getenv("KILN_LOG_LEVEL");
	int l = env ? log_level_parse(env) : -1;

	journal = stderr_is_journal();
	log_level = l >= 0 ? l : journal ? LOG_LEVEL_INFO : LOG_LEVEL_WARNING;
}

void log_set_level(enum log_level level)
{
	log_level = level;
}

bool log_enabled(enum log_level level)
{
	return (int)level <= __atomic_load_n(&log_level, __ATOMIC_RELAXED);
}

__attribute__((format(printf, 3, 0))) static size_t append(char *line, size_t at, const char *fmt,
                                                           va_list ap)
{
	int n;

	if (at >= LINE_MAX_BYTES)
		return at;
	n = vsnprintf(line + at, LINE_MAX_BYTES - at, fmt, ap);
	if (n < 0)
		return at;
	return at + (size_t)n >= LINE_MAX_BYTES ? LINE_MAX_BYTES - 1 : at + (size_t)n;
}

__attribute__((format(printf, 3, 4))) static size_t appendf(char *line, size_t at, const char *fmt,
                                                            ...)
{
	va_list ap;

	va_start(ap, fmt);
	at = append(line, at, fmt, ap);
	va_end(ap);
	return at;
}

static size_t field(char *line, size_t at, const char *key, const char *value)
{
	return value && *value ? appendf(line, at, " %s=%s", key, value) : at;
}

__attribute__((format(printf, 4, 0))) static void emit(enum log_level level,
                                                       const struct log_ctx *ctx,
                                                       const struct kerr *e, const char *fmt,
                                                       va_list ap)
{
	char line[LINE_MAX_BYTES];
	size_t at = 0;

	if (journal) {
		at = appendf(line, at, "<%d>%s", (int)level, log_level_name(level));
	} else {
		struct timespec ts;
		struct tm tm;
		char when[32] = "";
		clock_gettime(CLOCK_REALTIME, &ts);
		if (gmtime_r(&ts.tv_sec, &tm))
			strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
		at = appendf(line, at, "%s.%03ldZ kiln %s", when, ts.tv_nsec / 1000000L,
		             log_level_name(level));
	}
	if (ctx) {
		at = field(line, at, "request", ctx->request_id);
		at = field(line, at, "account", ctx->account);
		at = field(line, at, "key", ctx->access_key);
		at = field(line, at, "action", ctx->action);
		at = field(line, at, "resource", ctx->resource);
	}
	at = appendf(line, at, ": ");
	at = append(line, at, fmt, ap);
	if (e)
		at = appendf(line, at, ": %s (%s)", e->msg, kerr_kind_name(e->kind));
	/* One line, whatever the message held. */
	for (size_t i = 0; i < at; i++)
		if (line[i] == '\n' || line[i] == '\r')
			line[i] = ' ';
	line[at++] = '\n';
	for (size_t done = 0; done < at;) {
		ssize_t w = write(STDERR_FILENO, line + done, at - done);
		if (w <= 0)
			break;
		done += (size_t)w;
	}
}

void log_kerr(enum log_level level, const struct log_ctx *ctx, const struct kerr *e,
              const char *fmt, ...)
{
	va_list ap;

	if (!log_enabled(level))
		return;
	va_start(ap, fmt);
	emit(level, ctx, e, fmt, ap);
	va_end(ap);
}
