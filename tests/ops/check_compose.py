#!/usr/bin/env python3
"""check_compose.py: the rules docker-compose.yml keeps beyond the Compose schema.

- every long-running service has a health check (Jaeger excepted: its image has no tool for
  one, and nothing depends on it); each daemon's runs `wactl health` on its own WA_LISTEN port;
- every depends_on entry waits for service_healthy, or service_completed_successfully for the
  one-shot jobs `topics` (wactl topics ensure) and `users-migrate` (wa-users migrate), which
  never restart; every daemon waits for Kafka, Redis, MongoDB and topics; wa-users also for
  users-migrate;
- named volumes (declared at the top level) hold wa-ingest's spool at WA_SPOOL_DIR and the
  data of Kafka, Redis, MongoDB and Prometheus;
- Prometheus loads deploy/prometheus/prometheus-compose.yml, whose jobs name every daemon's
  service and port; Jaeger exposes 16686 and 4318.

  check_compose.py COMPOSE_FILE PROMETHEUS_COMPOSE_CONFIG
  check_compose.py --self-test COMPOSE_FILE PROMETHEUS_COMPOSE_CONFIG
"""
import copy
import sys

import yaml

DAEMONS = {"gateway": "wa-gateway", "ingest": "wa-ingest", "router": "wa-router",
           "notify": "wa-notify", "analytics": "wa-analytics", "users": "wa-users"}
JOBS = {"topics": ["wactl", "topics", "ensure"], "users-migrate": ["wa-users", "migrate"]}
INFRA = ["kafka", "redis", "mongo"]
DATA = {"kafka": "/var/lib/kafka/data", "redis": "/data", "mongo": "/data/db",
        "prometheus": "/prometheus"}


def named_volume(svc, target, top):
    for v in svc.get("volumes", []):
        src, _, rest = v.partition(":") if isinstance(v, str) else (v.get("source"), ":", v.get("target"))
        tgt = rest.split(":")[0] if isinstance(v, str) else rest
        if tgt == target and src in top and not src.startswith((".", "/")):
            return True
    return False


def check(doc, prom):
    errs = []
    svcs = doc.get("services", {})
    top = doc.get("volumes") or {}
    for name, argv in JOBS.items():
        s = svcs.get(name)
        if s is None:
            errs.append(f"no one-shot service {name}")
            continue
        cmd = [c.rsplit("/", 1)[-1] for c in (s.get("entrypoint") or [])] + list(s.get("command") or [])
        if cmd[:len(argv)] != argv:
            errs.append(f"{name} runs {cmd}, not {argv}")
        if str(s.get("restart", "no")) != "no":
            errs.append(f"{name} restarts: a job must run once")
    for name, s in svcs.items():
        if name not in JOBS and name != "jaeger" and "healthcheck" not in s:
            errs.append(f"{name} has no health check")
        for dep, cond in (s.get("depends_on") or {}).items() if isinstance(s.get("depends_on"), dict) else []:
            want = "service_completed_successfully" if dep in JOBS else "service_healthy"
            if (cond or {}).get("condition") != want:
                errs.append(f"{name} depends on {dep} without condition {want}")
        if isinstance(s.get("depends_on"), list):
            errs.append(f"{name}: depends_on is a list (no condition)")
    for name, daemon in DAEMONS.items():
        s = svcs.get(name)
        if s is None:
            errs.append(f"no service {name}")
            continue
        entry = (s.get("entrypoint") or [""])[0].rsplit("/", 1)[-1]
        if entry != daemon:
            errs.append(f"{name} runs {entry}, not {daemon}")
        listen = str((s.get("environment") or {}).get("WA_LISTEN", ""))
        port = listen.rsplit(":", 1)[-1]
        test = (s.get("healthcheck") or {}).get("test") or []
        if test[:4] != ["CMD", "wactl", "health", "--url"] or not str(test[-1]).endswith(":" + port):
            errs.append(f"{name}: health check {test} is not wactl health on its port {port}")
        deps = s.get("depends_on") or {}
        for d in INFRA + ["topics"] + (["users-migrate"] if name == "users" else []):
            if d not in deps:
                errs.append(f"{name} does not wait for {d}")
        if not any(t.get("targets") == [f"{name}:{port}"] for j in prom["scrape_configs"]
                   if j["job_name"] == daemon for t in j.get("static_configs", [])):
            errs.append(f"prometheus-compose.yml does not scrape {daemon} at {name}:{port}")
    spool = str((svcs.get("ingest", {}).get("environment") or {}).get("WA_SPOOL_DIR", ""))
    if not spool or not named_volume(svcs.get("ingest", {}), spool, top):
        errs.append(f"ingest's spool ({spool or 'WA_SPOOL_DIR unset'}) is not on a named volume")
    for name, target in DATA.items():
        if name not in svcs or not named_volume(svcs[name], target, top):
            errs.append(f"{name}'s data at {target} is not on a named volume")
    p = svcs.get("prometheus", {})
    if not any("prometheus-compose.yml" in str(c) for c in (p.get("command") or [])):
        errs.append("prometheus does not load prometheus-compose.yml")
    ports = " ".join(str(x) for x in svcs.get("jaeger", {}).get("ports", []))
    if "16686" not in ports or "4318" not in ports:
        errs.append("jaeger does not expose 16686 (UI, API) and 4318 (OTLP/HTTP)")
    return errs


def self_test(doc, prom):
    breaks = {
        "no health check": lambda d: d["services"]["router"].pop("healthcheck"),
        "list depends_on": lambda d: d["services"]["notify"].__setitem__("depends_on", ["kafka"]),
        "started instead of healthy": lambda d: d["services"]["gateway"]["depends_on"].__setitem__(
            "kafka", {"condition": "service_started"}),
        "spool on the container": lambda d: d["services"]["ingest"].pop("volumes"),
        "no topics job": lambda d: d["services"].pop("topics"),
        "migrate restarts": lambda d: d["services"]["users-migrate"].__setitem__("restart", "always"),
        "health on another port": lambda d: d["services"]["users"]["healthcheck"].__setitem__(
            "test", ["CMD", "wactl", "health", "--url", "http://127.0.0.1:9999"]),
        "no jaeger": lambda d: d["services"].pop("jaeger"),
        "kafka data not named": lambda d: d["services"]["kafka"].__setitem__("volumes", ["./k:/var/lib/kafka/data"]),
    }
    missed = []
    for what, brk in breaks.items():
        d = copy.deepcopy(doc)
        brk(d)
        if not check(d, prom):
            missed.append(what)
    for m in missed:
        print(f"self-test: '{m}' was not caught", file=sys.stderr)
    print(f"check_compose self-test: {len(breaks) - len(missed)}/{len(breaks)} breaks caught")
    return 1 if missed else 0


def main():
    args = sys.argv[1:]
    selftest = args[:1] == ["--self-test"]
    if selftest:
        args = args[1:]
    if len(args) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    with open(args[0]) as f:
        doc = yaml.safe_load(f)
    with open(args[1]) as f:
        prom = yaml.safe_load(f)
    if selftest:
        return self_test(doc, prom)
    errs = check(doc, prom)
    for e in errs:
        print(f"{args[0]}: {e}", file=sys.stderr)
    print(f"check_compose: {len(doc.get('services', {}))} services, {len(errs)} problems")
    return 1 if errs else 0


if __name__ == "__main__":
    sys.exit(main())
