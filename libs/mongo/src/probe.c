/*
 * probe.c: a blocking {ping: 1} for scripts and tools (deploy/local's wa-infra waits for
 * FerretDB with it). Never on a running loop: the asynchronous client is wa_mongo_new.
 */
#include "wa/mongo.h"

#include <mongoc/mongoc.h>

enum wa_err
wa_mongo_ping_sync(const char *uri, uint32_t timeout_ms, struct wa_error *error)
{
    mongoc_uri_t *u = NULL;
    mongoc_client_t *client = NULL;
    bson_t *ping = NULL, reply = BSON_INITIALIZER;
    bson_error_t berr;
    enum wa_err err = WA_OK;

    if (uri == NULL || timeout_ms == 0 || timeout_ms > INT32_MAX) {
        return wa_error_set(error, WA_EINVAL, "wa_mongo_ping_sync: needs a uri and a timeout");
    }
    wa_mongo_global_init();
    if ((u = mongoc_uri_new_with_error(uri, &berr)) == NULL) {
        /* libmongoc's message may quote the URI, which may hold a password: not echoed */
        return wa_error_set(error, WA_ECONFIG, "mongo uri is not valid");
    }
    mongoc_uri_set_option_as_int32(u, MONGOC_URI_SERVERSELECTIONTIMEOUTMS, (int32_t)timeout_ms);
    mongoc_uri_set_option_as_int32(u, MONGOC_URI_CONNECTTIMEOUTMS, (int32_t)timeout_ms);
    mongoc_uri_set_option_as_int32(u, MONGOC_URI_SOCKETTIMEOUTMS, (int32_t)timeout_ms);
    if ((client = mongoc_client_new_from_uri_with_error(u, &berr)) == NULL ||
        (ping = BCON_NEW("ping", BCON_INT32(1))) == NULL) {
        err = wa_error_set(error, WA_ECONFIG, "mongo client: %s", berr.message);
        goto out;
    }
    if (!mongoc_client_command_simple(client, "admin", ping, NULL, &reply, &berr)) {
        err = wa_error_set(error, WA_EUNAVAIL, "mongo ping: %s", berr.message);
    }
out:
    bson_destroy(&reply);
    if (ping != NULL) {
        bson_destroy(ping);
    }
    mongoc_client_destroy(client);
    mongoc_uri_destroy(u);
    return err;
}
