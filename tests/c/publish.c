/* Proves the C ABI from C: publishes to a real broker through include/topicgate.h and libtopicgate.
 *
 * usage: publish <config.json> <topic> <threads> <per_thread>
 * Publishes the classic record once (key "messageKey", four headers: my_key=myvalue, bin=00 ff 80,
 * my_key=42, empty=) and prints
 *   classic <partition> <offset>
 * then <threads> threads each publish <per_thread> records {"sample_message":"t<i>-<j>"} with key "t<i>-<j>"
 * and print one line per record: record <key> <partition> <offset>
 * then starts <threads>*<per_thread> records with keys "a<i>" through tg_publish_start (token i) and
 * collects their completions with tg_publisher_completions, printing the same record lines.
 * It also checks that NULL and invalid UTF-8 are refused with 400 and a message. Exit 0 only if all is as expected. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "topicgate.h"

#define S(str) (const uint8_t *)(str), strlen(str)

static tg_publisher *publisher;
static const char *topic;
static int per_thread;
static pthread_mutex_t out_lock = PTHREAD_MUTEX_INITIALIZER;
static int failures;

static void fail(const char *what, tg_status got, const char *err) {
  pthread_mutex_lock(&out_lock);
  fprintf(stderr, "FAIL %s: status %d: %s\n", what, (int)got, err);
  failures++;
  pthread_mutex_unlock(&out_lock);
}

static void *worker(void *arg) {
  long t = (long)arg;
  for (int j = 0; j < per_thread; j++) {
    char key[64], body[128], err[256];
    snprintf(key, sizeof key, "t%ld-%d", t, j);
    snprintf(body, sizeof body, "{\"sample_message\":\"%s\"}", key);
    tg_delivery d = {-1, -1};
    tg_status s = tg_publish(publisher, S(topic), S(body), NULL, 0, S(key), &d, err, sizeof err);
    if (s != TG_STATUS_OK) {
      fail(key, s, err);
      continue;
    }
    pthread_mutex_lock(&out_lock);
    printf("record %s %d %lld\n", key, d.partition, (long long)d.offset);
    pthread_mutex_unlock(&out_lock);
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
  fclose(f);
  return buf;
}

int main(int argc, char **argv) {
  if (argc != 5) {
    fprintf(stderr, "usage: %s <config.json> <topic> <threads> <per_thread>\n", argv[0]);
    return 2;
  }
  topic = argv[2];
  int threads = atoi(argv[3]);
  per_thread = atoi(argv[4]);
  size_t config_len = 0;
  char *config = read_file(argv[1], &config_len);
  if (!config) {
    fprintf(stderr, "cannot read %s\n", argv[1]);
    return 2;
  }
  char err[512];
  printf("version %s\n", tg_version());

  /* A bad config is refused with a message naming the key, and no handle. */
  tg_publisher *bad = (tg_publisher *)1;
  tg_status s = tg_publisher_new(S("{\"kafka\":{}}"), &bad, err, sizeof err);
  if (s != TG_STATUS_BAD_REQUEST || bad != NULL || !strstr(err, "bootstrap_servers")) fail("bad config", s, err);

  s = tg_publisher_new((const uint8_t *)config, config_len, &publisher, err, sizeof err);
  if (s != TG_STATUS_OK) {
    fail("tg_publisher_new", s, err);
    return 1;
  }

  /* NULL body and invalid UTF-8 are 400s, not crashes. */
  s = tg_publish(publisher, S(topic), NULL, 0, NULL, 0, NULL, 0, NULL, err, sizeof err);
  if (s != TG_STATUS_BAD_REQUEST || !strstr(err, "body: NULL")) fail("NULL body", s, err);
  s = tg_publish(publisher, S(topic), (const uint8_t *)"{\"a\":\"\xc3\x28\"}", 10, NULL, 0, NULL, 0, NULL, err, sizeof err);
  if (s != TG_STATUS_BAD_REQUEST || !strstr(err, "UTF-8")) fail("invalid UTF-8", s, err);

  /* Headers are (name, bytes) pairs, kept in order with duplicates; a value is any bytes. */
  static const uint8_t binary[] = {0x00, 0xff, 0x80};
  const tg_header headers[] = {
      {S("my_key"), S("myvalue")},
      {S("bin"), binary, sizeof binary},
      {S("my_key"), S("42")},
      {S("empty"), NULL, 0},
  };
  tg_header bad_name = {(const uint8_t *)"\xff", 1, NULL, 0};
  s = tg_publish(publisher, S(topic), S("{\"sample_message\":\"x\"}"), &bad_name, 1, NULL, 0, NULL, err, sizeof err);
  if (s != TG_STATUS_BAD_REQUEST || !strstr(err, "header #1 name: not valid UTF-8")) fail("non-UTF-8 header name", s, err);

  tg_delivery d = {-1, -1};
  s = tg_publish(publisher, S(topic), S("{\"sample_message\":\"hello world\"}"),
                 headers, sizeof headers / sizeof headers[0], S("messageKey"), &d, err, sizeof err);
  if (s != TG_STATUS_OK) fail("classic publish", s, err);
  else printf("classic %d %lld\n", d.partition, (long long)d.offset);

  pthread_t *ids = calloc((size_t)threads, sizeof *ids);
  for (long t = 0; t < threads; t++) pthread_create(&ids[t], NULL, worker, (void *)t);
  for (int t = 0; t < threads; t++) pthread_join(ids[t], NULL);

  /* Asynchronous: start every record, then collect the completions; each token exactly once. */
  int total = threads * per_thread;
  char *seen = calloc((size_t)total, 1);
  for (int i = 0; i < total; i++) {
    char key[32], body[96];
    snprintf(key, sizeof key, "a%d", i);
    snprintf(body, sizeof body, "{\"sample_message\":\"%s\"}", key);
    s = tg_publish_start(publisher, S(topic), S(body), NULL, 0, S(key), -1, -1, (uint64_t)i, err, sizeof err);
    if (s != TG_STATUS_OK) fail("tg_publish_start", s, err);
  }
  /* Refused at the start: no completion follows for its token. */
  s = tg_publish_start(publisher, S(topic), S("{\"sample_message\":1}"), NULL, 0, NULL, 0, -1, -1, (uint64_t)total, err, sizeof err);
  if (s != TG_STATUS_BAD_REQUEST || !strstr(err, "sample_message")) fail("bad start", s, err);
  tg_completion done[16];
  int collected = 0;
  for (int polls = 0; collected < total && polls < 600; polls++) {
    size_t n = 0;
    s = tg_publisher_completions(publisher, done, 16, &n, 100);
    if (s != TG_STATUS_OK) fail("tg_publisher_completions", s, "");
    for (size_t k = 0; k < n; k++) {
      uint64_t token = done[k].token;
      if (token >= (uint64_t)total || seen[token]) {
        fail("unexpected or repeated token", done[k].status, done[k].message);
        continue;
      }
      seen[token] = 1;
      collected++;
      if (done[k].status != TG_STATUS_OK) fail("async delivery", done[k].status, done[k].message);
      else printf("record a%llu %d %lld\n", (unsigned long long)token, done[k].delivery.partition, (long long)done[k].delivery.offset);
    }
  }
  if (collected != total) fail("not every completion arrived", TG_STATUS_TIMEOUT, "");
  size_t extra = 99;
  s = tg_publisher_completions(publisher, done, 16, &extra, 200);
  if (s != TG_STATUS_OK || extra != 0) fail("a completion after the last one", s, "");
  free(seen);

  s = tg_publisher_flush(publisher, 5000, err, sizeof err);
  if (s != TG_STATUS_OK) fail("flush", s, err);
  tg_publisher_free(publisher);
  free(ids);
  free(config);
  fflush(stdout);
  return failures ? 1 : 0;
}
