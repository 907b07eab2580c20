/*
 * slabnet TAP addon: Linux TAP devices for a userspace network stack.
 *
 * open(name, queues[, flags])   -> { name, fds, vnetHdr, offloads }  one non-blocking
 *                                  fd per queue (IFF_TAP | IFF_NO_PI | IFF_MULTI_QUEUE);
 *                                  flags & OPEN_VNET_HDR: IFF_VNET_HDR with a 10-byte
 *                                  struct virtio_net_hdr before every frame, and
 *                                  TUNSETOFFLOAD(TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO_ECN)
 *                                  so that Linux hands over unchecksummed and 64 KiB GSO
 *                                  TCPv4 frames and takes them back (offloads: what it took)
 * read(fd, u8, off, len)        -> bytes read, or -errno (-EAGAIN: nothing queued)
 * write(fd, u8, off, len)       -> bytes written, or -errno
 * writev(fd, u8, iov, n)        -> bytes written, or -errno; iov is an Int32Array
 *                                  of n (offset, length) pairs into u8: an mbuf chain
 * readBatch(fd, u8, iov, per, max, out, vnet)
 *                               -> frames read (0..max), or -errno when the first read failed
 *                                  (-EAGAIN: nothing queued). Frame i is read (readv) into the
 *                                  `per` (offset, length) pieces iov[2*per*i ...] of u8; out[4i..]
 *                                  gets its length and, with vnet, its header (vnet layout below)
 * writeBatch(fd, u8, iov, counts, n, hdrs, vnet)
 *                               -> frames the kernel took; frame i is counts[i] pieces of iov
 *                                  (in order); with vnet, hdrs[4i..] is its header. A refused
 *                                  frame is skipped (the caller counts n - result as errors)
 * close(fd)
 * pollStart(fd, callback)       -> handle; callback() runs on the calling thread's
 *                                  event loop whenever fd is readable (uv_poll_t)
 * pollStop(handle), pollRef(handle, bool)
 *
 * vnet layout, 4 int32 per frame (out of readBatch, hdrs of writeBatch):
 *   [0] frame length (without the virtio header)   [1] flags | gso_type << 8
 *   [2] gso_size | hdr_len << 16                     [3] csum_start | csum_offset << 16
 *
 * u8 is a Uint8Array over the arena's SharedArrayBuffer: frames go straight
 * between the kernel and arena memory, never through a JS Buffer. Errors from
 * open() carry stable codes: ERR_SLABNET_TAP_PERM (not root / no CAP_NET_ADMIN),
 * ERR_SLABNET_TAP_NODEV (no /dev/net/tun), ERR_SLABNET_TAP_BUSY, ERR_SLABNET_TAP.
 * Read and write never throw for I/O errors: they return -errno so the packet
 * path can count and go on. Wrong arguments throw ERR_SLABNET_INVALID_ARG.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <linux/virtio_net.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <unistd.h>

#include <node_api.h>
#include <uv.h>

#define MAX_QUEUES 64
#define MAX_IOV 64
/* Pieces one readBatch/writeBatch call may name (UIO_MAXIOV). */
#define MAX_BATCH_IOV 1024
#define OPEN_VNET_HDR 1
#define VNET_WORDS 4

#define CHECK(call)                                                         \
  do {                                                                      \
    if ((call) != napi_ok) {                                                \
      napi_throw_error(env, "ERR_SLABNET_NAPI", "N-API call failed: " #call); \
      return NULL;                                                          \
    }                                                                       \
  } while (0)

static napi_value throw_arg(napi_env env, const char *msg) {
  napi_throw_error(env, "ERR_SLABNET_INVALID_ARG", msg);
  return NULL;
}

/* Throw an Error for a failed system call with a code that tells root/no-device apart. */
static napi_value throw_errno(napi_env env, const char *what, int err) {
  const char *code = "ERR_SLABNET_TAP";
  const char *hint = "";
  if (err == EPERM || err == EACCES) {
    code = "ERR_SLABNET_TAP_PERM";
    hint = " (TAP devices need root or CAP_NET_ADMIN)";
  } else if (err == ENOENT || err == ENODEV || err == ENXIO) {
    code = "ERR_SLABNET_TAP_NODEV";
    hint = " (no /dev/net/tun: is the tun module loaded or the device passed into this container?)";
  } else if (err == EBUSY) {
    code = "ERR_SLABNET_TAP_BUSY";
    hint = " (the interface exists and is not a multi-queue TAP we may attach to)";
  }
  char msg[384];
  snprintf(msg, sizeof msg, "%s: %s%s", what, strerror(err), hint);
  napi_throw_error(env, code, msg);
  return NULL;
}

static int get_int(napi_env env, napi_value v, int64_t *out) {
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_number) return 0;
  return napi_get_value_int64(env, v, out) == napi_ok;
}

/* Data pointer and length of a Uint8Array (over an ArrayBuffer or a SharedArrayBuffer). */
static int get_u8(napi_env env, napi_value v, uint8_t **data, size_t *len) {
  bool is;
  if (napi_is_typedarray(env, v, &is) != napi_ok || !is) return 0;
  napi_typedarray_type type;
  void *p;
  napi_value ab;
  size_t boff;
  if (napi_get_typedarray_info(env, v, &type, len, &p, &ab, &boff) != napi_ok) return 0;
  if (type != napi_uint8_array) return 0;
  *data = (uint8_t *)p;
  return 1;
}

/* Validate (u8, off, len) and return the pointer to u8[off], or NULL after throwing. */
static uint8_t *span(napi_env env, napi_value *argv, int64_t *lenOut) {
  uint8_t *data;
  size_t n;
  int64_t off, len;
  if (!get_u8(env, argv[1], &data, &n)) return throw_arg(env, "second argument must be a Uint8Array"), NULL;
  if (!get_int(env, argv[2], &off) || !get_int(env, argv[3], &len)) return throw_arg(env, "offset and length must be numbers"), NULL;
  if (off < 0 || len < 0 || (uint64_t)off + (uint64_t)len > n) return throw_arg(env, "offset/length outside the array"), NULL;
  *lenOut = len;
  return data + off;
}

static int get_fd(napi_env env, napi_value v, int *fd) {
  int64_t x;
  if (!get_int(env, v, &x) || x < 0 || x > INT_MAX) return 0;
  *fd = (int)x;
  return 1;
}

/*
 * The virtio header of every frame on this device is a plain struct
 * virtio_net_hdr (10 bytes); then ask for checksum and TCPv4 segmentation
 * offload. A kernel that refuses the offloads still works (offloads = 0: it
 * checksums and segments itself); one that refuses the header size fails.
 * The settings are the device's: the first queue's fd makes them.
 */
static int vnet_setup(int fd, unsigned *offloads) {
  int sz = (int)sizeof(struct virtio_net_hdr);
  if (ioctl(fd, TUNSETVNETHDRSZ, &sz) < 0) return errno;
  unsigned want = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO_ECN;
  if (ioctl(fd, TUNSETOFFLOAD, want) == 0) *offloads = want;
  else if (ioctl(fd, TUNSETOFFLOAD, TUN_F_CSUM) == 0) *offloads = TUN_F_CSUM;
  else *offloads = 0;
  return 0;
}

/* open(name, queues): create or attach to a multi-queue TAP; may block briefly in the kernel. */
static napi_value tap_open(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  char name[IFNAMSIZ] = {0};
  size_t nlen = 0;
  if (argc < 2 || napi_get_value_string_utf8(env, argv[0], NULL, 0, &nlen) != napi_ok || nlen >= IFNAMSIZ ||
      napi_get_value_string_utf8(env, argv[0], name, sizeof name, &nlen) != napi_ok)
    return throw_arg(env, "open(name, queues): name must be a string of at most 15 bytes");
  int64_t queues;
  if (!get_int(env, argv[1], &queues) || queues < 1 || queues > MAX_QUEUES)
    return throw_arg(env, "open(name, queues): queues must be 1..64");
  int64_t flags = 0;
  if (argc >= 3 && !get_int(env, argv[2], &flags)) return throw_arg(env, "open(name, queues, flags): flags must be a number");
  int vnet = (flags & OPEN_VNET_HDR) != 0;
  unsigned offloads = 0;
  int fds[MAX_QUEUES];
  int opened = 0;
  for (int q = 0; q < queues; q++) {
    int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
    if (fd < 0) {
      int err = errno;
      for (int i = 0; i < opened; i++) close(fds[i]);
      return throw_errno(env, "open /dev/net/tun", err);
    }
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_MULTI_QUEUE | (vnet ? IFF_VNET_HDR : 0);
    memcpy(ifr.ifr_name, name, strnlen(name, IFNAMSIZ - 1));
    if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
      int err = errno;
      close(fd);
      for (int i = 0; i < opened; i++) close(fds[i]);
      return throw_errno(env, "ioctl TUNSETIFF", err);
    }
    /* The kernel may have picked the name (tap%d): later queues attach to it. */
    memcpy(name, ifr.ifr_name, IFNAMSIZ);
    name[IFNAMSIZ - 1] = 0;
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
      int err = errno;
      close(fd);
      for (int i = 0; i < opened; i++) close(fds[i]);
      return throw_errno(env, "fcntl O_NONBLOCK", err);
    }
    if (vnet && q == 0) {
      int err = vnet_setup(fd, &offloads);
      if (err != 0) {
        close(fd);
        for (int i = 0; i < opened; i++) close(fds[i]);
        return throw_errno(env, "ioctl TUNSETVNETHDRSZ", err);
      }
    }
    fds[opened++] = fd;
  }
  napi_value result, jname, jfds;
  CHECK(napi_create_object(env, &result));
  CHECK(napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &jname));
  CHECK(napi_create_array_with_length(env, opened, &jfds));
  for (int i = 0; i < opened; i++) {
    napi_value v;
    CHECK(napi_create_int32(env, fds[i], &v));
    CHECK(napi_set_element(env, jfds, i, v));
  }
  CHECK(napi_set_named_property(env, result, "name", jname));
  CHECK(napi_set_named_property(env, result, "fds", jfds));
  napi_value jv, joff;
  CHECK(napi_get_boolean(env, vnet, &jv));
  CHECK(napi_create_uint32(env, offloads, &joff));
  CHECK(napi_set_named_property(env, result, "vnetHdr", jv));
  CHECK(napi_set_named_property(env, result, "offloads", joff));
  return result;
}

/*
 * read/write(fd, u8, off, len): one frame into or out of u8[off..off+len).
 * Never blocks (the fd is non-blocking); returns the byte count or -errno.
 */
static napi_value tap_rw(napi_env env, napi_callback_info info, bool writing) {
  size_t argc = 4;
  napi_value argv[4];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int fd;
  if (argc < 4 || !get_fd(env, argv[0], &fd))
    return throw_arg(env, writing ? "write(fd, u8, off, len)" : "read(fd, u8, off, len)");
  int64_t len;
  uint8_t *p = span(env, argv, &len);
  if (p == NULL) return NULL;
  ssize_t n;
  do n = writing ? write(fd, p, (size_t)len) : read(fd, p, (size_t)len);
  while (n < 0 && errno == EINTR);
  napi_value r;
  CHECK(napi_create_int32(env, n < 0 ? -errno : (int32_t)n, &r));
  return r;
}

static napi_value tap_read(napi_env env, napi_callback_info info) { return tap_rw(env, info, false); }
static napi_value tap_write(napi_env env, napi_callback_info info) { return tap_rw(env, info, true); }

/* writev(fd, u8, iov, n): one frame gathered from n (offset, length) pieces of u8. */
static napi_value tap_writev(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int fd;
  if (argc < 4 || !get_fd(env, argv[0], &fd)) return throw_arg(env, "writev(fd, u8, iov, n)");
  uint8_t *data;
  size_t dlen;
  if (!get_u8(env, argv[1], &data, &dlen)) return throw_arg(env, "writev: second argument must be a Uint8Array");
  bool is;
  napi_typedarray_type type;
  size_t ilen, boff;
  void *ip;
  napi_value ab;
  if (napi_is_typedarray(env, argv[2], &is) != napi_ok || !is ||
      napi_get_typedarray_info(env, argv[2], &type, &ilen, &ip, &ab, &boff) != napi_ok || type != napi_int32_array)
    return throw_arg(env, "writev: iov must be an Int32Array");
  int64_t n;
  if (!get_int(env, argv[3], &n) || n < 1 || n > MAX_IOV || (size_t)(2 * n) > ilen)
    return throw_arg(env, "writev: n must be 1..64 and fit the iov array");
  const int32_t *pairs = (const int32_t *)ip;
  struct iovec iov[MAX_IOV];
  for (int i = 0; i < n; i++) {
    int64_t o = pairs[2 * i], l = pairs[2 * i + 1];
    if (o < 0 || l < 0 || (uint64_t)o + (uint64_t)l > dlen) return throw_arg(env, "writev: a piece lies outside the array");
    iov[i].iov_base = data + o;
    iov[i].iov_len = (size_t)l;
  }
  ssize_t w;
  do w = writev(fd, iov, (int)n);
  while (w < 0 && errno == EINTR);
  napi_value r;
  CHECK(napi_create_int32(env, w < 0 ? -errno : (int32_t)w, &r));
  return r;
}

/* Int32Array argument: data and element count, or 0. */
static int get_i32(napi_env env, napi_value v, int32_t **data, size_t *len) {
  bool is;
  napi_typedarray_type type;
  size_t boff;
  void *p;
  napi_value ab;
  if (napi_is_typedarray(env, v, &is) != napi_ok || !is) return 0;
  if (napi_get_typedarray_info(env, v, &type, len, &p, &ab, &boff) != napi_ok || type != napi_int32_array) return 0;
  *data = (int32_t *)p;
  return 1;
}

/* Fill iov[0..n) from n (offset, length) pairs, each inside u8[0..dlen); 0 if one lies outside. */
static int fill_iov(struct iovec *iov, const int32_t *pairs, int n, uint8_t *data, size_t dlen) {
  for (int i = 0; i < n; i++) {
    int64_t o = pairs[2 * i], l = pairs[2 * i + 1];
    if (o < 0 || l < 0 || (uint64_t)o + (uint64_t)l > dlen) return 0;
    iov[i].iov_base = data + o;
    iov[i].iov_len = (size_t)l;
  }
  return 1;
}

/*
 * readBatch(fd, u8, iov, per, max, out, vnet): drain up to `max` frames in
 * one call (one N-API crossing for the lot). Frame i lands in its own `per`
 * pieces; with vnet the virtio header goes to a stack buffer in front of
 * them and is unpacked into out. Never blocks; stops at the first EAGAIN or
 * error (an error after some frames is seen again by the next call).
 */
static napi_value tap_read_batch(napi_env env, napi_callback_info info) {
  size_t argc = 7;
  napi_value argv[7];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int fd;
  uint8_t *data;
  size_t dlen, ilen, olen;
  int32_t *pairs, *out;
  int64_t per, max;
  bool vnet;
  if (argc < 7 || !get_fd(env, argv[0], &fd) || !get_u8(env, argv[1], &data, &dlen) || !get_i32(env, argv[2], &pairs, &ilen) ||
      !get_int(env, argv[3], &per) || !get_int(env, argv[4], &max) || !get_i32(env, argv[5], &out, &olen) ||
      napi_get_value_bool(env, argv[6], &vnet) != napi_ok)
    return throw_arg(env, "readBatch(fd, u8, iov: Int32Array, per, max, out: Int32Array, vnet: boolean)");
  if (per < 1 || per >= MAX_IOV || max < 1 || per * max > MAX_BATCH_IOV || (size_t)(2 * per * max) > ilen || (size_t)(VNET_WORDS * max) > olen)
    return throw_arg(env, "readBatch: per must be 1..63, per * max at most 1024, and iov/out must hold max frames");
  struct iovec iov[MAX_IOV];
  struct virtio_net_hdr h;
  int off = vnet ? 1 : 0;
  iov[0].iov_base = &h;
  iov[0].iov_len = sizeof h;
  int k = 0;
  for (; k < max; k++) {
    if (!fill_iov(iov + off, pairs + 2 * per * k, (int)per, data, dlen)) return throw_arg(env, "readBatch: a piece lies outside the array");
    ssize_t n;
    do n = readv(fd, iov, (int)per + off);
    while (n < 0 && errno == EINTR);
    if (n < 0) {
      if (k > 0) break;
      napi_value r;
      CHECK(napi_create_int32(env, -errno, &r));
      return r;
    }
    int32_t *o = out + VNET_WORDS * k;
    if (vnet) {
      if ((size_t)n < sizeof h) { /* a short read: no frame, count as an empty one */
        o[0] = 0;
        o[1] = o[2] = o[3] = 0;
        continue;
      }
      o[0] = (int32_t)(n - (ssize_t)sizeof h);
      o[1] = h.flags | (h.gso_type << 8);
      o[2] = h.gso_size | (h.hdr_len << 16);
      o[3] = h.csum_start | (h.csum_offset << 16);
    } else {
      o[0] = (int32_t)n;
      o[1] = o[2] = o[3] = 0;
    }
  }
  napi_value r;
  CHECK(napi_create_int32(env, k, &r));
  return r;
}

/*
 * writeBatch(fd, u8, iov, counts, n, hdrs, vnet): n frames, one writev each,
 * in one call. Frame i is the next counts[i] pieces of iov; with vnet its
 * header is built from hdrs[4i..]. Returns how many the kernel took.
 */
static napi_value tap_write_batch(napi_env env, napi_callback_info info) {
  size_t argc = 7;
  napi_value argv[7];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int fd;
  uint8_t *data;
  size_t dlen, ilen, clen, hlen;
  int32_t *pairs, *counts, *hdrs;
  int64_t n;
  bool vnet;
  if (argc < 7 || !get_fd(env, argv[0], &fd) || !get_u8(env, argv[1], &data, &dlen) || !get_i32(env, argv[2], &pairs, &ilen) ||
      !get_i32(env, argv[3], &counts, &clen) || !get_int(env, argv[4], &n) || !get_i32(env, argv[5], &hdrs, &hlen) ||
      napi_get_value_bool(env, argv[6], &vnet) != napi_ok)
    return throw_arg(env, "writeBatch(fd, u8, iov: Int32Array, counts: Int32Array, n, hdrs: Int32Array, vnet: boolean)");
  if (n < 0 || (size_t)n > clen || (vnet && (size_t)(VNET_WORDS * n) > hlen)) return throw_arg(env, "writeBatch: counts/hdrs must hold n frames");
  struct iovec iov[MAX_IOV];
  struct virtio_net_hdr h;
  int off = vnet ? 1 : 0;
  iov[0].iov_base = &h;
  iov[0].iov_len = sizeof h;
  size_t at = 0;
  int ok = 0;
  for (int i = 0; i < n; i++) {
    int c = counts[i];
    if (c < 1 || c >= MAX_IOV || 2 * (at + (size_t)c) > ilen) return throw_arg(env, "writeBatch: a frame's piece count is outside 1..63 or the iov array");
    if (!fill_iov(iov + off, pairs + 2 * at, c, data, dlen)) return throw_arg(env, "writeBatch: a piece lies outside the array");
    at += (size_t)c;
    if (vnet) {
      const int32_t *x = hdrs + VNET_WORDS * i;
      h.flags = (uint8_t)(x[1] & 0xff);
      h.gso_type = (uint8_t)((x[1] >> 8) & 0xff);
      h.gso_size = (uint16_t)(x[2] & 0xffff);
      h.hdr_len = (uint16_t)((x[2] >> 16) & 0xffff);
      h.csum_start = (uint16_t)(x[3] & 0xffff);
      h.csum_offset = (uint16_t)((x[3] >> 16) & 0xffff);
    }
    ssize_t w;
    do w = writev(fd, iov, c + off);
    while (w < 0 && errno == EINTR);
    if (w >= 0) ok++;
  }
  napi_value r;
  CHECK(napi_create_int32(env, ok, &r));
  return r;
}

static napi_value tap_close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int fd;
  if (argc < 1 || !get_fd(env, argv[0], &fd)) return throw_arg(env, "close(fd)");
  int r = close(fd);
  napi_value v;
  CHECK(napi_create_int32(env, r < 0 ? -errno : 0, &v));
  return v;
}

/* ---- readiness: a uv_poll_t on the calling thread's loop ---- */

typedef struct tap_poll {
  uv_poll_t handle;
  napi_env env;
  napi_ref cb;
  napi_async_context ctx;
  int stopped;   /* no more callbacks; uv_close requested */
  int uv_closed; /* libuv has let go of the handle */
  int js_gone;   /* the JS external was finalized */
} tap_poll;

/* The struct lives until both libuv and the JS handle are done with it. */
static void poll_closed(uv_handle_t *h) {
  tap_poll *p = (tap_poll *)h->data;
  p->uv_closed = 1;
  if (p->js_gone) free(p);
}

/* Stop watching and free once libuv is done with the handle; idempotent. */
static void poll_stop(tap_poll *p) {
  if (p->stopped) return;
  p->stopped = 1;
  uv_poll_stop(&p->handle);
  napi_delete_reference(p->env, p->cb);
  napi_async_destroy(p->env, p->ctx);
  uv_close((uv_handle_t *)&p->handle, poll_closed);
}

/* Environment teardown (worker exit) with the poll still running. */
static void poll_cleanup_hook(void *arg) {
  poll_stop((tap_poll *)arg);
}

static void poll_ready(uv_poll_t *h, int status, int events) {
  (void)events;
  tap_poll *p = (tap_poll *)h->data;
  if (p->stopped) return;
  napi_env env = p->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value cb, global, arg, result;
  if (napi_get_reference_value(env, p->cb, &cb) == napi_ok && cb != NULL && napi_get_global(env, &global) == napi_ok &&
      napi_create_int32(env, status, &arg) == napi_ok) {
    /* make_callback runs the microtask queue after the callback, as for any I/O. */
    if (napi_make_callback(env, p->ctx, global, cb, 1, &arg, &result) == napi_pending_exception) {
      napi_value exc;
      if (napi_get_and_clear_last_exception(env, &exc) == napi_ok) napi_fatal_exception(env, exc);
    }
  }
  napi_close_handle_scope(env, scope);
}

static void poll_finalize(napi_env env, void *data, void *hint) {
  (void)hint;
  tap_poll *p = (tap_poll *)data;
  p->js_gone = 1;
  if (!p->stopped) {
    /* Collected while still polling: stop it; poll_closed frees. */
    napi_remove_env_cleanup_hook(env, poll_cleanup_hook, p);
    poll_stop(p);
  } else if (p->uv_closed) {
    free(p);
  }
}

/* pollStart(fd, callback): callback(status) on this thread whenever fd is readable. */
static napi_value tap_poll_start(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int fd;
  napi_valuetype t;
  if (argc < 2 || !get_fd(env, argv[0], &fd) || napi_typeof(env, argv[1], &t) != napi_ok || t != napi_function)
    return throw_arg(env, "pollStart(fd, callback)");
  uv_loop_t *loop;
  CHECK(napi_get_uv_event_loop(env, &loop));
  tap_poll *p = calloc(1, sizeof *p);
  if (p == NULL) return throw_errno(env, "pollStart", ENOMEM);
  p->env = env;
  int r = uv_poll_init(loop, &p->handle, fd);
  if (r != 0) {
    free(p);
    return throw_errno(env, "uv_poll_init", -r);
  }
  p->handle.data = p;
  napi_value name;
  CHECK(napi_create_string_utf8(env, "slabnet:tap", NAPI_AUTO_LENGTH, &name));
  CHECK(napi_async_init(env, NULL, name, &p->ctx));
  CHECK(napi_create_reference(env, argv[1], 1, &p->cb));
  r = uv_poll_start(&p->handle, UV_READABLE, poll_ready);
  if (r != 0) {
    p->js_gone = 1; /* no external was made: poll_closed frees */
    poll_stop(p);
    return throw_errno(env, "uv_poll_start", -r);
  }
  CHECK(napi_add_env_cleanup_hook(env, poll_cleanup_hook, p));
  napi_value ext;
  CHECK(napi_create_external(env, p, poll_finalize, NULL, &ext));
  return ext;
}

static tap_poll *get_poll(napi_env env, napi_value v) {
  napi_valuetype t;
  void *p;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_external || napi_get_value_external(env, v, &p) != napi_ok) return NULL;
  return (tap_poll *)p;
}

/* pollStop(handle): no more callbacks; safe to call twice. */
static napi_value tap_poll_stop(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  tap_poll *p = argc < 1 ? NULL : get_poll(env, argv[0]);
  if (p == NULL) return throw_arg(env, "pollStop(handle)");
  if (!p->stopped) {
    napi_remove_env_cleanup_hook(env, poll_cleanup_hook, p);
    poll_stop(p);
  }
  return NULL;
}

/* pollRef(handle, on): whether the poll keeps the event loop (the CPU) alive. */
static napi_value tap_poll_ref(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  tap_poll *p = argc < 2 ? NULL : get_poll(env, argv[0]);
  bool on;
  if (p == NULL || napi_get_value_bool(env, argv[1], &on) != napi_ok) return throw_arg(env, "pollRef(handle, boolean)");
  if (!p->stopped) {
    if (on) uv_ref((uv_handle_t *)&p->handle);
    else uv_unref((uv_handle_t *)&p->handle);
  }
  return NULL;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"open", NULL, tap_open, NULL, NULL, NULL, napi_enumerable, NULL},
      {"read", NULL, tap_read, NULL, NULL, NULL, napi_enumerable, NULL},
      {"write", NULL, tap_write, NULL, NULL, NULL, napi_enumerable, NULL},
      {"writev", NULL, tap_writev, NULL, NULL, NULL, napi_enumerable, NULL},
      {"readBatch", NULL, tap_read_batch, NULL, NULL, NULL, napi_enumerable, NULL},
      {"writeBatch", NULL, tap_write_batch, NULL, NULL, NULL, napi_enumerable, NULL},
      {"close", NULL, tap_close, NULL, NULL, NULL, napi_enumerable, NULL},
      {"pollStart", NULL, tap_poll_start, NULL, NULL, NULL, napi_enumerable, NULL},
      {"pollStop", NULL, tap_poll_stop, NULL, NULL, NULL, napi_enumerable, NULL},
      {"pollRef", NULL, tap_poll_ref, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  CHECK(napi_define_properties(env, exports, sizeof props / sizeof props[0], props));
  return exports;
}

NAPI_MODULE_INIT() {
  return init(env, exports);
}
