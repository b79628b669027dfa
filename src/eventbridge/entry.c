#include "eventbridge/entry.h"

#include <string.h>

/* AWS charges this many bytes for an entry that carries a Time field. */
#define EB_ENTRY_TIME_BYTES 14

static size_t entry_strlen(const char *s)
{
    return s != NULL ? strlen(s) : 0;
}

size_t eb_entry_size(const eb_entry *e)
{
    size_t size = e->has_time ? EB_ENTRY_TIME_BYTES : 0;
    size += entry_strlen(e->source);
    size += entry_strlen(e->detail_type);
    size += entry_strlen(e->detail);
    return size;
}
