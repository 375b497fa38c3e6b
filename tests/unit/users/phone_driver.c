/*
 * phone_driver.c: reads numbers, one a line, and prints for each the canonical E.164 form
 * (us_phone_canonical) or "-" when refused. Driven by phone_oracle.py, which compares the
 * answers with libphonenumber's.
 */
#include <stdio.h>
#include <string.h>

#include "users.h"

int
main(void)
{
    char line[256], out[32];

    while (fgets(line, sizeof(line), stdin) != NULL) {
        line[strcspn(line, "\n")] = '\0';
        if (us_phone_canonical(line, out, sizeof(out)) == WA_OK) {
            printf("%s\n", out);
        } else {
            printf("-\n");
        }
    }
    return ferror(stdin) ? 1 : 0;
}
