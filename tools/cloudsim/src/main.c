/*
 * wa-cloudsim: plays Meta's WhatsApp Cloud API for `make run`, tests and benchmarks.
 *
 * Composition root only. Threads: the loop thread serves everything (no external dependency).
 */
#include <stddef.h>
#include <stdlib.h>

#include "wa/service.h"

struct cs_config {
    struct wa_common_config common;
};

static const struct wa_cfg_spec spec[] = {
    WA_CFG_COMMON(struct cs_config, common, "127.0.0.1:8090"),
};

static enum wa_err
start(struct wa_service *svc, const void *cfg, void **state, struct wa_error *error)
{
    (void)svc;
    (void)cfg;
    (void)error;
    *state = NULL;
    return WA_OK;
}

static const struct wa_service_def def = {
    .name = "wa-cloudsim",
    .summary = "WhatsApp Cloud API simulator: Graph API sends, webhooks back, /_sim/ control.",
    .spec = spec,
    .nspec = sizeof(spec) / sizeof(spec[0]),
    .cfg_size = sizeof(struct cs_config),
    .common_offset = offsetof(struct cs_config, common),
    .start = start,
};

int
main(int argc, char **argv)
{
    return wa_service_main(argc, argv, &def);
}
