/* iplimit.h - counting open connections per client address. */
#ifndef MOONPOST_IPLIMIT_H
#define MOONPOST_IPLIMIT_H

#include <moonpost/common.h>

struct mp_iplimit;

/* An empty table; the caller owns it. */
struct mp_iplimit *mp_iplimit_new(void);
/* Counts one more connection for key unless it already has max; false
 * (and no change) when it has. */
bool mp_iplimit_acquire(struct mp_iplimit *t, const uint8_t key[16],
			unsigned max);
/* Counts one connection less for key. */
void mp_iplimit_release(struct mp_iplimit *t, const uint8_t key[16]);
/* Connections counted for key. */
unsigned mp_iplimit_count(const struct mp_iplimit *t, const uint8_t key[16]);
/* Frees the table; sets *t NULL. */
void mp_iplimit_free(struct mp_iplimit **t);

#endif
