/*
 * wa/optout.h: the marketing opt-out suppression key, the one name its writer (wa-users) and
 * its reader (wa-notify) both compute (docs/architecture.md "Shared state contracts"):
 *
 *   <prefix>optout:<h>   h = 64 lowercase hex digits of HMAC-SHA256(WA_OPTOUT_KEY, identity)
 *
 * identity = the wa_id digits (a '+' before them is ignored, so "+15551234567" and
 * "15551234567" name one key) or the business-scoped user id, as given. No key name holds a
 * number, and wa-users keeps only h (MongoDB `suppressions`) after a contact's erasure so the
 * opt-out stays honoured. WA_OPTOUT_KEY is a secret (without it a number is found from h by
 * trying every number); every daemon of a deployment must use the same one, and changing it
 * orphans the suppressions of erased contacts (their numbers are not known any more).
 *
 * Threading: a struct wa_optout is used by one thread at a time (it holds a keyed HMAC).
 */
#ifndef WA_OPTOUT_H
#define WA_OPTOUT_H

#include <stddef.h>

#include "wa/config.h"
#include "wa/err.h"

#define WA_OPTOUT_HASH_LEN 64 /* hex digits of h, NUL not included */
/* The public sandbox value of WA_OPTOUT_KEY, refused unless WA_SANDBOX is true. */
#define WA_OPTOUT_SANDBOX_KEY "sandbox-optout-key"

/* The config spec entry of WA_OPTOUT_KEY (secret, also WA_OPTOUT_KEY_FILE) for a daemon's
 * table: field is a char * of the daemon's config struct type. */
/* clang-format off */
#define WA_OPTOUT_CFG(type, field)                                                                 \
    {"WA_OPTOUT_KEY", WA_CFG_STRING, WA_OPTOUT_SANDBOX_KEY, 0, 0, WA_CFG_SECRET | WA_CFG_SANDBOX,  \
     offsetof(type, field),                                                                        \
     "key of the HMAC naming the marketing opt-out keys <prefix>optout:<hash> (the same in "       \
     "wa-users and wa-notify)"}
/* clang-format on */

struct wa_optout;

/* Keys a new object with a copy of secret (NUL-terminated, non-empty). Returns WA_OK and sets
 * *out (free with wa_optout_free), WA_EINVAL for a NULL or empty secret, or WA_ENOMEM. */
enum wa_err wa_optout_new(const char *secret, struct wa_optout **out);
/* Frees o (NULL is fine). */
void wa_optout_free(struct wa_optout *o);
/* Writes h of identity and a NUL into out. WA_EINVAL for a NULL or empty identity (or "+"). */
enum wa_err wa_optout_hash(struct wa_optout *o, const char *identity,
                           char out[WA_OPTOUT_HASH_LEN + 1]);
/* Writes "<prefix>optout:<h>" of identity into out (size bytes). WA_EINVAL as above,
 * WA_ETOOBIG when it does not fit (out then ""). */
enum wa_err wa_optout_key(struct wa_optout *o, const char *prefix, const char *identity, char *out,
                          size_t size);
/* Writes "<prefix>optout:<hash>" for a hash already computed (64 lowercase hex digits, as
 * stored): WA_EINVAL for anything else, WA_ETOOBIG when it does not fit (out then ""). */
enum wa_err wa_optout_key_of_hash(const char *prefix, const char *hash, char *out, size_t size);

#endif
