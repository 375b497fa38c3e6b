/*
 * dashboard.c: GET /dashboard (placeholder until the page lands).
 */
#include "analytics.h"

enum wa_err
an_dashboard_start(struct an *an, struct wa_error *error)
{
    (void)an;
    (void)error;
    return WA_OK;
}
