/*
 * errors.c: the Cloud API error table (cloud-api.md §2.3) with each code's class (§2.4), and
 * writers of Meta's synchronous (Graph) and asynchronous (webhook) error objects.
 *
 * The table is sorted by code and searched by bisection. HTTP statuses follow Meta's later table
 * ("B"); codes it does not list answer 400. Stateless and thread-safe.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wa/whatsapp_errors.h"

#define OAUTH "OAuthException"
#define GRAPH "GraphMethodException"

#define R   WA_WHATSAPP_ERROR_RETRYABLE
#define T   WA_WHATSAPP_ERROR_THROTTLED
#define P   WA_WHATSAPP_ERROR_PAIR_RATE
#define K   WA_WHATSAPP_ERROR_TOKEN
#define W   WA_WHATSAPP_ERROR_WINDOW
#define O   WA_WHATSAPP_ERROR_OPTED_OUT
#define TPL WA_WHATSAPP_ERROR_TEMPLATE
#define X   WA_WHATSAPP_ERROR_PERMANENT
#define C   WA_WHATSAPP_ERROR_CAPPED

/* Sorted by code (checked by the unit tests). */
static const struct wa_whatsapp_error_info table[] = {
    {0, 401, K, "AuthException", "We were unable to authenticate the app user.", OAUTH},
    {1, 400, X, "API Unknown", "Invalid request or possible server error.", OAUTH},
    {2, 503, R, "API Service", "Temporary due to downtime or due to being overloaded.", OAUTH},
    {3, 500, X, "API Method", "Capability or permissions issue.", OAUTH},
    {4, 400, T, "API Too Many Calls", "The app has reached its API call rate limit.", OAUTH},
    {10, 403, X, "Permission Denied", "Permission is either not granted or has been removed.",
     OAUTH},
    {33, 400, X, "Parameter value is not valid", "The business phone number has been deleted.",
     OAUTH},
    {100, 400, X, "Invalid parameter", "The request included invalid or unsupported parameters.",
     OAUTH},
    {190, 401, K, "Access token has expired",
     "Invalid OAuth access token - Cannot parse access token", OAUTH},
    {200, 403, X, "API Permission", "Permission is either not granted or has been removed.", OAUTH},
    {368, 403, X, "Temporarily blocked for policies violations",
     "The WhatsApp Business Account is restricted or disabled for violating a platform policy.",
     OAUTH},
    {80007, 400, T, "Rate limit issues",
     "The WhatsApp Business Account has reached its rate limit.", OAUTH},
    {130403, 400, X, "Business blocked this user", "The business has blocked this user.", OAUTH},
    {130429, 400, T, "Rate limit hit", "Cloud API message throughput has been reached.", OAUTH},
    {130472, 400, X, "User's number is part of an experiment",
     "Message was not sent as part of an experiment.", OAUTH},
    {130497, 400, X, "Business account is restricted from messaging users in this country",
     "The business is restricted from messaging users in this country.", OAUTH},
    {130501, 400, X, "Unsupported message type", "Message type is not currently supported.", OAUTH},
    {131000, 500, R, "Something went wrong", "Message failed to send due to an unknown error.",
     OAUTH},
    {131005, 403, X, "Access denied", "Permission is either not granted or has been removed.",
     OAUTH},
    {131008, 400, X, "Required parameter is missing",
     "The request is missing a required parameter.", OAUTH},
    {131009, 400, X, "Parameter value is not valid", "One or more parameter values are invalid.",
     OAUTH},
    {131014, 400, X, "Request for url failed",
     "Request for the media url failed: the media could not be downloaded.", OAUTH},
    {131016, 500, R, "Service unavailable", "A service is temporarily unavailable.", OAUTH},
    {131021, 400, X, "Recipient cannot be sender", "Sender and recipient phone number is the same.",
     OAUTH},
    {131026, 400, X, "Message Undeliverable", "Unable to deliver message.", OAUTH},
    {131030, 400, X, "Recipient phone number not in allowed list",
     "Recipient phone number not in allowed list.", OAUTH},
    {131031, 403, X, "Account has been locked", "The business account has been locked.", OAUTH},
    {131037, 400, X, "WhatsApp provided number needs display name approval",
     "The number needs display name approval before messages can be sent.", OAUTH},
    {131042, 400, X, "Business eligibility payment issue",
     "There was an error related to your payment method.", OAUTH},
    {131045, 500, X, "Incorrect certificate",
     "Message failed to send due to a phone number registration error.", OAUTH},
    {131047, 400, W, "Re-engagement message",
     "Message failed to send because more than 24 hours have passed since the customer last "
     "replied to this number.",
     OAUTH},
    {131048, 400, T, "Spam rate limit hit",
     "Message failed to send because there are restrictions on how many messages can be sent "
     "from this phone number.",
     OAUTH},
    {131049, 400, C, "This message was not delivered to maintain healthy ecosystem engagement.",
     "In order to maintain a healthy ecosystem engagement, the message failed to be delivered.",
     OAUTH},
    {131050, 400, O, "User has stopped marketing messages",
     "Unable to deliver the marketing message: the user chose to stop receiving marketing "
     "messages from this business.",
     OAUTH},
    {131051, 400, X, "Unsupported message type", "Message type is not currently supported.", OAUTH},
    {131052, 400, X, "Media download error", "Unable to download the media sent by the user.",
     OAUTH},
    {131053, 400, X, "Media upload error", "Unable to upload the media used in the message.",
     OAUTH},
    {131056, 400, P, "(Business Account, Consumer Account) pair rate limit hit",
     "Too many messages sent from the sender phone number to the same recipient phone number in "
     "a short period of time.",
     OAUTH},
    {131057, 500, R, "Account in maintenance mode", "Business Account is in maintenance mode.",
     OAUTH},
    {131060, 400, X, "Inbound message currently unavailable",
     "The inbound message is currently unavailable.", OAUTH},
    {131063, 400, X, "Marketing templates disabled",
     "Marketing template messages are disabled for the Cloud API on this account.", OAUTH},
    {131064, 400, X, "Messaging limit reached",
     "Messaging limit reached due to template classification violations.", OAUTH},
    {132000, 400, TPL, "Number of parameters does not match the expected number of params",
     "The number of variable parameter values does not match the number of variables defined "
     "in the template.",
     OAUTH},
    {132001, 404, TPL, "Template name does not exist in the translation",
     "The template does not exist in the specified language or has not been approved.", OAUTH},
    {132005, 400, TPL, "Translated text too long", "Translated text is too long.", OAUTH},
    {132007, 400, TPL, "Template Format Character Policy Violated",
     "Template content violates a WhatsApp policy.", OAUTH},
    {132008, 400, TPL, "Template param value invalid", "A template parameter value is invalid.",
     OAUTH},
    {132012, 400, TPL, "Template Parameter Format Mismatch",
     "Variable parameter values are formatted incorrectly.", OAUTH},
    {132015, 400, TPL, "Template is Paused", "Template is paused due to low quality.", OAUTH},
    {132016, 400, TPL, "Template is Disabled",
     "Template has been paused too many times due to low quality and is now permanently "
     "disabled.",
     OAUTH},
    {132018, 400, TPL, "There was an issue with the parameters in your template.",
     "One or more template parameter values are invalid for the template.", OAUTH},
    {132068, 400, X, "Flow is blocked", "The flow is in a blocked state.", OAUTH},
    {132069, 400, X, "Flow is throttled", "The flow is throttled.", OAUTH},
    {133000, 500, X, "Incomplete Deregistration", "A previous deregistration attempt failed.",
     OAUTH},
    {133004, 503, R, "Server Temporarily Unavailable", "Server is temporarily unavailable.", OAUTH},
    {133010, 400, X, "Phone number Not Registered",
     "The phone number is not registered on the WhatsApp Business Platform.", OAUTH},
    {133015, 400, R, "Please wait a few minutes before attempting to register this phone number",
     "The phone number was recently deleted; wait 5 minutes.", OAUTH},
    {135000, 400, X, "Generic user error",
     "Message failed to send because of an unknown error with your request parameters.", OAUTH},
};

#undef R
#undef T
#undef P
#undef K
#undef W
#undef O
#undef TPL
#undef X
#undef C

const struct wa_whatsapp_error_info *
wa_whatsapp_error_lookup(int64_t code)
{
    size_t lo = 0, hi = WA_ARRAY_LEN(table);

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if (table[mid].code == code) {
            return &table[mid];
        }
        if (table[mid].code < code) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return NULL;
}

enum wa_whatsapp_error_class
wa_whatsapp_error_classify(int64_t code, int http_status)
{
    const struct wa_whatsapp_error_info *info = wa_whatsapp_error_lookup(code);

    if (info != NULL) {
        return info->cls;
    }
    if (code >= 132000 && code < 133000) {
        return WA_WHATSAPP_ERROR_TEMPLATE;
    }
    if (code >= 200 && code <= 299) {
        return WA_WHATSAPP_ERROR_PERMANENT; /* permission not granted */
    }
    if (http_status == 429) {
        return WA_WHATSAPP_ERROR_THROTTLED;
    }
    if (http_status >= 500) {
        return WA_WHATSAPP_ERROR_RETRYABLE;
    }
    return WA_WHATSAPP_ERROR_PERMANENT;
}

bool
wa_whatsapp_error_class_retryable(enum wa_whatsapp_error_class cls)
{
    return cls == WA_WHATSAPP_ERROR_RETRYABLE || cls == WA_WHATSAPP_ERROR_THROTTLED ||
           cls == WA_WHATSAPP_ERROR_PAIR_RATE || cls == WA_WHATSAPP_ERROR_CAPPED;
}

const char *
wa_whatsapp_error_class_name(enum wa_whatsapp_error_class cls)
{
    switch (cls) {
    case WA_WHATSAPP_ERROR_RETRYABLE:
        return "retryable";
    case WA_WHATSAPP_ERROR_THROTTLED:
        return "throttled";
    case WA_WHATSAPP_ERROR_PAIR_RATE:
        return "pair_rate";
    case WA_WHATSAPP_ERROR_TOKEN:
        return "token";
    case WA_WHATSAPP_ERROR_WINDOW:
        return "window";
    case WA_WHATSAPP_ERROR_OPTED_OUT:
        return "opted_out";
    case WA_WHATSAPP_ERROR_TEMPLATE:
        return "template";
    case WA_WHATSAPP_ERROR_PERMANENT:
        return "permanent";
    case WA_WHATSAPP_ERROR_CAPPED:
        return "marketing_cap";
    }
    return "permanent";
}

const char *
wa_whatsapp_error_title(int64_t code)
{
    const struct wa_whatsapp_error_info *info = wa_whatsapp_error_lookup(code);

    return info != NULL ? info->title : "Unknown error";
}

int
wa_whatsapp_error_http_status(int64_t code)
{
    const struct wa_whatsapp_error_info *info = wa_whatsapp_error_lookup(code);

    return info != NULL ? info->http_status : 400;
}

enum wa_err
wa_whatsapp_error_graph_json(struct wa_buf *out, int64_t code, int64_t subcode, const char *details,
                             const char *fbtrace_id)
{
    const struct wa_whatsapp_error_info *info = wa_whatsapp_error_lookup(code);
    const char *title = info != NULL ? info->title : "Unknown error";
    const char *type = info != NULL ? info->type : OAUTH;
    size_t start = out->len;
    enum wa_err err;
    char msg[320];
    int n;

    if (subcode == 33 && code == 100) {
        type = GRAPH;
    }
    if (details == NULL) {
        details = info != NULL ? info->details : "Unknown error.";
    }
    if (subcode == 33 && code == 100) {
        /* Meta's message for a bad object id names the problem, not the code. */
        n = snprintf(msg, sizeof(msg), "%s", details);
    } else {
        n = snprintf(msg, sizeof(msg), "(#%lld) %s", (long long)code, title);
    }
    if (n < 0) {
        return WA_EINTERNAL;
    }
    err = wa_buf_append_str(out, "{\"error\":{\"message\":");
    if (err == WA_OK) {
        err = wa_buf_append_json_string(out, msg, strlen(msg));
    }
    if (err == WA_OK) {
        err = wa_buf_printf(out,
                            ",\"type\":\"%s\",\"code\":%lld,\"error_data\":"
                            "{\"messaging_product\":\"whatsapp\",\"details\":",
                            type, (long long)code);
    }
    if (err == WA_OK) {
        err = wa_buf_append_json_string(out, details, strlen(details));
    }
    if (err == WA_OK) {
        err = wa_buf_append_str(out, "}");
    }
    if (err == WA_OK && subcode != 0) {
        err = wa_buf_printf(out, ",\"error_subcode\":%lld", (long long)subcode);
    }
    if (err == WA_OK && fbtrace_id != NULL) {
        err = wa_buf_append_str(out, ",\"fbtrace_id\":");
        if (err == WA_OK) {
            err = wa_buf_append_json_string(out, fbtrace_id, strlen(fbtrace_id));
        }
    }
    if (err == WA_OK) {
        err = wa_buf_append_str(out, "}}");
    }
    if (err != WA_OK) {
        out->len = start;
        if (out->data != NULL) {
            out->data[start] = '\0';
        }
    }
    return err;
}

enum wa_err
wa_whatsapp_error_webhook_json(struct wa_buf *out, int64_t code, const char *details)
{
    const struct wa_whatsapp_error_info *info = wa_whatsapp_error_lookup(code);
    const char *title = info != NULL ? info->title : "Unknown error";
    size_t start = out->len;
    enum wa_err err;

    if (details == NULL) {
        details = info != NULL ? info->details : "Unknown error.";
    }
    err = wa_buf_printf(out, "{\"code\":%lld,\"title\":", (long long)code);
    if (err == WA_OK) {
        err = wa_buf_append_json_string(out, title, strlen(title));
    }
    if (err == WA_OK) {
        err = wa_buf_append_str(out, ",\"message\":");
    }
    if (err == WA_OK) {
        err = wa_buf_append_json_string(out, title, strlen(title));
    }
    if (err == WA_OK) {
        err = wa_buf_append_str(out, ",\"error_data\":{\"details\":");
    }
    if (err == WA_OK) {
        err = wa_buf_append_json_string(out, details, strlen(details));
    }
    if (err == WA_OK) {
        err = wa_buf_append_str(out, "},\"href\":\"https://developers.facebook.com/docs/whatsapp/"
                                     "cloud-api/support/error-codes/\"}");
    }
    if (err != WA_OK) {
        out->len = start;
        if (out->data != NULL) {
            out->data[start] = '\0';
        }
    }
    return err;
}
