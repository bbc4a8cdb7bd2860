/* libFuzzer target: xml_parse must refuse, never crash on, any response a daemon (or anything
 * at the endpoint) sends; lookups on what it accepts stay inside the tree. */
#include <stddef.h>
#include <stdint.h>

#include "api/xmlread.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct xml_node *doc = NULL;
	struct kerr *err = NULL;
	const struct xml_node *it;

	if (xml_parse((const char *)data, size, &doc, &err) < 0) {
		kerr_free(err);
		return 0;
	}
	xml_text(doc, "Errors/Error/Code", NULL);
	xml_text(doc, "a/b/c/d", NULL);
	for (size_t i = 0; (it = xml_item(doc, "reservationSet", i)) && i < 64; i++)
		for (size_t k = 0; xml_item(it, "instancesSet", k) && k < 64; k++)
			xml_text(xml_item(it, "instancesSet", k), "instanceState/name", NULL);
	xml_free(doc);
	return 0;
}
