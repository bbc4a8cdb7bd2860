/* EC2 Query parameter decoding, the parameter tree accessors, and EC2 filter globs. */
#include "api/query.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/cleanup.h"
#include "util/str.h"
#include "util/xalloc.h"
#include "util/banned.h"

void api_params_init(struct api_params *p)
{
	memset(p, 0, sizeof(*p));
}

void api_params_release(struct api_params *p)
{
	for (size_t i = 0; i < p->narenas; i++)
		free(p->arenas[i]);
	free(p->arenas);
	free(p->items);
	free(p->sorted);
	api_params_init(p);
}

bool api_utf8_valid(const char *s, size_t len)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0;

	while (i < len) {
		unsigned char c = u[i];
		uint32_t cp;
		size_t n;

		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xC2 && c <= 0xDF) {
			n = 1, cp = c & 0x1F;
		} else if (c >= 0xE0 && c <= 0xEF) {
			n = 2, cp = c & 0x0F;
		} else if (c >= 0xF0 && c <= 0xF4) {
			n = 3, cp = c & 0x07;
		} else {
			return false; /* continuation byte, overlong lead, or past U+10FFFF */
		}
		if (len - i - 1 < n)
			return false;
		for (size_t k = 1; k <= n; k++) {
			if ((u[i + k] & 0xC0) != 0x80)
				return false;
			cp = cp << 6 | (u[i + k] & 0x3F);
		}
		if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10FFFF ||
		    (cp >= 0xD800 && cp <= 0xDFFF))
			return false;
		i += n + 1;
	}
	return true;
}

/* Decode data[*pos..) up to a byte in stop (or the end) into out; returns the decoded length or
 * -1 for an invalid escape or a NUL. */
static ssize_t form_decode(const char *data, size_t len, size_t *pos, const char *stop, char *out)
{
	size_t i = *pos, w = 0;

	for (; i < len && !strchr(stop, data[i]); i++) {
		char c = data[i];

		if (c == '\0') {
			*pos = i;
			return -1;
		}
		if (c == '+') {
			c = ' ';
		} else if (c == '%') {
			int hi = i + 2 < len ? hex_digit(data[i + 1]) : -1;
			int lo = i + 2 < len ? hex_digit(data[i + 2]) : -1;

			if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
				*pos = i;
				return -1;
			}
			c = (char)(hi << 4 | lo);
			i += 2;
		}
		out[w++] = c;
	}
	*pos = i;
	return (ssize_t)w;
}

static int cmp_sorted(const void *a, const void *b, void *arg)
{
	const struct api_param *items = arg;
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	int c = strcmp(items[x].name, items[y].name);

	if (c)
		return c;
	return x < y ? -1 : x > y;
}

static void params_sort(struct api_params *p)
{
	p->sorted = xreallocarray(p->sorted, p->n ? p->n : 1, sizeof(*p->sorted));
	for (size_t i = 0; i < p->n; i++)
		p->sorted[i] = (uint32_t)i;
	qsort_r(p->sorted, p->n, sizeof(*p->sorted), cmp_sorted, p->items);
}

static bool name_valid(const char *s, size_t len)
{
	if (!len)
		return false;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7F)
			return false;
	return true;
}

int api_params_decode(struct api_params *p, const char *data, size_t len,
                      const struct api_query_limits *lim, struct kerr **err)
{
	static const struct api_query_limits defaults = API_QUERY_LIMITS_DEFAULT;
	_cleanup_free_ char *arena = NULL;
	_cleanup_free_ struct api_param *items = NULL;
	size_t n = 0, cap = 0, w = 0, pos = 0, total, arena_size, max_name, max_pairs;

	if (!lim)
		lim = &defaults;
	max_name = lim->max_name < API_PARAM_NAME_MAX ? lim->max_name : API_PARAM_NAME_MAX;
	max_pairs = lim->max_pairs < UINT32_MAX ? lim->max_pairs : UINT32_MAX;
	if (__builtin_add_overflow(p->total, len, &total) || total > lim->max_total)
		return kerr_set(err, KERR_LIMIT, "request parameters exceed the limit of %zu bytes",
		                lim->max_total);
	/* Decoding never grows a string; each pair adds two NULs and uses at least one input byte
	 * or '&', so 2 * len + 2 bytes hold everything. */
	if (__builtin_mul_overflow(len, 2, &arena_size) ||
	    __builtin_add_overflow(arena_size, 2, &arena_size))
		return kerr_set(err, KERR_LIMIT, "request parameters are too large");
	arena = xmalloc(arena_size);

	while (pos < len) {
		size_t start = pos;
		ssize_t nl, vl = 0;
		char *name, *value;

		if (data[pos] == '&') {
			pos++;
			continue;
		}
		if (p->n + n >= max_pairs)
			return kerr_set(err, KERR_LIMIT, "request has more than %zu parameters",
			                max_pairs);
		name = arena + w;
		nl = form_decode(data, len, &pos, "&=", name);
		if (nl < 0)
			return kerr_set(
			    err, KERR_INVALID,
			    "invalid percent-escape or NUL in a parameter name at byte %zu", pos);
		if ((size_t)nl > max_name)
			return kerr_set(err, KERR_LIMIT,
			                "parameter name at byte %zu is longer than %zu bytes",
			                start, max_name);
		if (!name_valid(name, (size_t)nl))
			return kerr_set(
			    err, KERR_INVALID,
			    "parameter name at byte %zu is empty or not printable ASCII", start);
		name[nl] = '\0';
		w += (size_t)nl + 1;
		value = arena + w;
		if (pos < len && data[pos] == '=') {
			pos++;
			vl = form_decode(data, len, &pos, "&", value);
			if (vl < 0)
				return kerr_set(err, KERR_INVALID,
				                "invalid percent-escape or NUL in the value of "
				                "parameter '%s' at byte %zu",
				                name, pos);
			if ((size_t)vl > lim->max_value)
				return kerr_set(err, KERR_LIMIT,
				                "value of parameter '%s' is longer than %zu bytes",
				                name, lim->max_value);
			if (!api_utf8_valid(value, (size_t)vl))
				return kerr_set(err, KERR_INVALID,
				                "value of parameter '%s' is not valid UTF-8", name);
		}
		value[vl] = '\0';
		w += (size_t)vl + 1;
		if (n == cap) {
			cap = cap ? 2 * cap : 16;
			items = xreallocarray(items, cap, sizeof(*items));
		}
		items[n++] =
		    (struct api_param){.name = name, .value = value, .value_len = (size_t)vl};
	}

	if (!n)
		return 0;
	p->items = xreallocarray(p->items, p->n + n, sizeof(*p->items));
	memcpy(p->items + p->n, items, n * sizeof(*items));
	p->n += n;
	p->total = total;
	p->arenas = xreallocarray(p->arenas, p->narenas + 1, sizeof(*p->arenas));
	p->arenas[p->narenas++] = steal_ptr(arena);
	params_sort(p);
	return 0;
}

void api_params_append(struct api_params *p, const char *const *names, const char *const *values,
                       size_t n)
{
	size_t size = 0, w = 0;
	char *arena;

	if (!n)
		return;
	for (size_t i = 0; i < n; i++)
		size += strlen(names[i]) + strlen(values[i]) + 2;
	arena = xmalloc(size);
	p->items = xreallocarray(p->items, p->n + n, sizeof(*p->items));
	for (size_t i = 0; i < n; i++) {
		size_t nl = strlen(names[i]), vl = strlen(values[i]);
		struct api_param *it = &p->items[p->n++];

		memcpy(arena + w, names[i], nl + 1);
		it->name = arena + w;
		w += nl + 1;
		memcpy(arena + w, values[i], vl + 1);
		it->value = arena + w;
		it->value_len = vl;
		w += vl + 1;
	}
	p->arenas = xreallocarray(p->arenas, p->narenas + 1, sizeof(*p->arenas));
	p->arenas[p->narenas++] = arena;
	params_sort(p);
}

/* Index into p->sorted of the first name >= key. */
static size_t lower_bound(const struct api_params *p, const char *key)
{
	size_t lo = 0, hi = p->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (strcmp(p->items[p->sorted[mid]].name, key) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

const struct api_param *api_params_find(const struct api_params *p, const char *name)
{
	size_t i;

	if (!p->n)
		return NULL;
	i = lower_bound(p, name);
	if (i < p->n && !strcmp(p->items[p->sorted[i]].name, name))
		return &p->items[p->sorted[i]];
	return NULL;
}

void api_params_root(const struct api_params *p, struct api_node *out)
{
	out->params = p;
	out->len = 0;
	out->overflow = false;
	out->path[0] = '\0';
}

/* Write n.name into out; false when it does not fit. */
static bool node_join(const struct api_node *n, const char *name, char *out, size_t size,
                      size_t *outlen)
{
	int r;

	if (n->overflow)
		return false;
	if (!name || !*name)
		r = snprintf(out, size, "%s", n->path);
	else if (!n->len)
		r = snprintf(out, size, "%s", name);
	else
		r = snprintf(out, size, "%s.%s", n->path, name);
	if (r < 0 || (size_t)r >= size)
		return false;
	if (outlen)
		*outlen = (size_t)r;
	return true;
}

void api_node_child(const struct api_node *n, const char *name, struct api_node *out)
{
	struct api_node tmp;

	tmp.params = n->params;
	tmp.overflow = !node_join(n, name, tmp.path, sizeof(tmp.path), &tmp.len);
	if (tmp.overflow) {
		tmp.len = 0;
		tmp.path[0] = '\0';
	}
	*out = tmp;
}

void api_node_item(const struct api_node *n, const char *name, size_t i, struct api_node *out)
{
	char idx[24];
	struct api_node list;

	snprintf(idx, sizeof(idx), "%zu", i);
	api_node_child(n, name, &list);
	api_node_child(&list, idx, out);
}

const char *api_node_path(const struct api_node *n, const char *name,
                          char out[API_PARAM_NAME_MAX + 1])
{
	if (!node_join(n, name, out, API_PARAM_NAME_MAX + 1, NULL))
		str_copy(out, "(too long)", API_PARAM_NAME_MAX + 1);
	return out;
}

static const struct api_param *node_find(const struct api_node *n, const char *name)
{
	char path[API_PARAM_NAME_MAX + 1];

	if (!node_join(n, name, path, sizeof(path), NULL))
		return NULL;
	return api_params_find(n->params, path);
}

bool api_node_present(const struct api_node *n, const char *name)
{
	const struct api_params *p = n->params;
	char path[API_PARAM_NAME_MAX + 2];
	size_t len, i;

	if (!p->n || !node_join(n, name, path, sizeof(path) - 1, &len))
		return false;
	for (i = lower_bound(p, path); i < p->n; i++) {
		const struct api_param *it = &p->items[p->sorted[i]];

		if (strcmp(it->name, path))
			break;
		if (it->value_len)
			return true;
	}
	if (len) {
		path[len] = '.';
		path[len + 1] = '\0';
		len++;
	}
	for (i = lower_bound(p, path); i < p->n; i++) {
		const struct api_param *it = &p->items[p->sorted[i]];

		if (strncmp(it->name, path, len))
			break;
		if (it->value_len)
			return true;
	}
	return false;
}

size_t api_node_count(const struct api_node *n, const char *name)
{
	struct api_node list, item;
	size_t i;

	api_node_child(n, name, &list);
	/* Each present index needs at least one pair, so n->params->n bounds the loop. */
	for (i = 1; i <= n->params->n; i++) {
		api_node_item(&list, NULL, i, &item);
		if (!api_node_present(&item, NULL))
			break;
	}
	return i - 1;
}

const char *api_node_str(const struct api_node *n, const char *name)
{
	const struct api_param *it = node_find(n, name);

	return it && it->value_len ? it->value : NULL;
}

int api_node_bool(const struct api_node *n, const char *name, bool *out, struct kerr **err)
{
	char path[API_PARAM_NAME_MAX + 1];
	const char *v = api_node_str(n, name);

	if (!v)
		return 0;
	if (!strcasecmp(v, "true")) {
		*out = true;
		return 1;
	}
	if (!strcasecmp(v, "false")) {
		*out = false;
		return 1;
	}
	return kerr_set(err, KERR_INVALID,
	                "invalid value '%.64s' for parameter '%s': expected true or false", v,
	                api_node_path(n, name, path));
}

int api_node_int(const struct api_node *n, const char *name, int64_t min, int64_t max, int64_t *out,
                 struct kerr **err)
{
	char path[API_PARAM_NAME_MAX + 1];
	const char *v = api_node_str(n, name);
	char *end;
	long long x;

	if (!v)
		return 0;
	if (*v == '-' || (*v >= '0' && *v <= '9')) {
		errno = 0;
		x = strtoll(v, &end, 10);
		if (!errno && !*end && end != v && x >= min && x <= max) {
			*out = x;
			return 1;
		}
	}
	return kerr_set(
	    err, KERR_INVALID,
	    "invalid value '%.64s' for parameter '%s': expected an integer from %lld to %lld", v,
	    api_node_path(n, name, path), (long long)min, (long long)max);
}

size_t api_node_strings(const struct api_node *n, const char *name, const char ***out)
{
	struct api_node list, item;
	const char **v = NULL;
	size_t count = 0;

	api_node_child(n, name, &list);
	for (size_t i = 1; i <= n->params->n; i++) {
		const char *s;

		api_node_item(&list, NULL, i, &item);
		s = api_node_str(&item, NULL);
		if (!s)
			break;
		v = xreallocarray(v, count + 1, sizeof(*v));
		v[count++] = s;
	}
	*out = v;
	return count;
}

void api_filters_release(struct api_filters *f)
{
	for (size_t i = 0; i < f->n; i++)
		free(f->items[i].values);
	free(f->items);
	f->items = NULL;
	f->n = 0;
}

int api_filters_parse(const struct api_node *n, const char *name, struct api_filters *out,
                      struct kerr **err)
{
	struct api_filters f = {0};
	size_t count = api_node_count(n, name);
	char path[API_PARAM_NAME_MAX + 1];

	if (count)
		f.items = xcalloc(count, sizeof(*f.items));
	for (size_t i = 0; i < count; i++) {
		struct api_node item;
		struct api_filter *it = &f.items[i];

		api_node_item(n, name, i + 1, &item);
		it->name = api_node_str(&item, "Name");
		if (!it->name) {
			api_filters_release(&f);
			return kerr_set(err, KERR_INVALID, "filter '%s' has no name",
			                api_node_path(&item, NULL, path));
		}
		it->nvalues = api_node_strings(&item, "Value", &it->values);
		f.n = i + 1;
		if (!it->nvalues) {
			kerr_set(err, KERR_INVALID, "filter '%s' (%s) has no values",
			         api_node_path(&item, NULL, path), it->name);
			api_filters_release(&f);
			return -1;
		}
	}
	f.n = count;
	*out = f;
	return 0;
}

const struct api_filter *api_filters_find(const struct api_filters *f, const char *name)
{
	for (size_t i = 0; i < f->n; i++)
		if (!strcmp(f->items[i].name, name))
			return &f->items[i];
	return NULL;
}

bool api_filter_match(const struct api_filter *f, const char *value)
{
	if (!value)
		return false;
	for (size_t i = 0; i < f->nvalues; i++)
		if (api_glob_match(f->values[i], value))
			return true;
	return false;
}

int api_filters_match(const struct api_filters *f, api_filter_test_fn test, void *ctx,
                      struct kerr **err)
{
	for (size_t i = 0; i < f->n; i++) {
		int r = test(ctx, &f->items[i], err);

		if (r <= 0)
			return r < 0 ? -1 : 0;
	}
	return 1;
}

/* Bytes in the UTF-8 character at s (1 for a stray byte); s[0] is not NUL. */
static size_t utf8_step(const char *s)
{
	unsigned char c = (unsigned char)s[0];
	size_t n = c < 0xC0 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;

	for (size_t i = 1; i < n; i++)
		if (((unsigned char)s[i] & 0xC0) != 0x80)
			return i;
	return n;
}

bool api_glob_match(const char *pattern, const char *value)
{
	const char *p = pattern, *v = value, *star_p = NULL, *star_v = NULL;

	/* Greedy matching with one backtrack point (the last '*'): O(len(p) * len(v)) at worst. */
	while (*v) {
		if (*p == '*') {
			while (*p == '*')
				p++;
			star_p = p;
			star_v = v;
			continue;
		}
		if (*p == '?') {
			p++;
			v += utf8_step(v);
			continue;
		}
		if (*p) {
			const char *lit = p;
			size_t adv = 1;

			if (*p == '\\' && p[1]) {
				lit = p + 1;
				adv = 2;
			}
			if (*lit == *v) {
				p += adv;
				v++;
				continue;
			}
		}
		if (!star_p)
			return false;
		star_v += utf8_step(star_v);
		v = star_v;
		p = star_p;
	}
	while (*p == '*')
		p++;
	return *p == '\0';
}
