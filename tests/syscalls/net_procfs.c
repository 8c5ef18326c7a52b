/* /proc/net and /proc/sys/net as the stack describes itself: the
 * headers of tcp, tcp6, udp, udp6, route and dev, lo's lines in dev and
 * if_inet6 (their shape: counters differ), the tables of snmp and
 * netstat, and the sysctls programs read, with ip_local_port_range
 * written and read back. */
#include <fcntl.h>
#include <unistd.h>
#include "check.h"

static void first_line(const char *path) {
  char line[512];
  FILE *f = fopen(path, "r");
  if (!f) {
    printf("%s: %s\n", path, strerrorname_np(errno));
    return;
  }
  if (fgets(line, sizeof line, f))
    printf("%s: [%s]\n", path, line);
  fclose(f);
}

static void cat(const char *path) {
  char line[512];
  FILE *f = fopen(path, "r");
  if (!f) {
    printf("%s: %s\n", path, strerrorname_np(errno));
    return;
  }
  while (fgets(line, sizeof line, f))
    printf("%s: %s", path, line);
  fclose(f);
}

int main(void) {
  setvbuf(stdout, NULL, _IONBF, 0);
  first_line("/proc/net/tcp");
  first_line("/proc/net/tcp6");
  first_line("/proc/net/udp");
  first_line("/proc/net/udp6");
  first_line("/proc/net/route");

  char line[512];
  FILE *f = fopen("/proc/net/dev", "r");
  int n = 0;
  while (f && fgets(line, sizeof line, f)) {
    if (n++ < 2) {
      printf("dev header: %s", line);
      continue;
    }
    char name[32];
    unsigned long long v[16];
    int k = sscanf(line,
                   " %31[^:]: %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu "
                   "%llu %llu %llu",
                   name, &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7], &v[8], &v[9],
                   &v[10], &v[11], &v[12], &v[13], &v[14], &v[15]);
    if (strcmp(name, "lo") == 0)
      printf("dev lo: %d fields, name column '%.7s'\n", k, line);
  }
  if (f)
    fclose(f);

  f = fopen("/proc/net/if_inet6", "r");
  while (f && fgets(line, sizeof line, f))
    if (strstr(line, " lo\n"))
      printf("if_inet6: %s", line);
  if (f)
    fclose(f);

  const char *tables[] = {"/proc/net/snmp", "/proc/net/netstat"};
  for (int t = 0; t < 2; t++) {
    /* Lines of names alternate with lines of values: print the tag and
     * whether the two have as many words. */
    f = fopen(tables[t], "r");
    int names = 0;
    static char big[16384], prev[16384];
    int lineno = 0;
    while (f && fgets(big, sizeof big, f)) {
      if (strncmp(big, "IcmpMsg", 7) == 0 || strncmp(big, "MPTcpExt", 8) == 0) {
        lineno++;
        continue;
      }
      if (lineno++ % 2 == 0) {
        strcpy(prev, big);
        names++;
        continue;
      }
      int a = 0, b = 0;
      for (char *p = prev; *p; p++)
        a += *p == ' ';
      for (char *p = big; *p; p++)
        b += *p == ' ';
      char *colon = strchr(prev, ':');
      printf("%s: %.*s %s\n", tables[t], (int)(colon - prev), prev,
             a == b ? "names and values match" : "mismatch");
      if (strncmp(prev, "Tcp:", 4) == 0 || strncmp(prev, "Ip:", 3) == 0)
        printf("  names: %s", prev);
    }
    if (f)
      fclose(f);
  }

  cat("/proc/sys/net/core/somaxconn");
  cat("/proc/sys/net/ipv4/tcp_fin_timeout");
  cat("/proc/sys/net/ipv4/tcp_keepalive_time");
  cat("/proc/sys/net/ipv4/tcp_keepalive_intvl");
  cat("/proc/sys/net/ipv4/tcp_keepalive_probes");
  cat("/proc/sys/net/ipv4/tcp_syn_retries");
  cat("/proc/sys/net/ipv6/conf/all/disable_ipv6");
  cat("/proc/sys/net/ipv6/conf/lo/disable_ipv6");
  cat("/proc/sys/net/ipv6/bindv6only");

  char old[64] = {0};
  int fd = open("/proc/sys/net/ipv4/ip_local_port_range", O_RDWR);
  CHECK(read(fd, old, sizeof old - 1));
  CHECK(pwrite(fd, "40000 50000\n", 12, 0));
  cat("/proc/sys/net/ipv4/ip_local_port_range");
  CHECK(pwrite(fd, "50000 40000\n", 12, 0));
  CHECK(pwrite(fd, "0 40000\n", 8, 0));
  CHECK(pwrite(fd, "x\n", 2, 0));
  cat("/proc/sys/net/ipv4/ip_local_port_range");
  CHECK(pwrite(fd, old, strlen(old), 0));
  close(fd);
  return 0;
}
