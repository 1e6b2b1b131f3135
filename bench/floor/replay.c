// The floor under the agent's collectors: the same file-system system calls that one full
// collection makes (recorded with strace by bench/agent-collect.ts), issued from C with nothing
// parsed, nothing allocated and nothing sent. What is left is what the kernel charges for the data
// and the least a process can spend asking for it, in any language.
//
//   cc -O2 -o replay replay.c && ./replay OPS RUNS [--pread-stat] [--sock-diag]
//
// OPS has one line per call: `F <reads> <path>` (open, up to <reads> reads of 64 KiB, close),
// `D 0 <path>` (opendir, readdir to the end, closedir), `S 0 <path>` (statfs), `L 0 <path>`
// (readlink), `N 0 -` (getifaddrs: the netlink dump behind os.networkInterfaces()).
//
// --pread-stat: /proc/<pid>/stat opened once per process and re-read with pread (no open and close
//   per collection); the directory /proc is still listed each time to find new processes.
// --sock-diag: /proc/net/tcp and tcp6 replaced by one netlink TCPDIAG_GETSOCK dump, which returns
//   both address families from one walk of the connection hash table (every state but TIME_WAIT).
//
// Prints one JSON object: CPU per collection (user, system, total) over RUNS collections, after
// two warm-up collections.
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/statfs.h>
#include <unistd.h>

#define MAX_OPS 65536
#define MAX_PID (1 << 22)

typedef struct {
  char kind;
  int reads;
  char path[512];
} op;

static char buf[65536];
static int stat_fd[MAX_PID]; // fd + 1; 0: not open
static long sink;            // keeps the compiler from dropping the reads

static int is_pid_stat(const char *p) {
  if (strncmp(p, "/proc/", 6) != 0 || p[6] < '0' || p[6] > '9') return 0;
  const char *slash = strchr(p + 6, '/');
  return slash && strcmp(slash, "/stat") == 0;
}

static void pread_stats(void) {
  DIR *d = opendir("/proc");
  if (!d) return;
  struct dirent *e;
  while ((e = readdir(d))) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    int pid = atoi(e->d_name);
    if (pid <= 0 || pid >= MAX_PID) continue;
    if (!stat_fd[pid]) {
      char p[64];
      snprintf(p, sizeof p, "/proc/%d/stat", pid);
      int fd = open(p, O_RDONLY | O_CLOEXEC);
      if (fd < 0) continue;
      stat_fd[pid] = fd + 1;
    }
    ssize_t n = pread(stat_fd[pid] - 1, buf, sizeof buf, 0);
    if (n < 0) { // the process is gone (a reused pid would be a new process: reopen next time)
      close(stat_fd[pid] - 1);
      stat_fd[pid] = 0;
    } else sink += n;
  }
  closedir(d);
}

static void tcp_diag(void) {
  int s = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
  if (s < 0) return;
  struct {
    struct nlmsghdr h;
    struct inet_diag_req r;
  } req;
  memset(&req, 0, sizeof req);
  req.h.nlmsg_len = sizeof req;
  req.h.nlmsg_type = TCPDIAG_GETSOCK;
  req.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  req.r.idiag_family = AF_INET;
  req.r.idiag_states = 0xfff & ~(1 << 6); // every TCP state but TIME_WAIT
  if (send(s, &req, sizeof req, 0) < 0) {
    close(s);
    return;
  }
  for (int done = 0; !done;) {
    ssize_t n = recv(s, buf, sizeof buf, 0);
    if (n <= 0) break;
    for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, n); h = NLMSG_NEXT(h, n)) {
      if (h->nlmsg_type == NLMSG_DONE || h->nlmsg_type == NLMSG_ERROR) {
        done = 1;
        break;
      }
      sink++;
    }
  }
  close(s);
}

static void replay(const op *ops, int n, int pread_stat, int sock_diag) {
  for (int i = 0; i < n; i++) {
    const op *o = &ops[i];
    if (pread_stat && ((o->kind == 'D' && strcmp(o->path, "/proc") == 0) || (o->kind == 'F' && is_pid_stat(o->path)))) continue;
    if (sock_diag && o->kind == 'F' && (strcmp(o->path, "/proc/net/tcp") == 0 || strcmp(o->path, "/proc/net/tcp6") == 0)) continue;
    if (o->kind == 'F') {
      int fd = open(o->path, O_RDONLY | O_CLOEXEC);
      if (fd < 0) continue;
      for (int k = 0; k < (o->reads > 0 ? o->reads : 1); k++) {
        ssize_t m = read(fd, buf, sizeof buf);
        if (m <= 0) break;
        sink += m;
      }
      close(fd);
    } else if (o->kind == 'D') {
      DIR *d = opendir(o->path);
      if (!d) continue;
      struct dirent *e;
      while ((e = readdir(d))) sink += e->d_name[0];
      closedir(d);
    } else if (o->kind == 'S') {
      struct statfs s;
      if (statfs(o->path, &s) == 0) sink += s.f_bsize;
    } else if (o->kind == 'L') {
      ssize_t m = readlink(o->path, buf, sizeof buf);
      if (m > 0) sink += m;
    } else if (o->kind == 'N') {
      struct ifaddrs *ifa;
      if (getifaddrs(&ifa) == 0) freeifaddrs(ifa);
    }
  }
  if (pread_stat) pread_stats();
  if (sock_diag) tcp_diag();
}

static double ms(struct timeval a, struct timeval b) {
  return (b.tv_sec - a.tv_sec) * 1e3 + (b.tv_usec - a.tv_usec) / 1e3;
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s OPS RUNS [--pread-stat] [--sock-diag]\n", argv[0]);
    return 2;
  }
  int pread_stat = 0, sock_diag = 0;
  for (int i = 3; i < argc; i++) {
    if (strcmp(argv[i], "--pread-stat") == 0) pread_stat = 1;
    else if (strcmp(argv[i], "--sock-diag") == 0) sock_diag = 1;
    else {
      fprintf(stderr, "unknown option %s\n", argv[i]);
      return 2;
    }
  }
  FILE *f = fopen(argv[1], "r");
  int runs = atoi(argv[2]);
  if (!f || runs <= 0) {
    fprintf(stderr, "cannot read %s, or RUNS is not a positive number\n", argv[1]);
    return 2;
  }
  static op ops[MAX_OPS];
  int n = 0;
  while (n < MAX_OPS && fscanf(f, " %c %d %511s", &ops[n].kind, &ops[n].reads, ops[n].path) == 3) n++;
  fclose(f);
  for (int w = 0; w < 2; w++) replay(ops, n, pread_stat, sock_diag);
  struct rusage a, b;
  getrusage(RUSAGE_SELF, &a);
  for (int r = 0; r < runs; r++) replay(ops, n, pread_stat, sock_diag);
  getrusage(RUSAGE_SELF, &b);
  double user = ms(a.ru_utime, b.ru_utime) / runs, sys = ms(a.ru_stime, b.ru_stime) / runs;
  printf("{\"ops\":%d,\"runs\":%d,\"userMs\":%.4f,\"sysMs\":%.4f,\"cpuMs\":%.4f,\"sink\":%ld}\n", n, runs, user, sys, user + sys, sink & 1);
  return 0;
}
