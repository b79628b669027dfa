#include "common/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>

static log_level current_level = LOG_INFO;
static char current_tag[64];

void log_set_level(log_level level)
{
    current_level = level;
}

static const char *const level_names[] = {"debug", "info", "warn", "error"};

or_status log_level_parse(const char *s, log_level *out)
{
    for (int i = 0; i < 4; i++) {
        if (strcasecmp(s, level_names[i]) == 0) {
            *out = (log_level)i;
            return OR_OK;
        }
    }
    return OR_ERR;
}

const char *log_level_name(log_level level)
{
    if ((int)level < 0 || (int)level > 3)
        return "?";
    return level_names[level];
}

void log_set_tag(const char *tag)
{
    if (tag == NULL)
        current_tag[0] = '\0';
    else
        snprintf(current_tag, sizeof(current_tag), "%s", tag);
}

void log_write(log_level level, const char *fmt, ...)
{
    if (level < current_level)
        return;
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    /* keep it one line, and keep msg="..." parseable, whatever the message holds */
    char esc[sizeof(msg) * 2];
    size_t o = 0;
    for (const char *p = msg; *p && o + 2 < sizeof(esc); p++) {
        if (*p == '\n' || *p == '\r') {
            esc[o++] = ' ';
        } else if (*p == '"' || *p == '\\') {
            esc[o++] = '\\';
            esc[o++] = *p;
        } else {
            esc[o++] = *p;
        }
    }
    esc[o] = '\0';

    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    gmtime_r(&tv.tv_sec, &tm);
    char ts[32];
    strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
    /* one fprintf call so concurrent writers do not interleave within a line */
    fprintf(stderr, "%s.%03ldZ level=%s%s%s msg=\"%s\"\n", ts, (long)(tv.tv_usec / 1000),
            level_names[level], current_tag[0] ? " " : "", current_tag, esc);
    fflush(stderr);
}

/* Redacts password=... in key/value strings and user:pass@ in URIs. */
void log_redact_conninfo(const char *conninfo, char *out, size_t outlen)
{
    if (outlen == 0)
        return;
    out[0] = '\0';
    if (conninfo == NULL)
        return;
    size_t o = 0;
#define PUT(c)                                                                                     \
    do {                                                                                           \
        if (o + 1 < outlen)                                                                        \
            out[o++] = (c);                                                                        \
    } while (0)
    if (strncmp(conninfo, "postgresql://", 13) == 0 || strncmp(conninfo, "postgres://", 11) == 0) {
        const char *scheme_end = strstr(conninfo, "://") + 3;
        const char *slash = strchr(scheme_end, '/');
        const char *at = NULL; /* the last '@' of the authority: passwords may hold '@' */
        for (const char *q = scheme_end; *q && (slash == NULL || q < slash); q++)
            if (*q == '@')
                at = q;
        const char *colon = strchr(scheme_end, ':');
        const char *p = conninfo;
        if (at && (!slash || at < slash) && colon && colon < at) {
            for (; p <= colon; p++)
                PUT(*p);
            PUT('*');
            PUT('*');
            PUT('*');
            PUT('*');
            p = at;
        }
        /* query parameters: password=... */
        for (; *p; p++) {
            PUT(*p);
            if ((*p == '?' || *p == '&') && strncmp(p + 1, "password=", 9) == 0) {
                for (int i = 0; i < 9; i++)
                    PUT(p[1 + i]);
                PUT('*');
                PUT('*');
                PUT('*');
                PUT('*');
                p += 10;
                while (*p && *p != '&')
                    p++;
                p--;
            }
        }
    } else {
        const char *p = conninfo;
        while (*p) {
            if ((p == conninfo || p[-1] == ' ' || p[-1] == '\t' || p[-1] == '\n') &&
                strncmp(p, "password", 8) == 0) {
                const char *q = p + 8;
                while (*q == ' ' || *q == '\t')
                    q++;
                if (*q == '=') {
                    for (const char *r = p; r <= q; r++)
                        PUT(*r);
                    PUT('*');
                    PUT('*');
                    PUT('*');
                    PUT('*');
                    q++;
                    while (*q == ' ' || *q == '\t')
                        q++;
                    if (*q == '\'') {
                        q++;
                        while (*q && *q != '\'') {
                            if (*q == '\\' && q[1])
                                q++;
                            q++;
                        }
                        if (*q)
                            q++;
                    } else {
                        while (*q && *q != ' ' && *q != '\t' && *q != '\n')
                            q++;
                    }
                    p = q;
                    continue;
                }
            }
            PUT(*p);
            p++;
        }
    }
    out[o] = '\0';
#undef PUT
}
