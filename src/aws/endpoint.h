/*
 * endpoint.h - where EventBridge lives for a region.
 */
#ifndef OUTBOX_AWS_ENDPOINT_H
#define OUTBOX_AWS_ENDPOINT_H

#include <stddef.h>

#include "common/error.h"

/*
 * Writes the default EventBridge endpoint for region into out:
 * "https://events.<region>.amazonaws.com", or ".amazonaws.com.cn" for
 * regions beginning "cn-". Fails if region is empty or not of the form
 * [a-z0-9-]+ (names the bad value in err).
 */
or_status aws_eventbridge_endpoint(const char *region, char *out, size_t outlen,
                                   or_error *err) OR_MUST_CHECK;

/*
 * Splits an endpoint URL into scheme/host[:port] for the Host header and
 * signing. Accepts "http://h[:p][/]" and "https://h[:p][/]"; a path other
 * than "/" is rejected. host_header gets "h" or "h:p" exactly as the client
 * will send it (libcurl omits default ports).
 */
or_status aws_endpoint_host(const char *url, char *host_header, size_t outlen,
                            or_error *err) OR_MUST_CHECK;

#endif
