/* make bench, contender core-ffi: no HTTP, <threads> threads calling tg_publish through the C ABI
 * (include/topicgate.h, linked against target/release/libtopicgate.a) in one process.
 *
 * usage: core_ffi <config.json> <topic> <payload.json> <threads> <seconds> <rate> <warmup_ms>
 *   rate 0: closed loop, each thread publishes again as soon as its record is acknowledged;
 *   rate R: R records/s in total, each thread on its own fixed schedule (threads/R apart).
 * First <warmup_ms> of publishing is not measured (its records are counted in "ok").
 * Prints one JSON line: ok, errors, measured (records in the measured window), rps, p50_ms,
 * p99_ms, max_ms, cpu_s (user+sys of this process in the measured window), rss_mb (peak). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "topicgate.h"

static tg_publisher *publisher;
static const char *topic;
static char *payload;
static size_t payload_len;
static int threads;
static double rate, t_start, t_measure, t_end;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int first_error_printed;

/* One thread's results; latencies of the measured window in ms. */
typedef struct {
  long index; /* thread number, for the fixed-rate schedule */
  long ok, errors, measured;
  double *lat;
  size_t n, cap;
} worker_result;

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_until(double t) {
  double d = t - now();
  if (d <= 0) return;
  struct timespec ts = {(time_t)d, (long)((d - (double)(time_t)d) * 1e9)};
  nanosleep(&ts, NULL);
}

static void push(worker_result *r, double ms) {
  if (r->n == r->cap) {
    r->cap = r->cap ? r->cap * 2 : 4096;
    r->lat = realloc(r->lat, r->cap * sizeof *r->lat);
    if (!r->lat) abort();
  }
  r->lat[r->n++] = ms;
}

static void *worker(void *arg) {
  worker_result *r = arg;
  double period = rate > 0 ? threads / rate : 0;
  double next = t_start + (rate > 0 ? r->index * period / threads : 0);
  for (;;) {
    if (rate > 0) {
      if (next >= t_end) break;
      sleep_until(next);
      next += period;
    } else if (now() >= t_end) {
      break;
    }
    char err[512];
    tg_delivery d;
    double t0 = now();
    tg_status s = tg_publish(publisher, (const uint8_t *)topic, strlen(topic), (const uint8_t *)payload, payload_len,
                             NULL, 0, NULL, 0, &d, err, sizeof err);
    double t1 = now();
    if (s != TG_STATUS_OK) {
      r->errors++;
      pthread_mutex_lock(&lock);
      if (!first_error_printed) {
        fprintf(stderr, "core_ffi: tg_publish: %d: %s\n", (int)s, err);
        first_error_printed = 1;
      }
      pthread_mutex_unlock(&lock);
      continue;
    }
    r->ok++;
    if (t0 >= t_measure) {
      r->measured++;
      push(r, (t1 - t0) * 1000.0);
    }
  }
  return NULL;
}

static char *read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *buf = malloc((size_t)n + 1);
  *len = fread(buf, 1, (size_t)n, f);
  buf[*len] = 0;
  fclose(f);
  return buf;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double cpu_seconds(void) {
  struct rusage u;
  getrusage(RUSAGE_SELF, &u);
  return (double)u.ru_utime.tv_sec + u.ru_utime.tv_usec / 1e6 + (double)u.ru_stime.tv_sec + u.ru_stime.tv_usec / 1e6;
}

int main(int argc, char **argv) {
  if (argc != 8) {
    fprintf(stderr, "usage: %s <config.json> <topic> <payload.json> <threads> <seconds> <rate> <warmup_ms>\n", argv[0]);
    return 2;
  }
  topic = argv[2];
  threads = atoi(argv[4]);
  double seconds = atof(argv[5]);
  rate = atof(argv[6]);
  double warmup = atof(argv[7]) / 1000.0;
  if (threads < 1 || threads > 4096 || seconds <= 0 || seconds > 3600 || rate < 0) {
    fprintf(stderr, "core_ffi: bad arguments\n");
    return 2;
  }
  size_t config_len = 0;
  char *config = read_file(argv[1], &config_len);
  payload = read_file(argv[3], &payload_len);
  if (!config || !payload) {
    fprintf(stderr, "core_ffi: cannot read %s or %s\n", argv[1], argv[3]);
    return 2;
  }
  char err[512];
  if (tg_publisher_new((const uint8_t *)config, config_len, &publisher, err, sizeof err) != TG_STATUS_OK) {
    fprintf(stderr, "core_ffi: tg_publisher_new: %s\n", err);
    return 1;
  }

  worker_result *res = calloc((size_t)threads, sizeof *res);
  pthread_t *tid = calloc((size_t)threads, sizeof *tid);
  t_start = now();
  t_measure = t_start + warmup;
  t_end = t_measure + seconds;
  double cpu0 = 0;
  for (long i = 0; i < threads; i++) {
    res[i].index = i;
    pthread_create(&tid[i], NULL, worker, &res[i]);
  }
  sleep_until(t_measure);
  cpu0 = cpu_seconds();
  for (int i = 0; i < threads; i++) pthread_join(tid[i], NULL);
  double t_done = now();
  double cpu = cpu_seconds() - cpu0;

  long ok = 0, errors = 0, measured = 0;
  size_t n = 0;
  for (int i = 0; i < threads; i++) {
    ok += res[i].ok;
    errors += res[i].errors;
    measured += res[i].measured;
    n += res[i].n;
  }
  double *all = malloc((n ? n : 1) * sizeof *all);
  size_t k = 0;
  for (int i = 0; i < threads; i++) {
    memcpy(all + k, res[i].lat, res[i].n * sizeof *all);
    k += res[i].n;
  }
  qsort(all, n, sizeof *all, cmp_double);
  double p50 = n ? all[(size_t)((n - 1) * 0.50)] : 0, p99 = n ? all[(size_t)((n - 1) * 0.99)] : 0;
  double mx = n ? all[n - 1] : 0;
  struct rusage u;
  getrusage(RUSAGE_SELF, &u);
  printf("{\"ok\":%ld,\"errors\":%ld,\"measured\":%ld,\"elapsed_s\":%.3f,\"rps\":%.1f,\"p50_ms\":%.3f,\"p99_ms\":%.3f,"
         "\"max_ms\":%.3f,\"cpu_s\":%.3f,\"rss_mb\":%.1f}\n",
         ok, errors, measured, t_done - t_measure, measured / (t_done - t_measure), p50, p99, mx, cpu,
         u.ru_maxrss / 1024.0);
  fflush(stdout);
  tg_publisher_free(publisher);
  return errors ? 1 : 0;
}
