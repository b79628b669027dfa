/*
 * mapping.h - turns an outbox row into a PutEvents entry.
 *
 *   Source       = eventbridge.source            ("user-service")
 *   DetailType   = "User Account Created" | "User Account Updated" |
 *                  "User Account Deleted"         (from event_type)
 *   Detail       = the row's payload object (the allow-listed columns at the
 *                  top level) plus "metadata": {event_id, outbox_id,
 *                  aggregate_type, aggregate_id, event_type, occurred_at}
 *   EventBusName = eventbridge.bus_name           ("user-service-bus")
 *   Time         = the change's occurred_at
 * event_id comes from the row, so a redelivered row carries the same id.
 */
#ifndef OUTBOX_RELAY_MAPPING_H
#define OUTBOX_RELAY_MAPPING_H

#include "common/error.h"
#include "common/strbuf.h"
#include "db/outbox.h"
#include "eventbridge/entry.h"

typedef struct mapping_options {
    const char *source;
    const char *event_bus_name;
} mapping_options;

/* DetailType for an outbox event_type, or NULL if the type is unknown. */
const char *mapping_detail_type(const char *event_type);

/*
 * Builds the Detail string into detail (which the caller owns and must keep
 * alive as long as entry is used) and fills entry. Fails, naming the row id
 * and the reason, when the row cannot become a valid entry (unknown
 * event_type, payload not a JSON object, payload already holding a
 * "metadata" key).
 */
or_status mapping_build_entry(const outbox_row *row, const mapping_options *opts, strbuf *detail,
                              eb_entry *entry, or_error *err) OR_MUST_CHECK;

#endif
