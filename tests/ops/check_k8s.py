#!/usr/bin/env python3
"""Checks rendered wabridge Kubernetes manifests (kustomize build output, on stdin or a file).

Schema: every object against the Kubernetes JSON schemas that kubernetes-validate ships
(strict: unknown fields fail), offline; the two custom resources the overlays use (KEDA's
ScaledObject, External Secrets' ExternalSecret) get a structural check instead.
Policy (docs/operations.md): each daemon's container has probes, requests and limits, runs
non-root with a read-only root filesystem, no privilege escalation, ALL capabilities dropped and
seccomp RuntimeDefault; each daemon has a PodDisruptionBudget and a NetworkPolicy; wa-ingest is
a StatefulSet whose WA_SPOOL_DIR is a PersistentVolumeClaim mount; grace periods outlast preStop
plus WA_SHUTDOWN_TIMEOUT; secrets reach the daemons only as files; only wa-gateway and
wa-ingest are reachable from outside, through a TLS Ingress.

usage: check_k8s.py RENDERED.yaml [--router-rules FILE]   exit 0 clean, 1 findings
       check_k8s.py --self-test RENDERED.yaml [--router-rules FILE]
         breaks the rendered objects one way at a time and fails unless each break is found
"""
import copy
import json
import re
import sys

import kubernetes_validate
import yaml

K8S_VERSION = "1.37.0"
DAEMONS = {"wa-gateway": 8080, "wa-ingest": 8081, "wa-router": 8082, "wa-notify": 8083,
           "wa-analytics": 8084, "wa-users": 8085}
OUTSIDE = {"wa-gateway", "wa-ingest"}
SECRET_VARS = {"WA_APP_SECRET", "WA_APP_SECRET_PREVIOUS", "WA_VERIFY_TOKEN", "WA_ACCESS_TOKEN",
               "WA_REDIS_URL", "WA_MONGO_URI", "WA_OPTOUT_KEY", "WA_KAFKA_SASL_PASSWORD",
               "WA_KAFKA_SSL_KEY_PASSWORD"}
CUSTOM = {("keda.sh/v1alpha1", "ScaledObject"), ("keda.sh/v1alpha1", "TriggerAuthentication"),
          ("external-secrets.io/v1", "ExternalSecret")}
INTERNAL_NAMESPACES = {"monitoring"}
NAME = "app.kubernetes.io/name"


def duration_s(text):
    m = re.fullmatch(r"(\d+)(ms|s|m|h)?", text)
    if not m:
        raise ValueError(f"bad duration {text!r}")
    return int(m.group(1)) * {"ms": 0.001, None: 0.001, "s": 1, "m": 60, "h": 3600}[m.group(2)]


def by_kind(docs, kind):
    return [d for d in docs if d.get("kind") == kind]


def check_schema(docs, out):
    for d in docs:
        key = (d.get("apiVersion"), d.get("kind"))
        name = f"{d.get('kind')}/{d.get('metadata', {}).get('name')}"
        if key in CUSTOM:
            spec = d.get("spec") or {}
            if key[1] == "ScaledObject":
                if not spec.get("scaleTargetRef", {}).get("name") or not spec.get("triggers"):
                    out.append(f"{name}: needs spec.scaleTargetRef.name and spec.triggers")
            elif key[1] == "TriggerAuthentication":
                if not spec.get("secretTargetRef"):
                    out.append(f"{name}: needs spec.secretTargetRef")
            elif not spec.get("secretStoreRef") or not spec.get("target", {}).get("name"):
                out.append(f"{name}: needs spec.secretStoreRef and spec.target.name")
            continue
        try:
            kubernetes_validate.validate(d, K8S_VERSION, strict=True)
        except kubernetes_validate.SchemaNotFoundError:
            out.append(f"{name}: no schema for {key[0]} {key[1]} in Kubernetes {K8S_VERSION}")
        except kubernetes_validate.ValidationError as e:
            out.append(f"{name}: schema: {e.message} at {'/'.join(map(str, e.path))}")


def check_container(owner, pod, c, is_daemon, out):
    where = f"{owner}: container {c['name']}"
    psc, sc = pod.get("securityContext", {}), c.get("securityContext", {})
    if is_daemon:
        for probe in ("livenessProbe", "readinessProbe"):
            if probe not in c:
                out.append(f"{where}: no {probe}")
    res = c.get("resources", {})
    for part in ("requests", "limits"):
        for r in ("cpu", "memory"):
            if r not in res.get(part, {}):
                out.append(f"{where}: no {part}.{r}")
    if not (sc.get("runAsNonRoot", psc.get("runAsNonRoot")) is True):
        out.append(f"{where}: not runAsNonRoot")
    if sc.get("runAsUser", psc.get("runAsUser", 1)) == 0:
        out.append(f"{where}: runAsUser 0")
    if sc.get("readOnlyRootFilesystem") is not True:
        out.append(f"{where}: root filesystem not read-only")
    if sc.get("allowPrivilegeEscalation") is not False:
        out.append(f"{where}: allowPrivilegeEscalation not false")
    if sc.get("privileged"):
        out.append(f"{where}: privileged")
    if "ALL" not in sc.get("capabilities", {}).get("drop", []) or sc.get("capabilities", {}).get("add"):
        out.append(f"{where}: capabilities: ALL not dropped (or some added)")
    seccomp = sc.get("seccompProfile", psc.get("seccompProfile", {})).get("type")
    if seccomp != "RuntimeDefault":
        out.append(f"{where}: seccomp profile {seccomp!r}, want RuntimeDefault")
    for e in c.get("env", []):
        if e["name"] in SECRET_VARS:
            out.append(f"{where}: {e['name']} set directly; secrets come as {e['name']}_FILE")
        if e["name"].endswith("_FILE") and e["name"][:-5] in SECRET_VARS and "value" not in e:
            out.append(f"{where}: {e['name']} must be a path")
    for ef in c.get("envFrom", []):
        if "secretRef" in ef:
            out.append(f"{where}: envFrom a Secret (secrets come as files)")


def selects(selector, labels):
    return all(labels.get(k) == v for k, v in (selector or {}).get("matchLabels", {}).items())


def check_policy(docs, out, router_rules):
    workloads = {d["metadata"]["name"]: d for d in docs if d["kind"] in ("Deployment", "StatefulSet")}
    for name in DAEMONS:
        if name not in workloads:
            out.append(f"{name}: no workload")
    for name, w in workloads.items():
        want = "StatefulSet" if name == "wa-ingest" else "Deployment"
        if w["kind"] != want:
            out.append(f"{name}: is a {w['kind']}, want a {want}")
    for w in list(workloads.values()) + by_kind(docs, "Job"):
        name, pod = w["metadata"]["name"], w["spec"]["template"]["spec"]
        if pod.get("automountServiceAccountToken") is not False:
            out.append(f"{name}: service account token mounted")
        for c in pod.get("containers", []) + pod.get("initContainers", []):
            check_container(name, pod, c, w["kind"] != "Job", out)
        if w["kind"] == "Job":
            continue
        labels = w["spec"]["template"]["metadata"]["labels"]
        if not pod.get("topologySpreadConstraints"):
            out.append(f"{name}: no topologySpreadConstraints")
        if not any(selects(p["spec"].get("selector"), labels) for p in by_kind(docs, "PodDisruptionBudget")):
            out.append(f"{name}: no PodDisruptionBudget")
        own = [p for p in by_kind(docs, "NetworkPolicy")
               if p["spec"]["podSelector"].get("matchLabels", {}).get(NAME) == name]
        if not own:
            out.append(f"{name}: no NetworkPolicy of its own")
        c = pod["containers"][0]
        env = {e["name"]: e.get("value") for e in c.get("env", [])}
        stop = pod.get("terminationGracePeriodSeconds", 30)
        drain = duration_s(env.get("WA_SHUTDOWN_TIMEOUT", "4s"))
        pre = c.get("lifecycle", {}).get("preStop", {}).get("sleep", {}).get("seconds", 0)
        if stop <= pre + drain:
            out.append(f"{name}: terminationGracePeriodSeconds {stop} <= preStop {pre} s + drain {drain:g} s")
        if name == "wa-ingest":
            claims = {t["metadata"]["name"] for t in w["spec"].get("volumeClaimTemplates", [])}
            spool = env.get("WA_SPOOL_DIR")
            mounts = {m["mountPath"]: m["name"] for m in c.get("volumeMounts", [])}
            if not spool:
                out.append("wa-ingest: WA_SPOOL_DIR not set")
            elif mounts.get(spool) not in claims:
                out.append(f"wa-ingest: WA_SPOOL_DIR {spool} is not a PersistentVolumeClaim mount")

    # Secrets: only as files.
    for cm in by_kind(docs, "ConfigMap"):
        for k, v in (cm.get("data") or {}).items():
            if k in SECRET_VARS or re.search(r"(secret|token|password)", k, re.I) \
                    or re.search(r"://[^/@\s]*:[^/@\s]*@", v or ""):
                out.append(f"ConfigMap/{cm['metadata']['name']}: {k} looks like a secret")
    # Reachable from outside: only gateway and ingest.
    for s in by_kind(docs, "Service"):
        if s["spec"].get("type", "ClusterIP") != "ClusterIP":
            out.append(f"Service/{s['metadata']['name']}: type {s['spec']['type']} exposes it outside")
    pods = {n: w["spec"]["template"]["metadata"]["labels"] for n, w in workloads.items()}
    for p in by_kind(docs, "NetworkPolicy"):
        targets = {n for n, lab in pods.items() if selects(p["spec"]["podSelector"], lab)}
        for rule in p["spec"].get("ingress", []):
            peers = rule.get("from")
            outside = not peers or any(
                "ipBlock" in peer or ("namespaceSelector" in peer and peer["namespaceSelector"]
                                      .get("matchLabels", {}).get("kubernetes.io/metadata.name")
                                      not in INTERNAL_NAMESPACES) for peer in peers)
            if outside and targets - OUTSIDE:
                out.append(f"NetworkPolicy/{p['metadata']['name']}: lets outside traffic reach "
                           f"{sorted(targets - OUTSIDE)}")
    ingresses = by_kind(docs, "Ingress")
    backends = {}
    for ing in ingresses:
        tls_hosts = {h for t in ing["spec"].get("tls", []) for h in t.get("hosts", [])}
        for rule in ing["spec"].get("rules", []):
            if rule.get("host") not in tls_hosts:
                out.append(f"Ingress/{ing['metadata']['name']}: host {rule.get('host')} without TLS")
            for path in rule.get("http", {}).get("paths", []):
                backends[path["path"]] = path["backend"]["service"]["name"]
    if set(backends.values()) - OUTSIDE:
        out.append(f"Ingress: routes to {sorted(set(backends.values()) - OUTSIDE)}")
    if backends.get("/webhook") != "wa-ingest" or backends.get("/v1") != "wa-gateway":
        out.append(f"Ingress: want /webhook -> wa-ingest and /v1 -> wa-gateway, have {backends}")
    # Jobs run before a rollout.
    commands = [" ".join(c.get("command", []) + c.get("args", []))
                for j in by_kind(docs, "Job") for c in j["spec"]["template"]["spec"]["containers"]]
    if not any("wa-infra kafka-topics" in c for c in commands):
        out.append("no Job creating the topics (wa-infra kafka-topics)")
    if not any(c.startswith("/usr/local/bin/wa-users migrate") for c in commands):
        out.append("no Job running wa-users migrate")
    # Autoscalers point at workloads that exist; none fights another.
    scaled = []
    for h in by_kind(docs, "HorizontalPodAutoscaler"):
        scaled.append(h["spec"]["scaleTargetRef"]["name"])
    for so in by_kind(docs, "ScaledObject"):
        scaled.append(so["spec"]["scaleTargetRef"]["name"])
    for t in scaled:
        if t not in workloads:
            out.append(f"an autoscaler targets {t}, which is not rendered")
        if scaled.count(t) > 1:
            out.append(f"{t} has more than one autoscaler")
    if router_rules is not None:
        rules = [cm for cm in by_kind(docs, "ConfigMap") if cm["metadata"]["name"].startswith("wa-router-rules")]
        if not rules or json.loads(rules[0]["data"]["rules.json"]) != router_rules:
            out.append("ConfigMap wa-router-rules differs from deploy/local/router-rules.json "
                   "(copy it to k8s/base/router-rules.json)")


def findings(docs, router_rules):
    out = []
    check_schema(docs, out)
    check_policy(docs, out, router_rules)
    return out


def container(docs, name):
    w = next(d for d in docs if d["metadata"]["name"] == name and d["kind"] in ("Deployment", "StatefulSet"))
    return w, w["spec"]["template"]["spec"], w["spec"]["template"]["spec"]["containers"][0]


def self_test(docs, router_rules):
    """Each break must produce a finding the clean render does not have."""
    def rm_probe(d):
        del container(d, "wa-router")[2]["readinessProbe"]

    def writable_root(d):
        container(d, "wa-notify")[2]["securityContext"]["readOnlyRootFilesystem"] = False

    def root_user(d):
        _, pod, c = container(d, "wa-users")
        c["securityContext"].pop("runAsNonRoot")
        pod["securityContext"].pop("runAsNonRoot")

    def no_limits(d):
        del container(d, "wa-analytics")[2]["resources"]["limits"]

    def no_pdb(d):
        d[:] = [x for x in d if not (x["kind"] == "PodDisruptionBudget" and x["metadata"]["name"] == "wa-users")]

    def no_netpol(d):
        d[:] = [x for x in d if not (x["kind"] == "NetworkPolicy" and x["metadata"]["name"] == "wa-notify")]

    def spool_ephemeral(d):
        w, _, _ = container(d, "wa-ingest")
        w["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] = "other"

    def secret_in_configmap(d):
        next(x for x in d if x["kind"] == "ConfigMap")["data"]["WA_ACCESS_TOKEN"] = "x"

    def router_outside(d):
        p = next(x for x in d if x["kind"] == "NetworkPolicy" and x["metadata"]["name"] == "wa-router")
        p["spec"]["ingress"].append({"from": [{"namespaceSelector": {}}]})

    def short_grace(d):
        container(d, "wa-notify")[1]["terminationGracePeriodSeconds"] = 10

    def schema_typo(d):
        container(d, "wa-gateway")[2]["livenessProbe"]["httpGett"] = {}

    breaks = [rm_probe, writable_root, root_user, no_limits, no_pdb, no_netpol, spool_ephemeral,
              secret_in_configmap, router_outside, short_grace, schema_typo]
    clean = set(findings(docs, router_rules))
    failed = 0
    for b in breaks:
        broken = copy.deepcopy(docs)
        b(broken)
        new = set(findings(broken, router_rules)) - clean
        print(f"self-test {b.__name__}: {'caught: ' + sorted(new)[0] if new else 'NOT CAUGHT'}")
        failed += not new
    return len(breaks), failed


def main(argv):
    args = list(argv)
    selftest = "--self-test" in args
    if selftest:
        args.remove("--self-test")
    router_rules = None
    if "--router-rules" in args:
        i = args.index("--router-rules")
        with open(args[i + 1], encoding="utf-8") as f:
            router_rules = json.load(f)
        del args[i:i + 2]
    if len(args) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    with open(args[0], encoding="utf-8") as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    if not docs:
        print(f"{args[0]}: no objects", file=sys.stderr)
        return 1
    if selftest:
        total, failed = self_test(docs, router_rules)
        print(f"{total - failed} passed, {failed} failed")
        return 1 if failed else 0
    out = findings(docs, router_rules)
    for line in out:
        print(f"{args[0]}: {line}")
    print(f"{args[0]}: {len(docs)} objects, {len(out)} findings")
    return 1 if out else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
