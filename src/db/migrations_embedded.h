/* migrations_embedded.h - table generated at build time from sql/ (see CMakeLists.txt). */
#ifndef OUTBOX_DB_MIGRATIONS_EMBEDDED_H
#define OUTBOX_DB_MIGRATIONS_EMBEDDED_H

struct embedded_migration {
    const char *name; /* file name without ".sql" */
    const char *sql;
};

extern const struct embedded_migration embedded_migrations[];
extern const unsigned embedded_migration_count;

#endif
