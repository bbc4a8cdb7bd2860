/* The daemon's log: one line per event on stderr, with the ids it concerns (request, account,
 * action, resource) as key=value pairs. When stderr is the journal (JOURNAL_STREAM names it) each
 * line starts with its syslog priority ("<3>") and carries no time of its own. */
#ifndef KILN_LOG_H
#define KILN_LOG_H

#include <stdbool.h>

#include "kerr.h"

/* The syslog priorities, so that journald reads them as they are. */
enum log_level {
	LOG_LEVEL_ERROR = 3,
	LOG_LEVEL_WARNING = 4,
	LOG_LEVEL_INFO = 6,
	LOG_LEVEL_DEBUG = 7,
};

/* What an event concerns; any field may be NULL or "" (left out of the line). */
struct log_ctx {
	const char *request_id;
	const char *account;
	const char *access_key; /* the caller's, where the account is not known yet */
	const char *action;
	const char *resource;
};

/* The level from KILN_LOG_LEVEL (error, warning, info, debug) when set, else info under the
 * journal and warning elsewhere (a terminal or a pipe nobody may read). Call once at start. */
void log_setup(void);
/* Override the level (log_setup's choice until then). */
void log_set_level(enum log_level level);
/* A level's name ("error"), and the level of a name (-1 when it names none). */
const char *log_level_name(enum log_level level);
int log_level_parse(const char *name);
bool log_enabled(enum log_level level);

/* One line: level, the context's ids, the message, then (e not NULL) ": " and the error's
 * message and kind: for an error that nobody above will see. */
void log_kerr(enum log_level level, const struct log_ctx *ctx, const struct kerr *e,
              const char *fmt, ...) __attribute__((format(printf, 4, 5)));
#define log_event(level, ctx, ...) log_kerr(level, ctx, NULL, __VA_ARGS__)

#endif
