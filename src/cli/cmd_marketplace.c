/* kiln marketplace, kiln bill and kiln clock: the marketplace's operator commands on a data
 * directory (publishing products until the Catalog API exists; subscriptions, which buyers also
 * make with the Agreement API), the bills and reports computed from the recorded state changes
 * of instances and the metered usage, and the test clock. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cloud/cloud.h"
#include "options.h"
#include "util/cleanup.h"
#include "util/banned.h"

#define USAGE_MARKETPLACE                                                                          \
	"kiln marketplace publish IMAGE --seller ACCOUNT --title TITLE [--region REGION]\n"        \
	"         [--price TYPE=USD]... | [--type TYPE]... [--byol] [--dimension NAME=USD]...\n"   \
	"         [--data DIR] [--json]\n"                                                         \
	"       kiln marketplace products [--data DIR] [--json]\n"                                 \
	"       kiln marketplace subscribe|unsubscribe PRODUCT --account ACCOUNT [--data DIR]\n"   \
	"       kiln marketplace ls --account ACCOUNT [--data DIR] [--json]\n"                     \
	"       kiln marketplace report --seller ACCOUNT [--month YYYY-MM] [--data DIR] [--json]"
#define USAGE_BILL  "kiln bill --account ACCOUNT [--month YYYY-MM] [--data DIR] [--json]"
#define USAGE_CLOCK "kiln clock advance DURATION [--data DIR]   (DURATION: 90m, 2h, 3600s, 1h30m)"

/* A JSON object's string member after its first: , "name": "value". */
static void json_member(const char *name, const char *value)
{
	printf(", \"%s\": ", name);
	cli_json_string(value);
}

static void print_product(const struct product *p, bool json, bool first)
{
	char price[32];

	if (!json) {
		printf("%-25s %-18s %-12s %-7s %-21s %s\n", p->code, p->id, p->seller, p->pricing,
		       p->image, p->title);
		for (size_t i = 0; i < p->ntypes; i++) {
			cloud_money_format(p->types[i].price_micros, price);
			printf("  %-12s %s/hour\n", p->types[i].type, price);
		}
		for (size_t i = 0; i < p->ndims; i++) {
			cloud_money_format(p->dims[i].price_micros, price);
			printf("  %-12s %s/unit (metered)\n", p->dims[i].key, price);
		}
		return;
	}
	printf("%s{\"code\": ", first ? "" : ", ");
	cli_json_string(p->code);
	json_member("id", p->id);
	json_member("seller", p->seller);
	json_member("title", p->title);
	json_member("pricing", p->pricing);
	json_member("image", p->image);
	json_member("region", p->region);
	printf(", \"instance_types\": {");
	for (size_t i = 0; i < p->ntypes; i++) {
		cloud_money_format(p->types[i].price_micros, price);
		printf("%s", i ? ", " : "");
		cli_json_string(p->types[i].type);
		printf(": ");
		cli_json_string(price);
	}
	printf("}, \"dimensions\": {");
	for (size_t i = 0; i < p->ndims; i++) {
		cloud_money_format(p->dims[i].price_micros, price);
		printf("%s", i ? ", " : "");
		cli_json_string(p->dims[i].key);
		printf(": ");
		cli_json_string(price);
	}
	printf("}}");
}

static int do_publish(struct cloud *cl, const char *image, const char *seller, const char *title,
                      const char *region, const struct cli_strings *prices,
                      const struct cli_strings *types, const struct cli_strings *dims, bool byol,
                      bool json, struct kerr **err)
{
	_cleanup_free_ struct product_type *t = NULL;
	_cleanup_free_ struct usage_dimension *d = NULL;
	struct product_request req = {.image = image, .title = title};
	struct account a;
	struct product p;
	size_t n = 0;

	if (prices->n && (types->n || byol))
		return kerr_set(err, KERR_INVALID,
		                "--price makes an hourly product: not with --type or --byol");
	t = calloc(prices->n + types->n + 1, sizeof(*t));
	if (!t)
		return kerr_set(err, KERR_INTERNAL, "out of memory");
	for (size_t i = 0; i < prices->n; i++, n++) {
		const char *eq = strchr(prices->items[i], '=');
		if (!eq || eq == prices->items[i] ||
		    (size_t)(eq - prices->items[i]) >= sizeof(t[n].type))
			return kerr_set(err, KERR_INVALID, "--price '%s' is not TYPE=USD",
			                prices->items[i]);
		memcpy(t[n].type, prices->items[i], (size_t)(eq - prices->items[i]));
		if (cloud_money_parse(eq + 1, &t[n].price_micros, err) < 0)
			return -1;
	}
	for (size_t i = 0; i < types->n; i++, n++) {
		if (strlen(types->items[i]) >= sizeof(t[n].type))
			return kerr_set(err, KERR_INVALID, "unknown instance type '%s'",
			                types->items[i]);
		memcpy(t[n].type, types->items[i], strlen(types->items[i]));
	}
	d = calloc(dims->n + 1, sizeof(*d));
	if (!d)
		return kerr_set(err, KERR_INTERNAL, "out of memory");
	for (size_t i = 0; i < dims->n; i++) {
		const char *eq = strchr(dims->items[i], '=');
		if (!eq || eq == dims->items[i] ||
		    (size_t)(eq - dims->items[i]) >= sizeof(d[i].key))
			return kerr_set(err, KERR_INVALID, "--dimension '%s' is not NAME=USD",
			                dims->items[i]);
		memcpy(d[i].key, dims->items[i], (size_t)(eq - dims->items[i]));
		if (cloud_money_parse(eq + 1, &d[i].price_micros, err) < 0)
			return -1;
	}
	req.dims = d;
	req.ndims = dims->n;
	if (cloud_account_find(cl, seller, &a, err) < 0)
		return -1;
	if (!region) {
		struct topology topo;
		static char first[32];
		if (cloud_regions(cl, &topo, err) < 0)
			return -1;
		memcpy(first, topo.regions[0], sizeof(first));
		topology_release(&topo);
		region = first;
	}
	req.seller = a.id;
	req.region = region;
	req.pricing = prices->n ? "hourly" : byol ? "byol" : "free";
	req.types = t;
	req.ntypes = n;
	if (cloud_product_create(cl, &req, &p, err) < 0)
		return -1;
	print_product(&p, json, true);
	if (json)
		putchar('\n');
	return 0;
}

static int do_products(struct cloud *cl, bool json, struct kerr **err)
{
	_cleanup_free_ struct product *v = NULL;
	size_t n;

	if (cloud_products_list(cl, &v, &n, err) < 0)
		return -1;
	if (json)
		putchar('[');
	else
		printf("%-25s %-18s %-12s %-7s %-21s %s\n", "CODE", "PRODUCT", "SELLER", "PRICING",
		       "IMAGE", "TITLE");
	for (size_t i = 0; i < n; i++)
		print_product(&v[i], json, i == 0);
	if (json)
		puts("]");
	return 0;
}

static int do_subscriptions(struct cloud *cl, const char *account, bool json, struct kerr **err)
{
	_cleanup_free_ struct subscription *v = NULL;
	size_t n;

	if (cloud_subscriptions_list(cl, account, &v, &n, err) < 0)
		return -1;
	if (json)
		putchar('[');
	else
		printf("%-31s %-25s %-9s %s\n", "AGREEMENT", "PRODUCT", "STATUS", "TITLE");
	for (size_t i = 0; i < n; i++) {
		const char *status = v[i].end_ms ? "CANCELLED" : "ACTIVE";
		if (!json) {
			printf("%-31s %-25s %-9s %s\n", v[i].id, v[i].product, status, v[i].title);
			continue;
		}
		printf("%s{\"agreement\": ", i ? ", " : "");
		cli_json_string(v[i].id);
		json_member("product", v[i].product);
		json_member("title", v[i].title);
		json_member("status", status);
		printf("}");
	}
	if (json)
		puts("]");
	return 0;
}

/* The lines of a bill (buyer) or a report (seller): text, or the JSON list's members. */
static void print_lines(const struct bill_line *v, size_t n, bool json)
{
	char price[32], amount[32];
	bool usage = false;

	for (size_t i = 0; i < n; i++)
		usage = usage || v[i].dimension[0];
	if (!json)
		printf("%-7s %-25s %-12s %-12s %-21s %-10s %6s %10s %10s%s\n", "MONTH", "PRODUCT",
		       "SELLER", "BUYER", "INSTANCE", "TYPE", "HOURS", "PRICE", "AMOUNT",
		       usage ? "  USAGE" : "");
	for (size_t i = 0; i < n; i++) {
		cloud_money_format(v[i].price_micros, price);
		cloud_money_format(v[i].amount_micros, amount);
		if (!json && v[i].dimension[0]) {
			printf("%-7s %-25s %-12s %-12s %-21s %-10s %6s %10s %10s  %llu %s\n",
			       v[i].month, v[i].product, v[i].seller, v[i].buyer,
			       v[i].instance[0] ? v[i].instance : "-",
			       v[i].type[0] ? v[i].type : "-", "-", price, amount,
			       (unsigned long long)v[i].quantity, v[i].dimension);
			continue;
		}
		if (!json) {
			printf("%-7s %-25s %-12s %-12s %-21s %-10s %6llu %10s %10s\n", v[i].month,
			       v[i].product, v[i].seller, v[i].buyer, v[i].instance, v[i].type,
			       (unsigned long long)v[i].hours, price, amount);
			continue;
		}
		printf("%s{\"month\": ", i ? ", " : "");
		cli_json_string(v[i].month);
		json_member("product", v[i].product);
		json_member("title", v[i].title);
		json_member("pricing", v[i].pricing);
		json_member("seller", v[i].seller);
		json_member("buyer", v[i].buyer);
		json_member("instance", v[i].instance);
		json_member("region", v[i].region);
		json_member("instance_type", v[i].type);
		printf(", \"hours\": %llu", (unsigned long long)v[i].hours);
		json_member("price", price);
		json_member("amount", amount);
		if (v[i].dimension[0]) {
			json_member("dimension", v[i].dimension);
			printf(", \"quantity\": %llu", (unsigned long long)v[i].quantity);
		}
		printf("}");
	}
}

/* The rows of a seller's report, per month and product. */
static void print_report_rows(const struct report_row *v, size_t n, bool json)
{
	char revenue[32];

	if (!json)
		printf("%-7s %-25s %-24s %11s %6s %8s %10s\n", "MONTH", "PRODUCT", "TITLE",
		       "SUBSCRIBERS", "HOURS", "USAGE", "REVENUE");
	for (size_t i = 0; i < n; i++) {
		cloud_money_format(v[i].revenue_micros, revenue);
		if (!json) {
			printf("%-7s %-25s %-24.24s %11llu %6llu %8llu %10s\n", v[i].month,
			       v[i].product, v[i].title, (unsigned long long)v[i].subscribers,
			       (unsigned long long)v[i].hours, (unsigned long long)v[i].usage,
			       revenue);
			continue;
		}
		printf("%s{\"month\": ", i ? ", " : "");
		cli_json_string(v[i].month);
		json_member("product", v[i].product);
		json_member("title", v[i].title);
		printf(", \"subscribers\": %llu, \"hours\": %llu, \"usage\": %llu",
		       (unsigned long long)v[i].subscribers, (unsigned long long)v[i].hours,
		       (unsigned long long)v[i].usage);
		json_member("revenue", revenue);
		printf("}");
	}
}

/* A buyer's bill (seller NULL) or a seller's report (buyer NULL, with its rows per month and
 * product first), and the total. */
static int print_bill(struct cloud *cl, const char *buyer, const char *seller, const char *month,
                      bool json, struct kerr **err)
{
	_cleanup_free_ struct bill_line *v = NULL;
	_cleanup_free_ struct report_row *rows = NULL;
	char amount[32];
	int64_t total = 0;
	uint64_t hours = 0;
	size_t n, nrows = 0;

	if (cloud_bill(cl, buyer, seller, month, &v, &n, err) < 0 ||
	    (seller && cloud_marketplace_report(cl, seller, month, v, n, &rows, &nrows, err) < 0))
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (__builtin_add_overflow(total, v[i].amount_micros, &total))
			return kerr_set(err, KERR_LIMIT, "the total overflows");
		hours += v[i].hours;
	}
	if (json)
		printf("{");
	if (seller) {
		if (json)
			printf("\"months\": [");
		print_report_rows(rows, nrows, json);
		printf(json ? "], " : "\n");
	}
	if (json)
		printf("\"lines\": [");
	print_lines(v, n, json);
	cloud_money_format(total, amount);
	if (json) {
		printf("], \"hours\": %llu, \"total\": ", (unsigned long long)hours);
		cli_json_string(amount);
		puts(", \"currency\": \"USD\"}");
	} else {
		printf("total: %llu instance-hours, USD %s\n", (unsigned long long)hours, amount);
	}
	return 0;
}

static int account_id(struct cloud *cl, const char *name, char id[ACCOUNT_ID_LEN + 1],
                      struct kerr **err)
{
	struct account a;

	if (cloud_account_find(cl, name, &a, err) < 0)
		return -1;
	memcpy(id, a.id, ACCOUNT_ID_LEN + 1);
	return 0;
}

int cmd_marketplace(int argc, char **argv)
{
	_cleanup_kerr_ struct kerr *err = NULL;
	struct cli_strings prices = {0}, types = {0}, dims = {0};
	const char *data = NULL, *seller = NULL, *account = NULL, *title = NULL, *region = NULL,
	           *month = NULL;
	bool json = false, byol = false;
	const struct cli_option opts[] = {
	    OPT_STRING("seller", "ACCOUNT", &seller, "the selling account (id or name)"),
	    OPT_STRING("account", "ACCOUNT", &account, "the buying account (id or name)"),
	    OPT_STRING("title", "TITLE", &title, "the product's title"),
	    OPT_STRING("region", "REGION", &region, "the image's region (else the first)"),
	    OPT_LIST("price", "TYPE=USD", &prices,
	             "hourly: an allowed instance type and its price per hour"),
	    OPT_LIST("type", "TYPE", &types, "free or BYOL: an allowed instance type (else all)"),
	    OPT_BOOL("byol", &byol, "bring your own license: the marketplace bills nothing"),
	    OPT_LIST("dimension", "NAME=USD", &dims,
	             "a usage dimension (MeterUsage) and its price per unit"),
	    OPT_STRING("month", "YYYY-MM", &month, "report: that month only (UTC)"),
	    OPT_STRING("data", "DIR", &data, "the data directory"),
	    OPT_BOOL("json", &json, "print JSON"),
	    OPT_END(),
	};
	char id[ACCOUNT_ID_LEN + 1];
	const char *sub;
	struct cloud *cl;
	int nargs, r = -1;

	if (argc < 2)
		return cli_usage(USAGE_MARKETPLACE, "'marketplace' needs a subcommand");
	sub = argv[1];
	if (sub[0] == '-') /* --help: the usage and the options */
		cli_parse_options(argc, argv, opts, USAGE_MARKETPLACE, 0);
	nargs = cli_parse_options(argc - 1, argv + 1, opts, USAGE_MARKETPLACE, 0);
	if (strcmp(sub, "publish") && strcmp(sub, "products") && strcmp(sub, "subscribe") &&
	    strcmp(sub, "unsubscribe") && strcmp(sub, "ls") && strcmp(sub, "report")) {
		cli_strings_release(&prices);
		cli_strings_release(&types);
		cli_strings_release(&dims);
		return cli_usage(USAGE_MARKETPLACE, "unknown marketplace subcommand '%s'", sub);
	}
	if (cloud_open(cli_data_dir(data), &cl, &err) < 0) {
		cli_strings_release(&prices);
		cli_strings_release(&types);
		cli_strings_release(&dims);
		return cli_fail(err);
	}
	if (!strcmp(sub, "publish")) {
		if (nargs != 1 || !seller || !title)
			kerr_set(&err, KERR_INVALID, "publish takes IMAGE, --seller and --title");
		else
			r = do_publish(cl, argv[2], seller, title, region, &prices, &types, &dims,
			               byol, json, &err);
	} else if (!strcmp(sub, "products")) {
		r = do_products(cl, json, &err);
	} else if (!strcmp(sub, "subscribe") || !strcmp(sub, "unsubscribe")) {
		struct subscription s;
		if (nargs != 1 || !account)
			kerr_set(&err, KERR_INVALID, "%s takes PRODUCT and --account", sub);
		else if (account_id(cl, account, id, &err) == 0)
			r = !strcmp(sub, "subscribe") ? cloud_subscribe(cl, id, argv[2], &s, &err)
			                              : cloud_unsubscribe(cl, id, argv[2], &err);
		if (r == 0 && !strcmp(sub, "subscribe"))
			printf("%s\n", s.id);
	} else if (!strcmp(sub, "ls")) {
		if (!account)
			kerr_set(&err, KERR_INVALID, "ls takes --account");
		else if (account_id(cl, account, id, &err) == 0)
			r = do_subscriptions(cl, id, json, &err);
	} else {
		if (!seller)
			kerr_set(&err, KERR_INVALID, "report takes --seller");
		else if (account_id(cl, seller, id, &err) == 0)
			r = print_bill(cl, NULL, id, month, json, &err);
	}
	cloud_close(cl);
	cli_strings_release(&prices);
	cli_strings_release(&types);
	cli_strings_release(&dims);
	return r < 0 ? cli_fail(err) : 0;
}

int cmd_bill(int argc, char **argv)
{
	_cleanup_kerr_ struct kerr *err = NULL;
	const char *data = NULL, *account = NULL, *month = NULL;
	bool json = false;
	const struct cli_option opts[] = {
	    OPT_STRING("account", "ACCOUNT", &account, "the buying account (id or name)"),
	    OPT_STRING("month", "YYYY-MM", &month, "that month only (UTC)"),
	    OPT_STRING("data", "DIR", &data, "the data directory"),
	    OPT_BOOL("json", &json, "print JSON"),
	    OPT_END(),
	};
	char id[ACCOUNT_ID_LEN + 1];
	struct cloud *cl;
	int r = -1;

	if (cli_parse_options(argc, argv, opts, USAGE_BILL, 0) != 0 || !account)
		return cli_usage(USAGE_BILL, "'bill' takes --account and no arguments");
	if (cloud_open(cli_data_dir(data), &cl, &err) < 0)
		return cli_fail(err);
	if (account_id(cl, account, id, &err) == 0)
		r = print_bill(cl, id, NULL, month, json, &err);
	cloud_close(cl);
	return r < 0 ? cli_fail(err) : 0;
}

/* "1h30m", "90m", "3600s", "2h": milliseconds; -1 when it is none. */
static int64_t parse_duration(const char *s)
{
	int64_t total = 0;

	if (!*s)
		return -1;
	while (*s) {
		int64_t v = 0, unit;
		if (!(*s >= '0' && *s <= '9'))
			return -1;
		for (; *s >= '0' && *s <= '9'; s++)
			if (__builtin_mul_overflow(v, 10, &v) ||
			    __builtin_add_overflow(v, *s - '0', &v))
				return -1;
		unit = *s == 'h' ? 3600000 : *s == 'm' ? 60000 : *s == 's' ? 1000 : 0;
		if (!unit || __builtin_mul_overflow(v, unit, &v) ||
		    __builtin_add_overflow(total, v, &total))
			return -1;
		s++;
	}
	return total;
}

int cmd_clock(int argc, char **argv)
{
	_cleanup_kerr_ struct kerr *err = NULL;
	const char *data = NULL;
	const struct cli_option opts[] = {
	    OPT_STRING("data", "DIR", &data, "the data directory"),
	    OPT_END(),
	};
	struct cloud *cl;
	int64_t ms;
	int r;

	if (cli_parse_options(argc, argv, opts, USAGE_CLOCK, 0) != 2 || strcmp(argv[1], "advance"))
		return cli_usage(USAGE_CLOCK, "'clock' takes 'advance DURATION'");
	if ((ms = parse_duration(argv[2])) <= 0)
		return cli_usage(USAGE_CLOCK, "bad duration '%s'", argv[2]);
	if (cloud_open(cli_data_dir(data), &cl, &err) < 0)
		return cli_fail(err);
	r = cloud_test_clock_advance(cl, ms, &err);
	cloud_close(cl);
	return r < 0 ? cli_fail(err) : 0;
}
