/*
 * security.c: TLS and SASL settings of every Kafka client (struct wa_kafka_security), checked
 * and applied in one place: kafka_conf_new() calls kafka_conf_security() for the producer, the
 * consumer and the admin handle alike.
 *
 * Secrets: the SASL password and the key password go into librdkafka's configuration (which
 * marks them sensitive) and nowhere else; no message here includes them, and kafka_conf_set()
 * redacts the value of any property whose name says it is a password.
 *
 * Threading: pure functions of their arguments, any thread.
 */
#include <errno.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "kafka_int.h"

static const char *const protocols[] = {"PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"};
static const char *const mechanisms[] = {"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"};

static bool
empty(const char *s)
{
    return s == NULL || *s == '\0';
}

/* The canonical spelling of s in names (case-insensitive), or NULL. */
static const char *
lookup(const char *s, const char *const *names, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (strcasecmp(s, names[i]) == 0) {
            return names[i];
        }
    }
    return NULL;
}

static const char *
protocol_of(const struct wa_kafka_security *s)
{
    return empty(s->protocol) ? "PLAINTEXT" : lookup(s->protocol, protocols, 4);
}

static enum wa_err
readable(const char *var, const char *path, struct wa_error *error)
{
    if (access(path, R_OK) != 0) {
        return wa_error_set(error, WA_ECONFIG, "%s=%s cannot be read: %s", var, path,
                            strerror(errno));
    }
    return WA_OK;
}

enum wa_err
wa_kafka_security_check(const struct wa_kafka_security *s, struct wa_error *error)
{
    const char *protocol, *mechanism = NULL;
    bool sasl, tls;
    enum wa_err err;

    if (s == NULL) {
        return WA_OK;
    }
    if ((protocol = protocol_of(s)) == NULL) {
        return wa_error_set(error, WA_ECONFIG,
                            "WA_KAFKA_SECURITY_PROTOCOL=%s is not PLAINTEXT, SSL, SASL_PLAINTEXT "
                            "or SASL_SSL",
                            s->protocol);
    }
    sasl = strncmp(protocol, "SASL_", 5) == 0;
    tls = strcmp(protocol, "SSL") == 0 || strcmp(protocol, "SASL_SSL") == 0;
    if (sasl) {
        if (empty(s->sasl_mechanism)) {
            return wa_error_set(error, WA_ECONFIG,
                                "WA_KAFKA_SECURITY_PROTOCOL=%s needs WA_KAFKA_SASL_MECHANISM "
                                "(PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)",
                                protocol);
        }
        if ((mechanism = lookup(s->sasl_mechanism, mechanisms, 3)) == NULL) {
            return wa_error_set(error, WA_ECONFIG,
                                "WA_KAFKA_SASL_MECHANISM=%s is not PLAIN, SCRAM-SHA-256 or "
                                "SCRAM-SHA-512",
                                s->sasl_mechanism);
        }
        if (empty(s->sasl_username) || empty(s->sasl_password)) {
            return wa_error_set(error, WA_ECONFIG,
                                "WA_KAFKA_SECURITY_PROTOCOL=%s needs WA_KAFKA_SASL_USERNAME and "
                                "WA_KAFKA_SASL_PASSWORD (or WA_KAFKA_SASL_PASSWORD_FILE)",
                                protocol);
        }
        if (!tls && strcmp(mechanism, "PLAIN") == 0) {
            return wa_error_set(error, WA_ECONFIG,
                                "WA_KAFKA_SASL_MECHANISM=PLAIN over SASL_PLAINTEXT sends the "
                                "password in clear text: use SASL_SSL or a SCRAM mechanism");
        }
    } else if (!empty(s->sasl_mechanism) || !empty(s->sasl_username) || !empty(s->sasl_password)) {
        return wa_error_set(error, WA_ECONFIG,
                            "WA_KAFKA_SASL_* is set but WA_KAFKA_SECURITY_PROTOCOL=%s does not "
                            "use SASL (SASL_SSL or SASL_PLAINTEXT do)",
                            protocol);
    }
    if (!tls) {
        if (!empty(s->ca_path) || !empty(s->cert_path) || !empty(s->key_path) ||
            !empty(s->key_password) || s->no_hostname_check) {
            return wa_error_set(error, WA_ECONFIG,
                                "WA_KAFKA_SSL_* is set but WA_KAFKA_SECURITY_PROTOCOL=%s does "
                                "not use TLS (SSL or SASL_SSL do)",
                                protocol);
        }
        return WA_OK;
    }
    if (empty(s->cert_path) != empty(s->key_path)) {
        return wa_error_set(error, WA_ECONFIG,
                            "WA_KAFKA_SSL_CERT_PATH and WA_KAFKA_SSL_KEY_PATH go together (a "
                            "client certificate needs its key)");
    }
    if (!empty(s->key_password) && empty(s->key_path)) {
        return wa_error_set(error, WA_ECONFIG,
                            "WA_KAFKA_SSL_KEY_PASSWORD is set without WA_KAFKA_SSL_KEY_PATH");
    }
    if ((!empty(s->ca_path) &&
         (err = readable("WA_KAFKA_SSL_CA_PATH", s->ca_path, error)) != WA_OK) ||
        (!empty(s->cert_path) &&
         (err = readable("WA_KAFKA_SSL_CERT_PATH", s->cert_path, error)) != WA_OK) ||
        (!empty(s->key_path) &&
         (err = readable("WA_KAFKA_SSL_KEY_PATH", s->key_path, error)) != WA_OK)) {
        return err;
    }
    return WA_OK;
}

enum wa_err
kafka_conf_security(rd_kafka_conf_t *conf, const struct wa_kafka_security *s,
                    struct wa_error *error)
{
    const char *protocol;
    enum wa_err err;

    if ((err = wa_kafka_security_check(s, error)) != WA_OK) {
        return err;
    }
    protocol = protocol_of(s);
    if ((err = kafka_conf_set(conf, "security.protocol", protocol, error)) != WA_OK) {
        return err;
    }
    if (strncmp(protocol, "SASL_", 5) == 0 &&
        ((err = kafka_conf_set(conf, "sasl.mechanisms", lookup(s->sasl_mechanism, mechanisms, 3),
                               error)) != WA_OK ||
         (err = kafka_conf_set(conf, "sasl.username", s->sasl_username, error)) != WA_OK ||
         (err = kafka_conf_set(conf, "sasl.password", s->sasl_password, error)) != WA_OK)) {
        return err;
    }
    if (strcmp(protocol, "SSL") != 0 && strcmp(protocol, "SASL_SSL") != 0) {
        return WA_OK;
    }
    if ((!empty(s->ca_path) &&
         (err = kafka_conf_set(conf, "ssl.ca.location", s->ca_path, error)) != WA_OK) ||
        (!empty(s->cert_path) &&
         (err = kafka_conf_set(conf, "ssl.certificate.location", s->cert_path, error)) != WA_OK) ||
        (!empty(s->key_path) &&
         (err = kafka_conf_set(conf, "ssl.key.location", s->key_path, error)) != WA_OK) ||
        (!empty(s->key_password) &&
         (err = kafka_conf_set(conf, "ssl.key.password", s->key_password, error)) != WA_OK) ||
        (err = kafka_conf_set(conf, "ssl.endpoint.identification.algorithm",
                              s->no_hostname_check ? "none" : "https", error)) != WA_OK) {
        return err;
    }
    return WA_OK;
}

bool
kafka_conf_secret(const char *name)
{
    return strstr(name, "password") != NULL || strstr(name, "jaas") != NULL ||
           strstr(name, "secret") != NULL;
}

void
wa_kafka_security_from_cfg(const struct wa_kafka_security_cfg *c, struct wa_kafka_security *out)
{
    *out = (struct wa_kafka_security){
        .protocol = c->protocol,
        .sasl_mechanism = c->sasl_mechanism,
        .sasl_username = c->sasl_username,
        .sasl_password = c->sasl_password,
        .ca_path = c->ca_path,
        .cert_path = c->cert_path,
        .key_path = c->key_path,
        .key_password = c->key_password,
        /* false without TLS is refused like any other WA_KAFKA_SSL_* setting */
        .no_hostname_check = !c->verify_hostname,
    };
}
