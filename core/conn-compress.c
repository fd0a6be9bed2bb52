/* conn-compress.c - the DEFLATE layer of a connection (RFC 4978).
 *
 * It sits between the plugin and the output queue, and between the socket
 * (or TLS) and the framer:
 * - output: every write is deflated at once into conn->out, so the queue,
 *   the high-water mark and backpressure see compressed bytes; the stream
 *   is sync-flushed when the queue has drained into the socket (see
 *   mp_conn_io_flush()).
 * - input: compressed bytes wait in z->raw; conn.c inflates them in small
 *   pieces only while the plugin takes input, so a decompression bomb
 *   costs CPU time spread over loop rounds, never memory. */
#include "config.h"

#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include <moonpost/conn.h>
#include <moonpost/log.h>

#include "conn-private.h"

/* Deflate settings. A 4 KB window and memLevel 5 cost 39 KB of deflate
 * state per connection instead of 268 KB for zlib's defaults (window 15,
 * memLevel 8); on synthetic FETCH responses (ENVELOPE, BODYSTRUCTURE,
 * 1.4 MB, sync flush every 8 KB) the output grows from 10.7% to 12.8% of
 * the plain size (window 13 / memLevel 6: 71 KB, 11.5%). Inflate must take
 * any window up to 32 KB (+40 KB): the client picks its own. */
#define CONN_Z_LEVEL        6
#define CONN_Z_WINDOW_BITS  12
#define CONN_Z_MEM_LEVEL    5
#define CONN_Z_INFLATE_BITS 15
/* Deflate output is collected in pieces of this size. */
#define CONN_Z_CHUNK 16384

struct mp_conn_zlib {
	z_stream def;
	z_stream inf;
	struct mp_buf raw; /* compressed input from raw_off on */
	size_t raw_off;
	size_t mem;      /* bytes zlib holds for this connection */
	size_t mem_peak; /* the most it held */
	bool def_dirty;  /* deflated since the last sync flush */
	bool inf_more;   /* inflate filled its output: more may be pending */
	bool inf_ended;  /* the peer ended its stream (final block) */
	uint64_t in_raw, in_plain, out_plain, out_raw;
};

/* zlib's allocator, counting what one connection holds. */
union z_header {
	size_t size;
	max_align_t align;
};

static voidpf
z_alloc(voidpf opaque, uInt items, uInt size)
{
	struct mp_conn_zlib *z = opaque;
	size_t n = (size_t)items * size;
	union z_header *h = malloc(sizeof(*h) + n);

	if (h == NULL)
		return Z_NULL;
	h->size = n;
	z->mem += n;
	if (z->mem > z->mem_peak)
		z->mem_peak = z->mem;
	return h + 1;
}

static void
z_free(voidpf opaque, voidpf p)
{
	struct mp_conn_zlib *z = opaque;
	union z_header *h = (union z_header *)p - 1;

	z->mem -= h->size;
	free(h);
}

static void
zlib_free(struct mp_conn_zlib **zp)
{
	struct mp_conn_zlib *z = *zp;

	*zp = NULL;
	deflateEnd(&z->def);
	inflateEnd(&z->inf);
	mp_buf_free(&z->raw);
	free(z);
}

/* The streams for one connection; NULL when zlib is out of memory. */
static struct mp_conn_zlib *
zlib_new(void)
{
	struct mp_conn_zlib *z = mp_xcalloc(1, sizeof(*z));
	int d, i;

	z->def.zalloc = z->inf.zalloc = z_alloc;
	z->def.zfree = z->inf.zfree = z_free;
	z->def.opaque = z->inf.opaque = z;
	d = deflateInit2(&z->def, CONN_Z_LEVEL, Z_DEFLATED, -CONN_Z_WINDOW_BITS,
			 CONN_Z_MEM_LEVEL, Z_DEFAULT_STRATEGY);
	i = inflateInit2(&z->inf, -CONN_Z_INFLATE_BITS);
	if (d == Z_OK && i == Z_OK)
		return z;
	if (d == Z_OK)
		deflateEnd(&z->def);
	if (i == Z_OK)
		inflateEnd(&z->inf);
	free(z);
	return NULL;
}

bool
mp_conn_can_compress(const struct mp_conn *conn)
{
	return conn->state == CONN_OPEN && conn->z == NULL && !conn->starttls &&
	       conn->files == NULL;
}

bool
mp_conn_is_compressed(const struct mp_conn *conn)
{
	return conn->z != NULL;
}

bool
mp_conn_compress(struct mp_conn *conn)
{
	if (!mp_conn_can_compress(conn))
		return false;
	conn->z = zlib_new();
	if (conn->z == NULL) {
		mp_conn_log(conn, MP_LOG_WARN,
			    "event=compress_failed error=out_of_memory");
		return false;
	}
	mp_conn_log(conn, MP_LOG_INFO,
		    "event=compress method=deflate window_bits=%d "
		    "mem_level=%d memory=%zu",
		    CONN_Z_WINDOW_BITS, CONN_Z_MEM_LEVEL, conn->z->mem);
	/* Input not framed yet is compressed. Inside dispatch() the rest of
	 * the buffer being framed is still in use: dispatch() moves it. */
	if (conn->dispatching) {
		conn->compress_switch = true;
	} else if (conn->in.len > 0) {
		mp_conn_zlib_feed(conn, conn->in.data, conn->in.len);
		mp_buf_free(&conn->in);
	}
	mp_conn_schedule(conn);
	return true;
}

/* Runs deflate over data until it is all taken and, for a flush, until
 * the flush is complete; the output goes to the queue. */
static void
deflate_run(struct mp_conn *conn, const void *data, size_t len, int flush)
{
	struct mp_conn_zlib *z = conn->z;
	char chunk[CONN_Z_CHUNK];
	int ret;

	z->def.next_in = (Bytef *)(uintptr_t)data;
	do {
		size_t piece = len > UINT32_MAX ? UINT32_MAX : len;

		z->def.avail_in = (uInt)piece;
		len -= piece;
		do {
			size_t n;

			z->def.next_out = (Bytef *)chunk;
			z->def.avail_out = sizeof(chunk);
			ret = deflate(&z->def, len > 0 ? Z_NO_FLUSH : flush);
			assert(ret != Z_STREAM_ERROR);
			(void)ret;
			n = sizeof(chunk) - z->def.avail_out;
			mp_buf_append(&conn->out, chunk, n);
			z->out_raw += n;
		} while (z->def.avail_out == 0 || z->def.avail_in > 0);
	} while (len > 0);
	z->def.next_in = NULL;
}

void
mp_conn_zlib_write(struct mp_conn *conn, const void *data, size_t len)
{
	if (len == 0)
		return;
	conn->z->out_plain += len;
	conn->z->def_dirty = true;
	deflate_run(conn, data, len, Z_NO_FLUSH);
}

bool
mp_conn_zlib_sync(struct mp_conn *conn)
{
	if (conn->z == NULL || !conn->z->def_dirty)
		return false;
	conn->z->def_dirty = false;
	deflate_run(conn, "", 0, Z_SYNC_FLUSH);
	return true;
}

void
mp_conn_zlib_feed(struct mp_conn *conn, const char *data, size_t len)
{
	if (len == 0)
		return;
	mp_buf_append(&conn->z->raw, data, len);
	conn->z->in_raw += len;
}

bool
mp_conn_zlib_has_input(const struct mp_conn *conn)
{
	const struct mp_conn_zlib *z = conn->z;

	return z != NULL && (z->raw.len > z->raw_off || z->inf_more);
}

static void
raw_consumed(struct mp_conn_zlib *z, size_t n)
{
	z->raw_off += n;
	if (z->raw_off >= z->raw.len) {
		mp_buf_free(&z->raw);
		z->raw_off = 0;
	}
}

static const char *
inflate_error(const z_stream *s, int ret)
{
	switch (ret) {
	case Z_NEED_DICT:
		return "preset dictionary requested";
	case Z_MEM_ERROR:
		return "out of memory";
	default:
		return s->msg != NULL ? s->msg : "corrupt stream";
	}
}

bool
mp_conn_zlib_inflate(struct mp_conn *conn, char *out, size_t size,
		     size_t *produced_r, const char **error_r)
{
	struct mp_conn_zlib *z = conn->z;
	size_t avail = z->raw.len - z->raw_off;
	int ret;

	*produced_r = 0;
	if (z->inf_ended) {
		*error_r = "data after the end of the compressed stream";
		return avail == 0;
	}
	z->inf.next_in = (Bytef *)z->raw.data + z->raw_off;
	z->inf.avail_in = avail > UINT32_MAX ? UINT32_MAX : (uInt)avail;
	z->inf.next_out = (Bytef *)out;
	z->inf.avail_out = (uInt)size;
	ret = inflate(&z->inf, Z_NO_FLUSH);
	raw_consumed(z, (size_t)((const char *)z->inf.next_in -
				 (z->raw.data + z->raw_off)));
	z->inf.next_in = NULL;
	*produced_r = size - z->inf.avail_out;
	z->in_plain += *produced_r;
	z->inf_more = z->inf.avail_out == 0;
	if (ret == Z_OK || ret == Z_BUF_ERROR)
		return true;
	if (ret == Z_STREAM_END) {
		z->inf_ended = true;
		z->inf_more = false;
		*error_r = "data after the end of the compressed stream";
		return z->raw.len == 0;
	}
	*error_r = inflate_error(&z->inf, ret);
	return false;
}

void
mp_conn_zlib_end(struct mp_conn *conn)
{
	struct mp_conn_zlib *z = conn->z;

	if (z == NULL)
		return;
	mp_conn_log(conn, MP_LOG_INFO,
		    "event=compress_stats in_compressed=%llu in_plain=%llu "
		    "out_plain=%llu out_compressed=%llu zlib_memory=%zu",
		    (unsigned long long)z->in_raw,
		    (unsigned long long)z->in_plain,
		    (unsigned long long)z->out_plain,
		    (unsigned long long)z->out_raw, z->mem_peak);
	zlib_free(&conn->z);
}
