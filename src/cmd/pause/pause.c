/* ctrd-pause: the process that holds a pod sandbox's namespaces when the
 * sandbox runs without an image (the CRI plugin's `sandbox_image = ""`).
 * It sleeps until SIGINT or SIGTERM, and as PID 1 of a pod that shares its
 * PID namespace it reaps the orphans that are reparented to it. Static, so
 * that it runs in a rootfs that holds nothing else. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void leave(int sig) { _exit(128 + sig); }

static void reap(int sig) {
  (void)sig;
  int saved = errno;
  while (waitpid(-1, NULL, WNOHANG) > 0) {
  }
  errno = saved;
}

int main(int argc, char** argv) {
  if (argc > 1 && strcmp(argv[1], "-v") == 0) {
    printf("ctrd-pause\n");
    return 0;
  }
  if (getpid() != 1) fprintf(stderr, "ctrd-pause: warning: not running as PID 1\n");

  struct sigaction stop;
  memset(&stop, 0, sizeof stop);
  stop.sa_handler = leave;
  sigaction(SIGINT, &stop, NULL);
  sigaction(SIGTERM, &stop, NULL);

  struct sigaction child;
  memset(&child, 0, sizeof child);
  child.sa_handler = reap;
  child.sa_flags = SA_NOCLDSTOP | SA_RESTART;
  sigaction(SIGCHLD, &child, NULL);

  for (;;) pause();
}
