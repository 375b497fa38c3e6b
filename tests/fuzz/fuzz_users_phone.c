/*
 * fuzz_users_phone.c: libFuzzer driver for wa-users' phone numbers (services/users/src/
 * contact.c us_phone_canonical, phone.c over the generated phone_table.c): REST path ids and
 * import lines carry them, external input. Invariants beyond "no crash, no sanitizer report":
 * an accepted number is "+" and 1 to 15 digits, passes us_phone_check, and is its own
 * canonical form (canonicalising twice changes nothing); a REST path id of it names the same
 * contact.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "users.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char in[64], out[32], again[32], path[US_ID_MAX];
    size_t n = size < sizeof(in) - 1 ? size : sizeof(in) - 1;

    memcpy(in, data, n);
    in[n] = '\0';
    (void)us_phone_check(in, NULL); /* any bytes, not only digits */
    if (us_phone_canonical(in, out, sizeof(out)) != WA_OK) {
        return 0;
    }
    n = strlen(out);
    if (out[0] != '+' || n < 2 || n > 16 || strspn(out + 1, "0123456789") != n - 1 ||
        us_phone_check(out + 1, NULL) != WA_OK ||
        us_phone_canonical(out, again, sizeof(again)) != WA_OK || strcmp(out, again) != 0 ||
        us_contact_path_id(out, path, sizeof(path)) != WA_OK || strcmp(path, out) != 0) {
        abort();
    }
    return 0;
}
