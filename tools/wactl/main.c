/*
 * wactl: the operator CLI (docs/wactl.md). main.c parses the command line and dispatches:
 *
 *   health   the daemons' /readyz, or the gateway's /v1/health        health.c
 *   send     one outbound.request, optionally waiting for its result   send.c
 *   tail     decoded CloudEvents of a topic as they arrive             tail.c
 *   trace    a message's path across the topics                        tail.c
 *   dlq      list, show, replay dead letters                           dlq.c
 *   spool    inspect a wa-ingest spool directory offline               spool.c
 *   topics   ensure the contract's topics exist                        topics.c
 *
 * Exit statuses (wactl.h): 0 ok, 1 the answer is no, 2 usage, 3 unreachable or out of time.
 * Logs of the libraries go to stderr, errors only (-v: info).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wa/config.h"
#include "wa/log.h"
#include "wactl.h"

struct command {
    const char *name;
    int (*run)(struct wx *x);
    const char *usage;
};

static const char common_help[] =
    "Common options:\n"
    "  --brokers HOST:PORT[,...]  Kafka (WA_KAFKA_BROKERS; default 127.0.0.1:9092)\n"
    "  --prefix P                 topic prefix (WA_TOPIC_PREFIX; default wa.)\n"
    "  --timeout DURATION         give up after this long (e.g. 10s, 500ms)\n"
    "  -v, --verbose              library logs at info level on stderr\n"
    "  -h, --help                 this text\n"
    "Exit status: 0 ok, 1 the answer is no (not ready, failed, not found, declined),\n"
    "2 usage error, 3 Kafka or a daemon unreachable, or out of time.\n";

static const struct command commands[] = {
    {"health", wx_cmd_health,
     "usage: wactl health [--url BASE]... [--gateway BASE] [--json]\n"
     "Asks each BASE's GET /readyz (default: the six daemons on 127.0.0.1:8080-8085), or with\n"
     "--gateway the gateway's GET /v1/health, and prints one line per daemon: name, URL, ready\n"
     "or not, the checks that are down. Exit 0 when all are ready, 1 when one is not, 3 when one\n"
     "does not answer. Default timeout 5s.\n"},
    {"send", wx_cmd_send,
     "usage: wactl send --to NUMBER (--text TEXT | --template NAME [--lang CODE] | --data FILE)\n"
     "                  [--phone-number-id ID] [--request-id ID] [--category C] [--wait]\n"
     "Produces one outbound.request (CloudEvent wa.outbound.request.v1, key\n"
     "<phone_number_id>:<to>, a new traceparent) for wa-notify and prints its request id and\n"
     "trace id. --data FILE takes the whole request data (JSON; '-' for stdin). The phone\n"
     "number id defaults to WA_SANDBOX_PHONE_NUMBER_ID, then 100000000000001. --wait reads\n"
     "outbound.result until the request's result arrives: exit 0 accepted, 1 failed, 3 none\n"
     "within --timeout (default 30s).\n"},
    {"tail", wx_cmd_tail,
     "usage: wactl tail TOPIC [--from-beginning] [--count N] [--conversation KEY]\n"
     "                  [--type TYPE] [--trace TRACE_ID] [--request-id ID] [--json]\n"
     "Prints the CloudEvents of TOPIC (after the prefix, e.g. inbound.message) as they arrive:\n"
     "time, topic[partition]@offset, type, subject, id, trace id, and a summary of the data\n"
     "(--json: the whole event). Filters keep events whose subject is KEY, whose type is\n"
     "TYPE, whose traceparent carries TRACE_ID, or whose data names request id ID. Runs until\n"
     "Ctrl-C, --count matching events, or --timeout.\n"},
    {"trace", wx_cmd_trace,
     "usage: wactl trace ID [--idle DURATION] [--json]\n"
     "Reads every event topic from the beginning and prints, in time order, the events that\n"
     "belong to ID: a wamid, a request id, an event id or a trace id (32 hex digits), then\n"
     "everything sharing those events' trace ids. Stops when nothing arrives for --idle\n"
     "(default 2s) after the partitions are assigned. Exit 1 when nothing matched.\n"},
    {"dlq", wx_cmd_dlq,
     "usage: wactl dlq list [--topic T] [--request-id ID] [--json]\n"
     "       wactl dlq show (REQUEST_ID | PARTITION:OFFSET) [--topic T]\n"
     "       wactl dlq replay (REQUEST_ID... | --all) [--dry-run] [--yes]\n"
     "Dead letters of outbound.dlq (or --topic router.crm.dlq for list and show). list prints\n"
     "one line per dead letter: partition:offset, time, request id, to, reason, Meta code.\n"
     "show prints the whole event. replay produces each dead letter's request to\n"
     "outbound.request again under a new request id (<id>.r<n>, printed), after asking for\n"
     "confirmation on the terminal unless --yes; --dry-run prints what would be sent. Exit 1\n"
     "when nothing matched or the confirmation was declined.\n"},
    {"spool", wx_cmd_spool,
     "usage: wactl spool inspect DIR [--json]\n"
     "Reads a wa-ingest spool directory (WA_SPOOL_DIR) offline: for each spool-*.log, its\n"
     "records (topic, key, event id, type, trace id, bytes) and whether its tail is torn\n"
     "(a crash during an unacknowledged write; ignored by the replayer). Exit 1 when a file\n"
     "has a damaged record before its end.\n"},
    {"topics", wx_cmd_topics,
     "usage: wactl topics ensure [--partitions N]\n"
     "Creates the topics of libs/contract that do not exist (with N partitions, default 1,\n"
     "and the brokers' default replication factor) and waits for their metadata; existing\n"
     "topics are kept. Prints each topic and its partition count.\n"},
};

static int
usage_all(FILE *f)
{
    fprintf(f,
            "usage: wactl COMMAND [OPTIONS]   (wactl COMMAND --help for each)\n"
            "Commands: health, send, tail, trace, dlq, spool, topics.\n%s",
            common_help);
    return f == stdout ? WX_OK : WX_USAGE;
}

enum {
    O_BROKERS = 256,
    O_PREFIX,
    O_URL,
    O_GATEWAY,
    O_TIMEOUT,
    O_IDLE,
    O_COUNT,
    O_FROM_BEGINNING,
    O_JSON,
    O_DRY_RUN,
    O_YES,
    O_ALL,
    O_WAIT,
    O_CONVERSATION,
    O_TYPE,
    O_TRACE,
    O_REQUEST_ID,
    O_TO,
    O_TEXT,
    O_PHONE,
    O_TEMPLATE,
    O_LANG,
    O_DATA,
    O_CATEGORY,
    O_TOPIC,
    O_PARTITIONS,
};

static const struct option options[] = {
    {"brokers", required_argument, NULL, O_BROKERS},
    {"prefix", required_argument, NULL, O_PREFIX},
    {"url", required_argument, NULL, O_URL},
    {"gateway", required_argument, NULL, O_GATEWAY},
    {"timeout", required_argument, NULL, O_TIMEOUT},
    {"idle", required_argument, NULL, O_IDLE},
    {"count", required_argument, NULL, O_COUNT},
    {"from-beginning", no_argument, NULL, O_FROM_BEGINNING},
    {"json", no_argument, NULL, O_JSON},
    {"dry-run", no_argument, NULL, O_DRY_RUN},
    {"yes", no_argument, NULL, O_YES},
    {"all", no_argument, NULL, O_ALL},
    {"wait", no_argument, NULL, O_WAIT},
    {"conversation", required_argument, NULL, O_CONVERSATION},
    {"type", required_argument, NULL, O_TYPE},
    {"trace", required_argument, NULL, O_TRACE},
    {"request-id", required_argument, NULL, O_REQUEST_ID},
    {"to", required_argument, NULL, O_TO},
    {"text", required_argument, NULL, O_TEXT},
    {"phone-number-id", required_argument, NULL, O_PHONE},
    {"template", required_argument, NULL, O_TEMPLATE},
    {"lang", required_argument, NULL, O_LANG},
    {"data", required_argument, NULL, O_DATA},
    {"category", required_argument, NULL, O_CATEGORY},
    {"topic", required_argument, NULL, O_TOPIC},
    {"partitions", required_argument, NULL, O_PARTITIONS},
    {"verbose", no_argument, NULL, 'v'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static bool
parse_duration(const char *name, const char *s, int64_t *out)
{
    if (wa_parse_ms(s, out) != WA_OK || *out < 0) {
        fprintf(stderr, "wactl: --%s: '%s' is not a duration (e.g. 5s, 500ms)\n", name, s);
        return false;
    }
    return true;
}

static bool
parse_count(const char *name, const char *s, int64_t max, int64_t *out)
{
    if (wa_parse_int(s, out) != WA_OK || *out < 1 || *out > max) {
        fprintf(stderr, "wactl: --%s: '%s' is not a number from 1 to %lld\n", name, s,
                (long long)max);
        return false;
    }
    return true;
}

/* Fills x from argv (after the command name). Returns -1 to go on, else an exit status. */
static int
parse(struct wx *x, const struct command *cmd, int argc, char **argv)
{
    int64_t n;
    int c;

    optind = 1;
    while ((c = getopt_long(argc, argv, "vh", options, NULL)) != -1) {
        switch (c) {
        case O_BROKERS:
            x->brokers = optarg;
            break;
        case O_PREFIX:
            x->prefix = optarg;
            break;
        case O_URL:
            if (x->nurls == WX_MAX_URLS) {
                fprintf(stderr, "wactl: at most %d --url\n", WX_MAX_URLS);
                return WX_USAGE;
            }
            x->urls[x->nurls++] = optarg;
            break;
        case O_GATEWAY:
            x->gateway = optarg;
            break;
        case O_TIMEOUT:
            if (!parse_duration("timeout", optarg, &x->timeout_ms)) {
                return WX_USAGE;
            }
            break;
        case O_IDLE:
            if (!parse_duration("idle", optarg, &x->idle_ms)) {
                return WX_USAGE;
            }
            break;
        case O_COUNT:
            if (!parse_count("count", optarg, INT32_MAX, &x->count)) {
                return WX_USAGE;
            }
            break;
        case O_FROM_BEGINNING:
            x->from_beginning = true;
            break;
        case O_JSON:
            x->json = true;
            break;
        case O_DRY_RUN:
            x->dry_run = true;
            break;
        case O_YES:
            x->yes = true;
            break;
        case O_ALL:
            x->all = true;
            break;
        case O_WAIT:
            x->wait = true;
            break;
        case O_CONVERSATION:
            x->conversation = optarg;
            break;
        case O_TYPE:
            x->type = optarg;
            break;
        case O_TRACE:
            x->trace = optarg;
            break;
        case O_REQUEST_ID:
            x->request_id = optarg;
            break;
        case O_TO:
            x->to = optarg;
            break;
        case O_TEXT:
            x->text = optarg;
            break;
        case O_PHONE:
            x->phone_number_id = optarg;
            break;
        case O_TEMPLATE:
            x->template_name = optarg;
            break;
        case O_LANG:
            x->lang = optarg;
            break;
        case O_DATA:
            x->data_file = optarg;
            break;
        case O_CATEGORY:
            x->category = optarg;
            break;
        case O_TOPIC:
            x->topic = optarg;
            break;
        case O_PARTITIONS:
            if (!parse_count("partitions", optarg, 10000, &n)) {
                return WX_USAGE;
            }
            x->partitions = (int)n;
            break;
        case 'v':
            x->verbose = true;
            break;
        case 'h':
            printf("%s%s", cmd->usage, common_help);
            return WX_OK;
        default:
            fprintf(stderr, "%s", cmd->usage);
            return WX_USAGE;
        }
    }
    x->args = argv + optind;
    x->nargs = argc - optind;
    return -1;
}

static const char *
env_or(const char *name, const char *def)
{
    const char *v = getenv(name);

    return v != NULL && v[0] != '\0' ? v : def;
}

struct security_cfg {
    struct wa_kafka_security_cfg ks;
};
static const struct wa_cfg_spec security_spec[] = {WA_CFG_KAFKA_SECURITY(struct security_cfg, ks)};
static struct security_cfg security_cfg; /* lives as long as the process: x.security borrows */

int
main(int argc, char **argv)
{
    struct wa_error error = {0};
    struct wx x = {0};
    int rc;

    if (argc < 2) {
        return usage_all(stderr);
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        return usage_all(stdout);
    }
    x.brokers = env_or("WA_KAFKA_BROKERS", "127.0.0.1:9092");
    x.prefix = env_or("WA_TOPIC_PREFIX", "wa.");
    if (wa_cfg_load(security_spec, WA_ARRAY_LEN(security_spec), &security_cfg, wa_cfg_getenv, NULL,
                    &error) != WA_OK) {
        fprintf(stderr, "wactl: configuration error: %s\n", error.message);
        return WX_USAGE;
    }
    wa_kafka_security_from_cfg(&security_cfg.ks, &x.security);
    if (wa_kafka_security_check(&x.security, &error) != WA_OK) {
        fprintf(stderr, "wactl: configuration error: %s\n", error.message);
        return WX_USAGE;
    }
    x.idle_ms = 2000;
    for (size_t i = 0; i < WA_ARRAY_LEN(commands); i++) {
        if (strcmp(argv[1], commands[i].name) != 0) {
            continue;
        }
        if ((rc = parse(&x, &commands[i], argc - 1, argv + 1)) >= 0) {
            return rc;
        }
        wa_log_init("wactl", x.verbose ? WA_LOG_INFO : WA_LOG_ERROR);
        wa_log_set_fd(2);
        rc = commands[i].run(&x);
        fflush(stdout);
        (void)wa_kafka_wait_destroyed(5000);
        return rc;
    }
    fprintf(stderr, "wactl: unknown command '%s'\n", argv[1]);
    return usage_all(stderr);
}
