#include "proc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/error.h"

extern char **environ;

struct proc {
    pid_t pid;
    bool reaped;
    int status; /* as reported by proc_wait */
};

/* Length of the name part of "K=V" or "K". */
static size_t proc_key_len(const char *kv)
{
    const char *eq = strchr(kv, '=');
    return eq ? (size_t)(eq - kv) : strlen(kv);
}

static bool proc_overridden(const char *entry, const char *const overrides[])
{
    size_t klen = proc_key_len(entry);
    for (size_t i = 0; overrides && overrides[i]; i++)
        if (proc_key_len(overrides[i]) == klen && strncmp(entry, overrides[i], klen) == 0)
            return true;
    return false;
}

/* The child's environment: environ minus overridden keys, plus "K=V" overrides. */
static char **proc_build_env(const char *const overrides[])
{
    size_t n_env = 0, n_over = 0, n = 0;
    while (environ && environ[n_env])
        n_env++;
    while (overrides && overrides[n_over])
        n_over++;
    char **envp = xcalloc(n_env + n_over + 1, sizeof(*envp));
    for (size_t i = 0; i < n_env; i++)
        if (!proc_overridden(environ[i], overrides))
            envp[n++] = environ[i];
    for (size_t i = 0; i < n_over; i++) {
        const char *eq = strchr(overrides[i], '=');
        if (eq != NULL && eq[1] != '\0')
            envp[n++] = (char *)overrides[i];
    }
    envp[n] = NULL;
    return envp;
}

proc *proc_spawn(const char *const argv[], const char *const env_overrides[],
                 const char *stderr_path)
{
    int errpipe[2];
    if (argv == NULL || argv[0] == NULL) {
        fprintf(stderr, "proc_spawn: empty argv\n");
        return NULL;
    }
    if (pipe2(errpipe, O_CLOEXEC) != 0) {
        fprintf(stderr, "proc_spawn: pipe: %s\n", strerror(errno));
        return NULL;
    }
    char **envp = proc_build_env(env_overrides);
    pid_t parent = getpid();
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "proc_spawn: fork: %s\n", strerror(errno));
        free(envp);
        close(errpipe[0]);
        close(errpipe[1]);
        return NULL;
    }
    if (pid == 0) {
        int e = 0;
        close(errpipe[0]);
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent)
            _exit(127);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        signal(SIGPIPE, SIG_DFL);
        int in = open("/dev/null", O_RDONLY);
        if (in >= 0) {
            dup2(in, STDIN_FILENO);
            close(in);
        }
        if (stderr_path != NULL) {
            int fd = open(stderr_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
            if (fd < 0) {
                e = errno;
                goto fail;
            }
            dup2(fd, STDERR_FILENO);
            close(fd);
        }
        execvpe(argv[0], (char *const *)argv, envp);
        e = errno;
    fail:
        (void)!write(errpipe[1], &e, sizeof(e));
        _exit(127);
    }
    free(envp);
    close(errpipe[1]);
    int child_errno = 0;
    ssize_t got;
    do {
        got = read(errpipe[0], &child_errno, sizeof(child_errno));
    } while (got < 0 && errno == EINTR);
    close(errpipe[0]);
    if (got == (ssize_t)sizeof(child_errno)) {
        fprintf(stderr, "proc_spawn: cannot run %s: %s\n", argv[0], strerror(child_errno));
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
            ;
        return NULL;
    }
    proc *p = xcalloc(1, sizeof(*p));
    p->pid = pid;
    return p;
}

pid_t proc_pid(const proc *p)
{
    return p->pid;
}

int proc_signal(proc *p, int sig)
{
    if (p->reaped)
        return 0;
    return kill(p->pid, sig);
}

static int proc_decode(int wstatus)
{
    if (WIFEXITED(wstatus))
        return WEXITSTATUS(wstatus);
    if (WIFSIGNALED(wstatus))
        return 128 + WTERMSIG(wstatus);
    return -1;
}

bool proc_wait(proc *p, long timeout_ms, int *exit_status)
{
    int64_t deadline = clock_mono_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    while (!p->reaped) {
        int wstatus = 0;
        pid_t r = waitpid(p->pid, &wstatus, timeout_ms < 0 ? 0 : WNOHANG);
        if (r == p->pid) {
            p->reaped = true;
            p->status = proc_decode(wstatus);
            break;
        }
        if (r < 0 && errno != EINTR) {
            /* not our child any more (e.g. reaped elsewhere): treat as gone */
            p->reaped = true;
            p->status = -1;
            break;
        }
        if (r == 0) {
            if (clock_mono_ms() >= deadline)
                return false;
            struct timespec ts = {0, 10 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
    }
    if (exit_status != NULL)
        *exit_status = p->status;
    return true;
}

bool proc_running(proc *p)
{
    if (p->reaped)
        return false;
    return !proc_wait(p, 0, NULL);
}

int proc_kill_wait(proc *p)
{
    int status = -1;
    if (!p->reaped)
        kill(p->pid, SIGKILL);
    proc_wait(p, -1, &status);
    return status;
}

void proc_free(proc *p)
{
    if (p == NULL)
        return;
    if (!p->reaped)
        proc_kill_wait(p);
    free(p);
}

int proc_free_tcp_port(void)
{
    int port = -1;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in sin;
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sin.sin_port = 0;
    socklen_t len = sizeof(sin);
    if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0 &&
        getsockname(fd, (struct sockaddr *)&sin, &len) == 0)
        port = ntohs(sin.sin_port);
    close(fd);
    return port;
}
