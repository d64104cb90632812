/*
 * The TURN data plane's ChannelData fast path (RFC 8656 section 12): datagrams of bound channels
 * are forwarded here, in C, and never enter JavaScript. Everything else that arrives on a socket
 * given to this module (STUN requests, Send indications, ChannelData this module has no live
 * binding for, peer datagrams without a channel) is handed to the socket's JavaScript callback,
 * which decides as before (apps/turn/src/data-plane/data-plane.ts). So this module is a cache of
 * the control plane's decisions: it forwards only what JavaScript told it (routes, channels,
 * expiry times), and drops nothing that JavaScript would have relayed.
 *
 * Sockets are dgram's, by file descriptor: each is dup()ed and polled on the loop of the Node
 * environment that opened it; dgram's own reading is stopped by the caller. Sends that would block
 * are dropped (UDP), and counted.
 *
 * Every input is hostile: a datagram is read into a fixed buffer, its length checks come before
 * any read of its fields, and the work per wake-up is bounded (MAX_ROUNDS batches of BATCH).
 */
#define _GNU_SOURCE
#ifndef __linux__
#error "udp-relay is written and tested for Linux (recvmmsg, getrandom): apps/turn relays in JavaScript elsewhere"
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <node_api.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#define BATCH 16
#define MAX_ROUNDS 4
#define DATAGRAM_BYTES 65536
/* channels kept here per allocation; more are relayed by JavaScript */
#define CHANNELS 8
#define MIN_BUCKETS 64

enum { COUNT_TO_PEER_BYTES, COUNT_TO_PEER_PACKETS, COUNT_TO_CLIENT_BYTES, COUNT_TO_CLIENT_PACKETS, COUNT_SEND_DROPS, COUNT_TO_JS, COUNTERS };

typedef struct {
  uint16_t number;
  struct sockaddr_storage peer;
  socklen_t peer_len;
  double expires; /* ms since the epoch, as Date.now() */
} channel_t;

typedef struct relay_state relay_state;

typedef struct fr_socket {
  uv_poll_t poll;
  relay_state *state;
  int fd;
  uint32_t id;
  int family;
  int is_relay; /* a relay socket (peers' datagrams), else a listening socket (clients') */
  int closing;
  napi_ref callback;
  /* a relay socket's allocation: its client, on listening socket `listener` */
  int routed;
  uint32_t listener;
  struct sockaddr_storage client;
  socklen_t client_len;
  uint32_t hash;
  struct fr_socket *next; /* in the client table's bucket */
  int channel_count;
  channel_t channels[CHANNELS];
  /* what this socket's datagrams caused, since the last counters() or close() */
  double counters[COUNTERS];
} fr_socket;

struct relay_state {
  napi_env env;
  uv_loop_t *loop;
  fr_socket **sockets; /* by id; NULL when free */
  uint32_t socket_capacity;
  fr_socket **buckets; /* client table: (listener, client address) -> relay socket */
  uint32_t bucket_count;
  uint32_t routed_count;
  uint32_t seed;
  napi_ref resource;
  napi_async_context async;
  unsigned char *rx;
  struct mmsghdr msgs[BATCH];
  struct iovec iov[BATCH];
  struct sockaddr_storage from[BATCH];
};

/* ---- helpers ------------------------------------------------------------------------------ */

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_REALTIME, &t);
  return (double)t.tv_sec * 1000.0 + (double)(t.tv_nsec / 1000000);
}

static int same_address(const struct sockaddr_storage *a, const struct sockaddr_storage *b) {
  if (a->ss_family != b->ss_family) return 0;
  if (a->ss_family == AF_INET) {
    const struct sockaddr_in *x = (const struct sockaddr_in *)a, *y = (const struct sockaddr_in *)b;
    return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
  }
  if (a->ss_family == AF_INET6) {
    const struct sockaddr_in6 *x = (const struct sockaddr_in6 *)a, *y = (const struct sockaddr_in6 *)b;
    return x->sin6_port == y->sin6_port && x->sin6_scope_id == y->sin6_scope_id && memcmp(&x->sin6_addr, &y->sin6_addr, 16) == 0;
  }
  return 0;
}

/* FNV-1a over the listener id and the address from a per-process random seed, then mixed */
static uint32_t client_hash(const relay_state *st, uint32_t listener, const struct sockaddr_storage *a) {
  uint32_t h = 2166136261u ^ st->seed;
  const unsigned char *p;
  size_t n;
  uint16_t port;
  if (a->ss_family == AF_INET) {
    const struct sockaddr_in *x = (const struct sockaddr_in *)a;
    p = (const unsigned char *)&x->sin_addr;
    n = 4;
    port = x->sin_port;
  } else {
    const struct sockaddr_in6 *x = (const struct sockaddr_in6 *)a;
    p = (const unsigned char *)&x->sin6_addr;
    n = 16;
    port = x->sin6_port;
  }
  for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 16777619u;
  h = (h ^ (port & 0xff)) * 16777619u;
  h = (h ^ (port >> 8)) * 16777619u;
  for (int i = 0; i < 4; i++) h = (h ^ ((listener >> (8 * i)) & 0xff)) * 16777619u;
  /* murmur3's finaliser: the bucket index (low bits) then depends on every bit of the seed and the key */
  h ^= h >> 16;
  h *= 0x85ebca6bu;
  h ^= h >> 13;
  h *= 0xc2b2ae35u;
  h ^= h >> 16;
  return h;
}

static fr_socket *socket_of(relay_state *st, uint32_t id) {
  if (id >= st->socket_capacity) return NULL;
  fr_socket *s = st->sockets[id];
  return s && !s->closing ? s : NULL;
}

static fr_socket *client_lookup(relay_state *st, uint32_t listener, const struct sockaddr_storage *a) {
  if (st->bucket_count == 0) return NULL;
  uint32_t h = client_hash(st, listener, a);
  for (fr_socket *s = st->buckets[h & (st->bucket_count - 1)]; s; s = s->next) {
    if (s->hash == h && s->listener == listener && same_address(&s->client, a)) return s;
  }
  return NULL;
}

static void unroute(relay_state *st, fr_socket *s) {
  if (!s->routed) return;
  fr_socket **p = &st->buckets[s->hash & (st->bucket_count - 1)];
  while (*p && *p != s) p = &(*p)->next;
  if (*p) *p = s->next;
  s->next = NULL;
  s->routed = 0;
  st->routed_count--;
}

/* Puts a relay socket at the head of its bucket (its hash is set). */
static void link_client(fr_socket **buckets, uint32_t count, fr_socket *s) {
  fr_socket **head = &buckets[s->hash & (count - 1)];
  s->next = *head;
  *head = s;
}

static int grow_buckets(relay_state *st) {
  uint32_t count = st->bucket_count ? st->bucket_count * 2 : MIN_BUCKETS;
  fr_socket **buckets = calloc(count, sizeof *buckets);
  if (!buckets) return -1;
  for (uint32_t i = 0; i < st->bucket_count; i++) {
    fr_socket *s = st->buckets[i];
    while (s) {
      fr_socket *next = s->next;
      link_client(buckets, count, s);
      s = next;
    }
  }
  free(st->buckets);
  st->buckets = buckets;
  st->bucket_count = count;
  return 0;
}

/* Counts a send: relayed when the kernel took it, else dropped (UDP: nothing is queued here). */
static void count_send(fr_socket *s, ssize_t sent, int bytes_counter, size_t bytes) {
  if (sent < 0) {
    s->counters[COUNT_SEND_DROPS] += 1;
    return;
  }
  s->counters[bytes_counter] += (double)bytes;
  s->counters[bytes_counter + 1] += 1;
}

/* ---- the data path ------------------------------------------------------------------------- */

/* Hands one datagram to the socket's JavaScript callback (buffer, address, port), inside the
 * callback scope opened by on_readable. */
static void to_js(relay_state *st, fr_socket *s, const unsigned char *data, size_t len, const struct sockaddr_storage *from) {
  napi_env env = st->env;
  char ip[INET6_ADDRSTRLEN + 1 + UV_IF_NAMESIZE] = "";
  uint16_t port = 0;
  if (from->ss_family == AF_INET) {
    const struct sockaddr_in *a = (const struct sockaddr_in *)from;
    uv_ip4_name(a, ip, sizeof ip);
    port = ntohs(a->sin_port);
  } else if (from->ss_family == AF_INET6) {
    const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)from;
    uv_ip6_name(a, ip, INET6_ADDRSTRLEN);
    /* as Node's rinfo: a link-local address names its interface */
    if (IN6_IS_ADDR_LINKLOCAL(&a->sin6_addr) && a->sin6_scope_id > 0) {
      size_t at = strlen(ip);
      size_t room = sizeof ip - at - 1;
      ip[at] = '%';
      if (uv_if_indextoiid(a->sin6_scope_id, ip + at + 1, &room) != 0) ip[at] = '\0';
    }
    port = ntohs(a->sin6_port);
  } else {
    return;
  }
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value argv[3], callback, recv;
  void *copy;
  if (napi_create_buffer_copy(env, len, data, &copy, &argv[0]) == napi_ok &&
      napi_create_string_latin1(env, ip, NAPI_AUTO_LENGTH, &argv[1]) == napi_ok &&
      napi_create_uint32(env, port, &argv[2]) == napi_ok &&
      napi_get_reference_value(env, s->callback, &callback) == napi_ok &&
      napi_get_undefined(env, &recv) == napi_ok) {
    s->counters[COUNT_TO_JS] += 1;
    bool pending = false;
    if (napi_call_function(env, recv, callback, 3, argv, NULL) != napi_ok && napi_is_exception_pending(env, &pending) == napi_ok && pending) {
      /* the callbacks catch what they throw (apps/turn/src/fixes/network.ts, data-plane.ts): this is a bug, reported as dgram's would be */
      napi_value error;
      napi_get_and_clear_last_exception(env, &error);
      napi_fatal_exception(env, error);
    }
  }
  napi_close_handle_scope(env, scope);
}

/* ChannelData from a client: forwarded when this module holds a live binding for it. */
static int channel_data_from_client(relay_state *st, fr_socket *listener, const unsigned char *d, size_t len, const struct sockaddr_storage *from, double now) {
  if (len < 4 || d[0] < 0x40 || d[0] > 0x7f) return 0;
  size_t length = ((size_t)d[2] << 8) | d[3];
  if (4 + length > len) return 0;
  fr_socket *relay = client_lookup(st, listener->id, from);
  if (!relay) return 0;
  uint16_t number = (uint16_t)(((unsigned)d[0] << 8) | d[1]);
  for (int i = 0; i < relay->channel_count; i++) {
    channel_t *c = &relay->channels[i];
    if (c->number != number) continue;
    if (!(c->expires > now)) return 0; /* NaN: expired */
    ssize_t sent = sendto(relay->fd, d + 4, length, MSG_DONTWAIT, (const struct sockaddr *)&c->peer, c->peer_len);
    count_send(listener, sent, COUNT_TO_PEER_BYTES, length);
    return 1;
  }
  return 0;
}

/* A peer's datagram on a relay socket: sent to the client as ChannelData when the peer has a live channel here. */
static int peer_to_client(relay_state *st, fr_socket *relay, const unsigned char *d, size_t len, const struct sockaddr_storage *from, double now) {
  if (!relay->routed || len > 0xffff) return 0;
  fr_socket *listener = socket_of(st, relay->listener);
  if (!listener) return 0;
  for (int i = 0; i < relay->channel_count; i++) {
    channel_t *c = &relay->channels[i];
    if (!same_address(&c->peer, from)) continue;
    if (!(c->expires > now)) return 0; /* NaN: expired */
    unsigned char header[4] = {(unsigned char)(c->number >> 8), (unsigned char)c->number, (unsigned char)(len >> 8), (unsigned char)len};
    struct iovec iov[2] = {{header, 4}, {(void *)d, len}};
    struct msghdr m = {0};
    m.msg_name = &relay->client;
    m.msg_namelen = relay->client_len;
    m.msg_iov = iov;
    m.msg_iovlen = 2;
    count_send(relay, sendmsg(listener->fd, &m, MSG_DONTWAIT), COUNT_TO_CLIENT_BYTES, len);
    return 1;
  }
  return 0;
}

static void on_readable(uv_poll_t *handle, int status, int events) {
  fr_socket *s = handle->data;
  relay_state *st = s->state;
  if (s->closing) return;
  if (status < 0) {
    /* libuv stopped the handle on a socket error (EPOLLERR): clear it and the error queue (bounded),
     * poll again and read what is there, else no one would read this socket again */
    int error = 0;
    socklen_t size = sizeof error;
    getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &error, &size);
    unsigned char scratch[256];
    struct iovec iov = {scratch, sizeof scratch};
    struct msghdr m = {0};
    for (int i = 0; i < BATCH; i++) {
      m.msg_iov = &iov;
      m.msg_iovlen = 1;
      if (recvmsg(s->fd, &m, MSG_ERRQUEUE | MSG_DONTWAIT) < 0) break;
    }
    uv_poll_start(&s->poll, UV_READABLE, on_readable);
  }
  napi_env env = st->env;
  napi_handle_scope outer;
  napi_callback_scope scope = NULL;
  int scoped = 0;
  for (int round = 0; round < MAX_ROUNDS && !s->closing; round++) {
    /* the rest of each header is set once (NAPI_MODULE_INIT); recvmmsg overwrites the address length */
    for (int i = 0; i < BATCH; i++) st->msgs[i].msg_hdr.msg_namelen = sizeof st->from[i];
    int n = recvmmsg(s->fd, st->msgs, BATCH, MSG_DONTWAIT, NULL);
    if (n <= 0) break;
    double now = now_ms();
    for (int i = 0; i < n && !s->closing; i++) {
      const unsigned char *d = st->iov[i].iov_base;
      size_t len = st->msgs[i].msg_len;
      const struct sockaddr_storage *from = &st->from[i];
      if (st->msgs[i].msg_hdr.msg_flags & MSG_TRUNC) continue;
      int done = s->is_relay ? peer_to_client(st, s, d, len, from, now) : channel_data_from_client(st, s, d, len, from, now);
      if (done) continue;
      if (!scoped) {
        /* one callback scope for the whole wake-up: microtasks and ticks run once, when it closes */
        napi_value resource;
        napi_async_context async = st->async;
        if (napi_open_handle_scope(env, &outer) != napi_ok) return;
        if (napi_get_reference_value(env, st->resource, &resource) != napi_ok || napi_open_callback_scope(env, resource, async, &scope) != napi_ok) {
          napi_close_handle_scope(env, outer);
          return;
        }
        scoped = 1;
      }
      to_js(st, s, d, len, from);
    }
    if (n < BATCH) break;
  }
  if (scoped) {
    napi_close_callback_scope(env, scope);
    napi_close_handle_scope(env, outer);
  }
}

/* ---- sockets ------------------------------------------------------------------------------- */

static void free_socket(uv_handle_t *handle) {
  free(handle->data);
}

static void close_socket(relay_state *st, fr_socket *s, int tearing_down) {
  if (s->closing) return;
  s->closing = 1;
  unroute(st, s);
  st->sockets[s->id] = NULL;
  /* a listener's id may be taken by the next socket opened: its allocations' routes go with it */
  if (!s->is_relay) {
    for (uint32_t i = 0; i < st->socket_capacity; i++) {
      fr_socket *r = st->sockets[i];
      if (r && r->routed && r->listener == s->id) unroute(st, r);
    }
  }
  /* at environment teardown the references go with the environment */
  if (s->callback && !tearing_down) napi_delete_reference(st->env, s->callback);
  s->callback = NULL;
  /* uv_close takes the descriptor out of epoll at once; closing the duplicate right after, not in the
   * close callback, frees the port when dgram's close does (the caller closes the socket next) */
  uv_close((uv_handle_t *)&s->poll, free_socket);
  close(s->fd);
  s->fd = -1;
}

/* ---- JavaScript API -------------------------------------------------------------------------- */

#define THROW(env, msg)                   \
  do {                                    \
    napi_throw_error((env), NULL, (msg)); \
    return NULL;                          \
  } while (0)

static relay_state *state_of(napi_env env) {
  relay_state *st = NULL;
  napi_get_instance_data(env, (void **)&st);
  return st;
}

/* The call's first n arguments into argv: -1 when fewer were passed. */
static int get_args(napi_env env, napi_callback_info info, size_t n, napi_value *argv) {
  size_t argc = n;
  return napi_get_cb_info(env, info, &argc, argv, NULL, NULL) == napi_ok && argc >= n ? 0 : -1;
}

/* A whole number in [0, 2^32): napi_get_value_uint32 alone would wrap 2^32 + 80 to 80 and truncate 1.5 to 1. */
static int get_u32(napi_env env, napi_value v, uint32_t *out) {
  napi_valuetype t;
  double d;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_number || napi_get_value_double(env, v, &d) != napi_ok) return -1;
  if (!(d >= 0 && d <= 4294967295.0) || d != floor(d)) return -1;
  *out = (uint32_t)d;
  return 0;
}

/* An IP (Buffer of 4 or 16 bytes) and a port as a sockaddr of `family` (AF_INET or AF_INET6): -1 when the IP's family differs. */
static int to_sockaddr(napi_env env, napi_value ip, uint32_t port, int family, struct sockaddr_storage *out, socklen_t *len) {
  bool is_buffer = false;
  void *data;
  size_t n;
  if (port == 0 || port > 0xffff) return -1;
  if (napi_is_buffer(env, ip, &is_buffer) != napi_ok || !is_buffer) return -1;
  if (napi_get_buffer_info(env, ip, &data, &n) != napi_ok) return -1;
  memset(out, 0, sizeof *out);
  if (family == AF_INET && n == 4) {
    struct sockaddr_in *a = (struct sockaddr_in *)out;
    a->sin_family = AF_INET;
    a->sin_port = htons((uint16_t)port);
    memcpy(&a->sin_addr, data, 4);
    *len = sizeof *a;
    return 0;
  }
  /* a link-local address needs its interface, which JavaScript keeps in the address text: left to JavaScript */
  if (family == AF_INET6 && n == 16 && !IN6_IS_ADDR_LINKLOCAL((const struct in6_addr *)data)) {
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)out;
    a->sin6_family = AF_INET6;
    a->sin6_port = htons((uint16_t)port);
    memcpy(&a->sin6_addr, data, 16);
    *len = sizeof *a;
    return 0;
  }
  return -1;
}

/* open(fd, family, relay, callback) -> id: poll a dup of dgram socket `fd` (family 4 or 6; relay:
 * true for a relay socket, false for a listening socket); the caller stops dgram's reading. */
static napi_value js_open(napi_env env, napi_callback_info info) {
  relay_state *st = state_of(env);
  napi_value argv[4];
  uint32_t fd, family;
  bool is_relay;
  napi_valuetype t;
  if (get_args(env, info, 4, argv) || get_u32(env, argv[0], &fd) || get_u32(env, argv[1], &family) || (family != 4 && family != 6) ||
      napi_get_value_bool(env, argv[2], &is_relay) != napi_ok)
    THROW(env, "open(fd, family, relay, callback)");
  if (napi_typeof(env, argv[3], &t) != napi_ok || t != napi_function) THROW(env, "open: callback must be a function");
  uint32_t id = 0;
  while (id < st->socket_capacity && st->sockets[id]) id++;
  if (id == st->socket_capacity) {
    uint32_t capacity = st->socket_capacity ? st->socket_capacity * 2 : 64;
    fr_socket **sockets = realloc(st->sockets, capacity * sizeof *sockets);
    if (!sockets) THROW(env, "open: out of memory");
    memset(sockets + st->socket_capacity, 0, (capacity - st->socket_capacity) * sizeof *sockets);
    st->sockets = sockets;
    st->socket_capacity = capacity;
  }
  fr_socket *s = calloc(1, sizeof *s);
  if (!s) THROW(env, "open: out of memory");
  s->fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (s->fd < 0) {
    free(s);
    THROW(env, "open: dup failed");
  }
  /* only a UDP socket of that family: another descriptor (a TCP socket at its end, a pipe) would stay
   * readable with nothing recvmmsg reads as a datagram, and the poll would spin */
  int type = 0, domain = 0;
  socklen_t size = sizeof type;
  if (getsockopt(s->fd, SOL_SOCKET, SO_TYPE, &type, &size) != 0 || type != SOCK_DGRAM || (size = sizeof domain, getsockopt(s->fd, SOL_SOCKET, SO_DOMAIN, &domain, &size)) != 0 ||
      domain != (family == 4 ? AF_INET : AF_INET6)) {
    close(s->fd);
    free(s);
    THROW(env, "open: not a UDP socket of that family");
  }
  s->state = st;
  s->id = id;
  s->family = family == 4 ? AF_INET : AF_INET6;
  s->is_relay = is_relay;
  if (uv_poll_init(st->loop, &s->poll, s->fd) != 0) {
    close(s->fd);
    free(s);
    THROW(env, "open: poll failed");
  }
  s->poll.data = s;
  napi_create_reference(env, argv[3], 1, &s->callback);
  st->sockets[id] = s;
  uv_poll_start(&s->poll, UV_READABLE, on_readable);
  napi_value out;
  napi_create_uint32(env, id, &out);
  return out;
}

/* route(relay, listener, clientIp, clientPort): the relay socket's allocation belongs to that client on that listener. */
static napi_value js_route(napi_env env, napi_callback_info info) {
  relay_state *st = state_of(env);
  napi_value argv[4], out;
  uint32_t relay_id, listener_id, port;
  if (get_args(env, info, 4, argv) || get_u32(env, argv[0], &relay_id) || get_u32(env, argv[1], &listener_id) || get_u32(env, argv[3], &port)) THROW(env, "route(relay, listener, ip, port)");
  fr_socket *relay = socket_of(st, relay_id), *listener = socket_of(st, listener_id);
  bool ok = false;
  struct sockaddr_storage client;
  socklen_t client_len;
  if (relay && listener && relay->is_relay && !listener->is_relay &&
      to_sockaddr(env, argv[2], port, listener->family, &client, &client_len) == 0) {
    fr_socket *holder = client_lookup(st, listener_id, &client);
    /* one allocation per client address on a listener (the 5-tuple): another one's route stays */
    if (holder && holder != relay) goto done;
    unroute(st, relay);
    if ((st->routed_count + 1) * 2 <= st->bucket_count || grow_buckets(st) == 0) {
      relay->listener = listener_id;
      relay->client = client;
      relay->client_len = client_len;
      relay->hash = client_hash(st, listener_id, &client);
      link_client(st->buckets, st->bucket_count, relay);
      relay->routed = 1;
      st->routed_count++;
      ok = true;
    }
  }
done:
  napi_get_boolean(env, ok, &out);
  return out;
}

/* channels(relay, list): the relay's live channels, replacing those held: list is an array of
 * [number, peerIp (Buffer), peerPort, expiresMs]; entries of the other family, and past CHANNELS, are left to JavaScript.
 * Reading an entry may run JavaScript (a getter, a proxy), which may call channels() or close() on
 * this relay: the entries are read into a set of this call's own, and the relay is looked up again
 * before the set replaces its channels. */
static napi_value js_channels(napi_env env, napi_callback_info info) {
  relay_state *st = state_of(env);
  napi_value argv[2], out;
  uint32_t relay_id, length = 0;
  bool is_array = false;
  if (get_args(env, info, 2, argv) || get_u32(env, argv[0], &relay_id) || napi_is_array(env, argv[1], &is_array) != napi_ok || !is_array) THROW(env, "channels(relay, list)");
  napi_get_array_length(env, argv[1], &length);
  fr_socket *relay = socket_of(st, relay_id);
  uint32_t held = 0;
  if (relay) {
    int family = relay->family;
    channel_t set[CHANNELS];
    int count = 0;
    for (uint32_t i = 0; i < length && count < CHANNELS; i++) {
      napi_handle_scope scope;
      if (napi_open_handle_scope(env, &scope) != napi_ok) break;
      napi_value entry, number_v, ip_v, port_v, expires_v;
      uint32_t number, port;
      double expires;
      /* a getter threw, or an entry is not an object: an exception is pending and nothing more can be read */
      int failed = napi_get_element(env, argv[1], i, &entry) != napi_ok || napi_get_element(env, entry, 0, &number_v) != napi_ok ||
                   napi_get_element(env, entry, 1, &ip_v) != napi_ok || napi_get_element(env, entry, 2, &port_v) != napi_ok ||
                   napi_get_element(env, entry, 3, &expires_v) != napi_ok;
      if (!failed && !get_u32(env, number_v, &number) && number >= 0x4000 && number <= 0x7fff && !get_u32(env, port_v, &port) &&
          napi_get_value_double(env, expires_v, &expires) == napi_ok && isfinite(expires)) {
        channel_t *c = &set[count];
        if (to_sockaddr(env, ip_v, port, family, &c->peer, &c->peer_len) == 0) {
          c->number = (uint16_t)number;
          c->expires = expires;
          count++;
        }
      }
      napi_close_handle_scope(env, scope);
      if (failed) break;
    }
    /* closed by JavaScript meanwhile (its id possibly another socket's now): nothing held */
    if (socket_of(st, relay_id) == relay) {
      memcpy(relay->channels, set, (size_t)count * sizeof set[0]);
      relay->channel_count = count;
      held = (uint32_t)count;
    }
  }
  napi_create_uint32(env, held, &out);
  return out;
}

/* The Float64Array of at least COUNTERS numbers `v` is, or NULL. */
static double *counter_array(napi_env env, napi_value v) {
  bool is_typed = false;
  napi_typedarray_type type;
  size_t length;
  void *data;
  if (napi_is_typedarray(env, v, &is_typed) != napi_ok || !is_typed) return NULL;
  napi_get_typedarray_info(env, v, &type, &length, &data, NULL, NULL);
  return type == napi_float64_array && length >= COUNTERS ? data : NULL;
}

static void take_counters(fr_socket *s, double *into) {
  for (int i = 0; i < COUNTERS; i++) {
    into[i] += s->counters[i];
    s->counters[i] = 0;
  }
}

/* The socket (NULL when closed already) and the counts array of an (id, Float64Array) call; -1 after throwing `usage`. */
static int socket_and_counts(napi_env env, napi_callback_info info, const char *usage, fr_socket **s, double **into) {
  napi_value argv[2];
  uint32_t id;
  if (get_args(env, info, 2, argv) || get_u32(env, argv[0], &id) || !(*into = counter_array(env, argv[1]))) {
    napi_throw_error(env, NULL, usage);
    return -1;
  }
  *s = socket_of(state_of(env), id);
  return 0;
}

/* counters(id, Float64Array): adds what the socket's datagrams caused since the last call, and
 * resets: [toPeerBytes, toPeerPackets, toClientBytes, toClientPackets, sendDrops, toJavaScript] */
static napi_value js_counters(napi_env env, napi_callback_info info) {
  fr_socket *s;
  double *into;
  if (socket_and_counts(env, info, "counters(id, Float64Array(6))", &s, &into) == 0 && s) take_counters(s, into);
  return NULL;
}

/* close(id, Float64Array): stop polling and close the dup (dgram's socket is the caller's to
 * close); the socket's last counts are added to the array, as counters() does. */
static napi_value js_close(napi_env env, napi_callback_info info) {
  fr_socket *s;
  double *into;
  if (socket_and_counts(env, info, "close(id, Float64Array(6))", &s, &into) == 0 && s) {
    take_counters(s, into);
    close_socket(s->state, s, 0);
  }
  return NULL;
}

static void cleanup(void *arg) {
  relay_state *st = arg;
  for (uint32_t i = 0; i < st->socket_capacity; i++) {
    if (st->sockets[i]) close_socket(st, st->sockets[i], 1);
  }
}

static void finalize_state(napi_env env, void *data, void *hint) {
  relay_state *st = data;
  free(st->sockets);
  free(st->buckets);
  free(st->rx);
  free(st);
}

NAPI_MODULE_INIT(/* napi_env env, napi_value exports */) {
  relay_state *st = calloc(1, sizeof *st);
  if (!st) return NULL;
  st->env = env;
  st->rx = malloc((size_t)BATCH * DATAGRAM_BYTES);
  if (!st->rx || napi_get_uv_event_loop(env, &st->loop) != napi_ok) {
    free(st->rx);
    free(st);
    napi_throw_error(env, NULL, "udp-relay: no event loop");
    return NULL;
  }
  if (getrandom(&st->seed, sizeof st->seed, 0) != sizeof st->seed) st->seed = (uint32_t)now_ms();
  /* recvmmsg's headers: slot i reads into the i-th 64 KB of rx and its sender into from[i] */
  for (int i = 0; i < BATCH; i++) {
    st->iov[i].iov_base = st->rx + (size_t)i * DATAGRAM_BYTES;
    st->iov[i].iov_len = DATAGRAM_BYTES;
    st->msgs[i].msg_hdr.msg_name = &st->from[i];
    st->msgs[i].msg_hdr.msg_iov = &st->iov[i];
    st->msgs[i].msg_hdr.msg_iovlen = 1;
  }
  napi_value resource, name;
  napi_create_object(env, &resource);
  napi_create_reference(env, resource, 1, &st->resource);
  napi_create_string_utf8(env, "udp-relay", NAPI_AUTO_LENGTH, &name);
  napi_async_init(env, resource, name, &st->async);
  napi_set_instance_data(env, st, finalize_state, NULL);
  napi_add_env_cleanup_hook(env, cleanup, st);
  napi_property_descriptor props[] = {
      {"open", NULL, js_open, NULL, NULL, NULL, napi_enumerable, NULL},
      {"close", NULL, js_close, NULL, NULL, NULL, napi_enumerable, NULL},
      {"route", NULL, js_route, NULL, NULL, NULL, napi_enumerable, NULL},
      {"channels", NULL, js_channels, NULL, NULL, NULL, napi_enumerable, NULL},
      {"counters", NULL, js_counters, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}
