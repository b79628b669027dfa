/*
 * proc.h - child processes for tests (the relay binary, the test endpoint).
 *
 * A child is started with fork + execvp, gets SIGTERM if the test process
 * that started it dies (PR_SET_PDEATHSIG), and must be reaped with
 * proc_wait() or proc_kill_wait(); proc_free() kills and reaps a child that
 * is still running, so a failing test does not leave processes behind.
 */
#ifndef OUTBOX_TESTS_PROC_H
#define OUTBOX_TESTS_PROC_H

#include <stdbool.h>
#include <sys/types.h>

typedef struct proc proc;

/*
 * Starts argv[0] (searched in PATH if it has no '/') with argv, the current
 * environment changed by env_overrides (NULL-terminated, may be NULL):
 *   "K=V"  sets K to V;
 *   "K=" or "K"  removes K from the child's environment.
 * stderr goes to stderr_path (created or appended) when not NULL, else it is
 * inherited; stdout is inherited; stdin is /dev/null. Returns NULL (with a
 * message on stderr) if the program cannot be executed.
 */
proc *proc_spawn(const char *const argv[], const char *const env_overrides[],
                 const char *stderr_path);

/* The child's process id. */
pid_t proc_pid(const proc *p);

/* Sends sig to the child (no-op once reaped). Returns 0 or -1 with errno. */
int proc_signal(proc *p, int sig);

/*
 * Waits up to timeout_ms (< 0: forever) for the child to exit. Returns true
 * if it has exited (now or before) and sets *exit_status (may be NULL) to
 * its exit code, or 128 + signal number if a signal killed it.
 */
bool proc_wait(proc *p, long timeout_ms, int *exit_status);

/* True until the child has been reaped by proc_wait()/proc_kill_wait(). */
bool proc_running(proc *p);

/* SIGKILL and reap; returns the status as proc_wait() reports it. */
int proc_kill_wait(proc *p);

/* Kills and reaps the child if still running, then frees; NULL is a no-op. */
void proc_free(proc *p);

/*
 * A TCP port on 127.0.0.1 that was free a moment ago (bound to port 0 and
 * released). Racy by nature: prefer letting the server pick port 0 and
 * report it. Returns -1 on failure.
 */
int proc_free_tcp_port(void);

#endif
