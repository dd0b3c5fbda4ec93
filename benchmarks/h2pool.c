/* h2pool: gRPC unary calls over h2c (HTTP/2 without TLS), cycling through a pool of bodies.
 *
 *   h2pool -p PORT -P PATH -b BODIES [-c CONNECTIONS] [-m STREAMS] [-D SECONDS]
 *          [-w WARM_UP_SECONDS] [-r REQUESTS_PER_SECOND] [-l LOG_FILE]
 *
 * h2load sends one request body per process; a load test of many distinct requests needs
 * a client that sends a different body on every call, at the cost of h2load (a few µs per
 * call, in C), not of a gRPC client in Python, which costs about as much CPU per call as
 * the servers it would measure. BODIES holds gRPC length-prefixed messages back to back
 * (a 0 byte, a 4-byte big-endian length, the serialized message), the same bytes as
 * h2load's -d files; they are sent in order, round robin over all CONNECTIONS, each
 * connection keeping STREAMS calls in flight (closed loop), or, with -r, starting calls at
 * that total rate (open loop while a stream is free; calls owed while none is free start
 * as soon as one is).
 *
 * Calls completed in the measured window (after the warm-up, for SECONDS) are counted.
 * It prints h2load's "requests:" line so that both are read the same way, except that
 * "succeeded" here means HTTP 200 with grpc-status 0. The log file gets one line per
 * counted call, as h2load's --log-file plus a fourth column: start (µs since the epoch),
 * HTTP status, duration (µs), grpc-status (-1 when the server sent none).
 *
 * Build: cc -O2 -o h2pool h2pool.c -lnghttp2 (Debian libnghttp2-dev).
 * Exit code 0 when the run completed (whatever the calls answered), 1 on a connection or
 * usage error.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <nghttp2/nghttp2.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONNECTIONS 1024
#define DRAIN_S 10.0 /* after the window, how long calls in flight get to finish */

struct body {
  const uint8_t *data;
  size_t len;
};

struct record {
  int64_t start_us; /* realtime, for the log */
  int32_t duration_us;
  int16_t http_status;
  int16_t grpc_status;
};

struct stream {
  struct body body;
  size_t sent;
  double t0; /* monotonic seconds */
  int64_t start_us;
  int http_status;
  int grpc_status;
};

struct conn {
  int fd;
  nghttp2_session *session;
  int inflight;
  uint8_t *out;
  size_t out_len, out_cap;
  int want_out; /* EPOLLOUT registered */
};

static struct {
  struct body *bodies;
  size_t nbodies, next_body;
  const char *path;
  char authority[64];
  int streams;
  double rate; /* 0: closed loop */
  double window_start, window_end;
  int stopping;
  long long started, done, succeeded, failed;
  struct record *records;
  size_t nrecords, cap_records;
} g;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int64_t epoch_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void die(const char *what) {
  fprintf(stderr, "h2pool: %s\n", what);
  exit(1);
}

static void *xrealloc(void *p, size_t n) {
  void *q = realloc(p, n);
  if (q == NULL) die("out of memory");
  return q;
}

static void load_bodies(const char *file) {
  FILE *f = fopen(file, "rb");
  if (f == NULL) die("cannot open the bodies file");
  struct stat st;
  if (fstat(fileno(f), &st) != 0 || st.st_size == 0) die("the bodies file is empty");
  uint8_t *data = xrealloc(NULL, (size_t)st.st_size);
  if (fread(data, 1, (size_t)st.st_size, f) != (size_t)st.st_size) die("cannot read the bodies file");
  fclose(f);
  size_t off = 0, cap = 0;
  while (off < (size_t)st.st_size) {
    if ((size_t)st.st_size - off < 5) die("bodies file: truncated gRPC prefix");
    size_t n = ((size_t)data[off + 1] << 24) | ((size_t)data[off + 2] << 16) |
               ((size_t)data[off + 3] << 8) | data[off + 4];
    if (data[off] != 0 || (size_t)st.st_size - off - 5 < n) die("bodies file: bad gRPC frame");
    if (g.nbodies == cap) {
      cap = cap ? cap * 2 : 1024;
      g.bodies = xrealloc(g.bodies, cap * sizeof *g.bodies);
    }
    g.bodies[g.nbodies++] = (struct body){data + off, 5 + n};
    off += 5 + n;
  }
}

static ssize_t read_body(nghttp2_session *session, int32_t stream_id, uint8_t *buf, size_t length,
                         uint32_t *flags, nghttp2_data_source *source, void *user_data) {
  (void)session, (void)stream_id, (void)user_data;
  struct stream *s = source->ptr;
  size_t n = s->body.len - s->sent;
  if (n > length) n = length;
  memcpy(buf, s->body.data + s->sent, n);
  s->sent += n;
  if (s->sent == s->body.len) *flags |= NGHTTP2_DATA_FLAG_EOF;
  return (ssize_t)n;
}

#define HEADER(n, v) \
  { (uint8_t *)(n), (uint8_t *)(v), strlen(n), strlen(v), NGHTTP2_NV_FLAG_NONE }

static void start_call(struct conn *c) {
  struct stream *s = xrealloc(NULL, sizeof *s);
  s->body = g.bodies[g.next_body++ % g.nbodies];
  s->sent = 0;
  s->t0 = now_s();
  s->start_us = epoch_us();
  s->http_status = 0;
  s->grpc_status = -1;
  nghttp2_nv headers[] = {
      HEADER(":method", "POST"),          HEADER(":scheme", "http"),
      HEADER(":authority", g.authority),  HEADER(":path", g.path),
      HEADER("content-type", "application/grpc"), HEADER("te", "trailers"),
  };
  nghttp2_data_provider provider = {.source.ptr = s, .read_callback = read_body};
  if (nghttp2_submit_request(c->session, NULL, headers, 6, &provider, s) < 0) die("submit failed");
  c->inflight++;
  g.started++;
}

static int on_header(nghttp2_session *session, const nghttp2_frame *frame, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                     void *user_data) {
  (void)flags, (void)user_data;
  if (frame->hd.type != NGHTTP2_HEADERS) return 0;
  struct stream *s = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
  if (s == NULL) return 0;
  char text[16];
  size_t n = valuelen < sizeof text - 1 ? valuelen : sizeof text - 1;
  memcpy(text, value, n);
  text[n] = 0;
  if (namelen == 7 && memcmp(name, ":status", 7) == 0) s->http_status = atoi(text);
  if (namelen == 11 && memcmp(name, "grpc-status", 11) == 0) s->grpc_status = atoi(text);
  return 0;
}

static int on_data(nghttp2_session *session, uint8_t flags, int32_t stream_id, const uint8_t *data,
                   size_t len, void *user_data) {
  (void)session, (void)flags, (void)stream_id, (void)data, (void)len, (void)user_data;
  return 0; /* the answer itself is not read: the servers were checked before the run */
}

static int on_close(nghttp2_session *session, int32_t stream_id, uint32_t error_code,
                    void *user_data) {
  struct conn *c = user_data;
  struct stream *s = nghttp2_session_get_stream_user_data(session, stream_id);
  if (s == NULL) return 0;
  double t1 = now_s();
  c->inflight--;
  if (t1 >= g.window_start && t1 <= g.window_end) {
    int ok = error_code == 0 && s->http_status == 200 && s->grpc_status == 0;
    g.done++;
    if (ok) g.succeeded++;
    else g.failed++;
    if (g.nrecords == g.cap_records) {
      g.cap_records = g.cap_records ? g.cap_records * 2 : 65536;
      g.records = xrealloc(g.records, g.cap_records * sizeof *g.records);
    }
    g.records[g.nrecords++] = (struct record){s->start_us, (int32_t)((t1 - s->t0) * 1e6),
                                              (int16_t)s->http_status, (int16_t)s->grpc_status};
  }
  free(s);
  return 0;
}

static void conn_flush(struct conn *c, int epfd) {
  for (;;) {
    while (c->out_len < 65536) {
      const uint8_t *data;
      ssize_t n = nghttp2_session_mem_send(c->session, &data);
      if (n < 0) die("HTTP/2 session error");
      if (n == 0) break;
      if (c->out_len + (size_t)n > c->out_cap) {
        c->out_cap = (c->out_len + (size_t)n) * 2;
        c->out = xrealloc(c->out, c->out_cap);
      }
      memcpy(c->out + c->out_len, data, (size_t)n);
      c->out_len += (size_t)n;
    }
    if (c->out_len == 0) break;
    ssize_t w = send(c->fd, c->out, c->out_len, MSG_NOSIGNAL);
    if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    if (w < 0) die("send failed: connection lost");
    memmove(c->out, c->out + w, c->out_len - (size_t)w);
    c->out_len -= (size_t)w;
  }
  int want = c->out_len > 0;
  if (want != c->want_out) {
    struct epoll_event ev = {.events = EPOLLIN | (want ? EPOLLOUT : 0), .data.ptr = c};
    epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
    c->want_out = want;
  }
}

static void conn_open(struct conn *c, int port, int epfd) {
  c->fd = socket(AF_INET, SOCK_STREAM, 0);
  if (c->fd < 0) die("socket failed");
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(c->fd, (struct sockaddr *)&addr, sizeof addr) != 0) die("cannot connect");
  int one = 1;
  setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
  nghttp2_session_callbacks *cb;
  nghttp2_session_callbacks_new(&cb);
  nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data);
  nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_close);
  if (nghttp2_session_client_new(&c->session, cb, c) != 0) die("session failed");
  nghttp2_session_callbacks_del(cb);
  nghttp2_settings_entry settings[] = {
      {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 100},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, (1U << 30) - 1},
  };
  nghttp2_submit_settings(c->session, NGHTTP2_FLAG_NONE, settings, 2);
  nghttp2_session_set_local_window_size(c->session, NGHTTP2_FLAG_NONE, 0, (1 << 30) - 1);
  struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
  epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev);
}

static void conn_read(struct conn *c) {
  uint8_t buf[65536];
  for (;;) {
    ssize_t n = recv(c->fd, buf, sizeof buf, 0);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    if (n <= 0) die("connection closed by the server");
    if (nghttp2_session_mem_recv(c->session, buf, (size_t)n) < 0) die("HTTP/2 protocol error");
  }
}

static void usage(void) {
  fprintf(stderr,
          "usage: h2pool -p PORT -P PATH -b BODIES [-c CONNECTIONS] [-m STREAMS] [-D SECONDS]\n"
          "              [-w WARM_UP_SECONDS] [-r REQUESTS_PER_SECOND] [-l LOG_FILE]\n");
  exit(1);
}

int main(int argc, char **argv) {
  int port = 0, nconns = 1, opt;
  double duration = 10, warm_up = 0;
  const char *bodies = NULL, *log_file = NULL;
  g.streams = 1;
  while ((opt = getopt(argc, argv, "p:P:b:c:m:D:w:r:l:")) != -1) {
    switch (opt) {
      case 'p': port = atoi(optarg); break;
      case 'P': g.path = optarg; break;
      case 'b': bodies = optarg; break;
      case 'c': nconns = atoi(optarg); break;
      case 'm': g.streams = atoi(optarg); break;
      case 'D': duration = atof(optarg); break;
      case 'w': warm_up = atof(optarg); break;
      case 'r': g.rate = atof(optarg); break;
      case 'l': log_file = optarg; break;
      default: usage();
    }
  }
  if (port <= 0 || g.path == NULL || bodies == NULL || nconns < 1 || nconns > MAX_CONNECTIONS ||
      g.streams < 1 || duration <= 0 || warm_up < 0 || g.rate < 0)
    usage();
  load_bodies(bodies);
  snprintf(g.authority, sizeof g.authority, "127.0.0.1:%d", port);

  int epfd = epoll_create1(0);
  struct conn *conns = calloc((size_t)nconns, sizeof *conns);
  if (conns == NULL) die("out of memory");
  for (int i = 0; i < nconns; i++) conn_open(&conns[i], port, epfd);

  double t_start = now_s();
  g.window_start = t_start + warm_up;
  g.window_end = g.window_start + duration;
  long long owed_base = 0; /* rate mode: calls started so far */
  int rr = 0;
  struct epoll_event events[MAX_CONNECTIONS];
  for (;;) {
    double t = now_s();
    if (t >= g.window_end) g.stopping = 1;
    if (!g.stopping) {
      if (g.rate > 0) {
        long long due = (long long)((t - t_start) * g.rate) - owed_base;
        for (int tries = 0; due > 0 && tries < nconns;) {
          struct conn *c = &conns[rr];
          rr = (rr + 1) % nconns;
          if (c->inflight < g.streams) {
            start_call(c);
            owed_base++;
            due--;
            tries = 0;
          } else {
            tries++;
          }
        }
      } else {
        for (int i = 0; i < nconns; i++)
          while (conns[i].inflight < g.streams) start_call(&conns[i]);
      }
    }
    int busy = 0;
    for (int i = 0; i < nconns; i++) {
      conn_flush(&conns[i], epfd);
      busy += conns[i].inflight;
    }
    if (g.stopping && (busy == 0 || t > g.window_end + DRAIN_S)) break;
    int timeout_ms = g.rate > 0 ? 1 : 100;
    int n = epoll_wait(epfd, events, MAX_CONNECTIONS, timeout_ms);
    for (int i = 0; i < n; i++) {
      struct conn *c = events[i].data.ptr;
      if (events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) conn_read(c);
    }
  }

  for (int i = 0; i < nconns; i++) {
    nghttp2_session_terminate_session(conns[i].session, NGHTTP2_NO_ERROR);
    conn_flush(&conns[i], epfd);
    close(conns[i].fd);
    nghttp2_session_del(conns[i].session);
  }
  if (log_file != NULL) {
    FILE *log = fopen(log_file, "w");
    if (log == NULL) die("cannot write the log file");
    for (size_t i = 0; i < g.nrecords; i++) {
      struct record *r = &g.records[i];
      fprintf(log, "%lld\t%d\t%d\t%d\n", (long long)r->start_us, r->http_status, r->duration_us,
              r->grpc_status);
    }
    fclose(log);
  }
  printf("h2pool: %zu distinct bodies, %d connections x %d streams%s\n", g.nbodies, nconns,
         g.streams, g.rate > 0 ? ", rate-limited" : "");
  printf("finished in %.2fs, %.2f req/s\n", duration, (double)g.done / duration);
  printf("requests: %lld total, %lld started, %lld done, %lld succeeded, %lld failed, 0 errored, "
         "0 timeout\n",
         g.started, g.started, g.done, g.succeeded, g.failed);
  return 0;
}
