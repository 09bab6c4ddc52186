/* sigcount: a C target for gopeek's "never swallow a signal" test
 * (tests/process_attach.rs).
 *
 * Counts every delivery of the real-time signal SIGRTMIN+2 (real-time
 * signals are queued, never merged, so the count is exact; Go's runtime
 * would coalesce them). Once its handler is installed it prints "ready PID",
 * then "beat=N sig=M" every 10 ms. Three worker
 * threads stay busy so that signals are dequeued while gopeek seizes.
 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static atomic_long received;

static void on_signal(int sig, siginfo_t *info, void *ctx) {
    (void)sig; (void)info; (void)ctx;
    atomic_fetch_add(&received, 1);
}

static void *worker(void *arg) {
    (void)arg;
    for (;;) {
        volatile unsigned long x = 0;
        for (unsigned long i = 0; i < 200000; i++) x += i;
        usleep(200);
    }
    return NULL;
}

int main(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_signal;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGRTMIN + 2, &sa, NULL);
    for (int i = 0; i < 3; i++) {
        pthread_t t;
        pthread_create(&t, NULL, worker, NULL);
    }
    printf("ready %d\n", (int)getpid());
    for (long beat = 1;; beat++) {
        printf("beat=%ld sig=%ld\n", beat, atomic_load(&received));
        fflush(stdout);
        usleep(10000);
    }
}
