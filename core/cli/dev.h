/* dev.h - the data directory and built-in config of `serve --dev`. */
#ifndef MOONPOST_DEV_H
#define MOONPOST_DEV_H

#include <moonpost/common.h>

/* The account `serve --dev` creates. */
#define MP_DEV_DEMO_ADDRESS "demo@example.test"
/* Standard ports plus this: 10025, 10587, 10465, 10143, 10993, ... */
#define MP_DEV_DEFAULT_PORT_OFFSET 10000
/* The largest offset that keeps port 995 + offset valid. */
#define MP_DEV_MAX_PORT_OFFSET (65535 - 995)
/* How errors name the built-in dev config. */
#define MP_DEV_CONFIG_NAME "<dev config>"

/* Makes dir ready for dev mode, creating what is missing: the directory
 * (0700), a self-signed ECDSA P-256 certificate in tls/cert.pem and
 * tls/key.pem (names localhost, example.test, 127.0.0.1, ::1), and a passwd
 * file holding MP_DEV_DEMO_ADDRESS. When this call created the demo account,
 * *demo_password_r is its generated password (caller frees; print it once),
 * else NULL. False with *error_r (caller frees) on failure. */
bool mp_dev_prepare(const char *dir, char **demo_password_r, char **error_r);

/* The Lua source of the dev config for the absolute directory dir, with
 * every standard port moved up by port_offset. Caller frees. */
char *mp_dev_config_source(const char *dir, int port_offset);

#endif
