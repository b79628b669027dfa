/*
 * entry.h - one PutEvents request entry and its size under AWS's formula.
 */
#ifndef OUTBOX_EVENTBRIDGE_ENTRY_H
#define OUTBOX_EVENTBRIDGE_ENTRY_H

#include <stdbool.h>
#include <stddef.h>

typedef struct eb_entry {
    const char *source;
    const char *detail_type;
    const char *detail; /* a JSON object, as a string */
    const char *event_bus_name;
    bool has_time;
    long long time_ms; /* epoch milliseconds; sent as seconds with fraction */
} eb_entry;

/*
 * Size that counts toward the request limit: 14 if Time is set, plus the
 * UTF-8 byte lengths of Source, DetailType and Detail (no Resources here).
 * Bus name and JSON syntax do not count.
 */
size_t eb_entry_size(const eb_entry *e);

#endif
