/* Named crash points, armed through the environment by the crash tests. */
#include "fault.h"

#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "banned.h"

static pthread_once_t once = PTHREAD_ONCE_INIT;
static char armed[128];
static unsigned long armed_count;
static unsigned long hits;
static unsigned long pause_ms; /* name@MS: pause there, do not kill */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static void fault_load(void)
{
	const char *v = getenv("KILN_FAULT");
	char *colon;

	if (!v || !*v || strlen(v) >= sizeof(armed))
		return;
	memcpy(armed, v, strlen(v) + 1);
	armed_count = 1;
	colon = strchr(armed, '@');
	if (colon) {
		*colon = '\0';
		pause_ms = strtoul(colon + 1, NULL, 10);
		return;
	}
	colon = strchr(armed, ':');
	if (colon) {
		*colon = '\0';
		armed_count = strtoul(colon + 1, NULL, 10);
		if (!armed_count)
			armed_count = 1;
	}
}

void fault_point(const char *name)
{
	pthread_once(&once, fault_load);
	if (!armed[0] || strcmp(name, armed) != 0)
		return;
	if (pause_ms) {
		struct timespec ts = {(time_t)(pause_ms / 1000),
		                      (long)(pause_ms % 1000) * 1000000L};
		while (nanosleep(&ts, &ts) < 0)
			;
		return;
	}
	pthread_mutex_lock(&lock);
	if (++hits >= armed_count)
		raise(SIGKILL);
	pthread_mutex_unlock(&lock);
}
