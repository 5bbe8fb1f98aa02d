#!/usr/bin/env bash
# Validates the deployment files in deploy/ and k8s/ without a Docker engine
# or a Kubernetes cluster. Idempotent; exits non-zero if any check fails.
#
#   bash scripts/validate-deploy.sh
#
# Checks, in order:
#   1. every YAML file under deploy/ and k8s/ parses (duplicate keys refused);
#   2. the hard-coded list of config keys (in the Python below) still matches
#      crates/platform/src/config.rs;
#   3. the example TOML (and TOML embedded in ConfigMaps) parses and uses only
#      known sections/keys with the right types;
#   4. every GRIDWORK_* variable set or mentioned in deploy/ and k8s/ is a
#      real configuration key (the loader refuses unknown ones at start-up);
#   5. k8s manifests, per layout (k8s/ the all-in-one, k8s/production/ the
#      multi-service one; each directory with a kustomization.yaml): apiVersion/
#      kind/metadata.name, namespace, every manifest listed in its
#      kustomization (placeholder templates *.example.yaml never listed, their
#      Secret values marked REPLACE-ME), probes, non-root, resources, service
#      links off, StatefulSet exactly one replica, Deployments on shared
#      (non-embedded) backends, ConfigMap/Secret references and Service/PDB
#      selectors resolve;
#   6. compose files: references resolve; 6b. every kafka://, postgres:// and
#      redis:// URL used (not in comments) is well-formed, kafka:// as
#      kafka://HOST:PORT[,HOST:PORT...][?replication=N];
#   7. the Dockerfile builds and ships the five binaries by name;
#   optional (skipped with a message when the tool is missing):
#   8. `docker compose config -q`, 9. `kubectl kustomize` of each layout,
#  10. kubernetes-validate --strict (installed from PyPI if quick),
#  11. the real config loader: `gridwork migrate --config FILE` on the example
#      TOML and every ConfigMap TOML, with a gridwork binary if one is found
#      ($VALIDATE_GRIDWORK_BIN, PATH, target/release, target/debug;
#      VALIDATE_GRIDWORK_BIN=none skips).
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT" || exit 2
export PIP_ROOT_USER_ACTION=ignore PIP_DISABLE_PIP_VERSION_CHECK=1

failures=0
step() { printf '\n== %s\n' "$*"; }
ok()   { printf '  ok    %s\n' "$*"; }
skip() { printf '  skip  %s\n' "$*"; }
bad()  { printf '  FAIL  %s\n' "$*"; failures=$((failures + 1)); }

TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

for d in deploy k8s; do
    [ -d "$d" ] || { echo "missing directory $d/ (run from the repository)"; exit 2; }
done

# ---------------------------------------------------------------- python deps
step "python3 with PyYAML and tomllib"
if ! command -v python3 >/dev/null 2>&1; then
    bad "python3 not found"
    exit 1
fi
if python3 -c 'import yaml' 2>/dev/null; then
    ok "PyYAML present"
else
    echo "  ..    installing PyYAML (python3 -m pip install --quiet pyyaml)"
    if python3 -m pip install --quiet pyyaml && python3 -c 'import yaml' 2>/dev/null; then
        ok "PyYAML installed"
    else
        bad "PyYAML missing and could not be installed"
        exit 1
    fi
fi
if python3 -c 'import tomllib' 2>/dev/null; then
    ok "tomllib present ($(python3 -c 'import sys; print(sys.version.split()[0])'))"
else
    bad "python3 >= 3.11 needed for tomllib"
    exit 1
fi

# ------------------------------------------------------------- static checks
cat > "$TMP/check.py" <<'PY'
import base64, os, re, sys, tomllib
import yaml

ROOT = sys.argv[1]
OUT = sys.argv[2]          # where to write the TOML documents for later steps
os.chdir(ROOT)
failures = 0

def step(msg): print(f"\n== {msg}")
def ok(msg): print(f"  ok    {msg}")
def bad(msg):
    global failures
    failures += 1
    print(f"  FAIL  {msg}")

# The configuration keys of this build: section -> key -> type. Top-level
# keys live under "". Mirrors crates/platform/src/config.rs (checked below).
CONFIG = {
    "": {"data_dir": str},
    "http": {"listen": str, "admin_listen": str, "max_body_bytes": int, "workers": int, "trusted_proxies": list},
    "database": {"url": str, "pool_size": int, "acquire_timeout_ms": int},
    "bus": {"url": str, "topic_prefix": str, "partitions": int, "retention_ms": int,
            "dead_letter_retention_ms": int, "min_insync_replicas": int, "max_batch": int},
    "cache": {"url": str, "key_prefix": str},
    "auth": {"issuer": str, "audience": str, "signing_key_file": str,
             "token_ttl_secs": int, "leeway_secs": int, "refresh_ttl_secs": int,
             "external_jwks_url": str, "external_issuer": str, "external_audience": str,
             "external_algorithm": str, "jwks_refresh_secs": int,
             "signin_concurrency": int, "signin_wait_ms": int, "signin_window_secs": int,
             "signin_max_failures_per_user": int, "signin_max_failures_per_address": int},
    "intake": {"batch_max": int, "batch_wait_ms": int, "rate_limit_per_minute": int, "batch_max_items": int,
               "media_url": str, "max_image_bytes": int, "max_video_bytes": int, "report_area": str},
    "assigner": {"tolerance_m": float, "refresh_ms": int, "version_lead_ms": int, "max_epochs": int, "cells_per_grid": float},
    "mediation": {"lease_minutes": int, "link_distance_m": (int, float), "link_window_minutes": int, "near_due_share": float, "supervise_interval_ms": int, "holidays_file": str, "stream_recheck_ms": int, "stream_replay_max": int},
    "kpi": {"fcr_window_days": int, "public_min_cell": int, "gauge_refresh_ms": int},
    "petition": {"key_file": str, "keyring_file": str},
    "log": {"format": str},
}
ENV_OK = {"GRIDWORK_CONFIG"}  # read by the binaries, ignored by the loader
for sec, keys in CONFIG.items():
    for k in keys:
        ENV_OK.add(f"GRIDWORK_{k.upper()}" if sec == "" else f"GRIDWORK_{sec.upper()}__{k.upper()}")
BINARIES = {"gridwork", "gridwork-intake", "gridwork-assigner", "gridwork-mediation", "gridwork-analytics"}

def files(top, exts):
    for d, _, fs in os.walk(top):
        for f in sorted(fs):
            if any(f.endswith(e) for e in exts):
                yield os.path.join(d, f)

# ---- YAML with duplicate keys refused (a later duplicate silently wins in
# PyYAML and in most tools, hiding settings).
class StrictLoader(yaml.SafeLoader):
    pass

def _mapping(loader, node, deep=False):
    seen = {}
    for knode, _ in node.value:
        if knode.tag == "tag:yaml.org,2002:merge":
            continue
        key = loader.construct_object(knode, deep=True)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r} (first at line {seen[key] + 1})", knode.start_mark)
        seen[key] = knode.start_mark.line
    loader.flatten_mapping(node)
    return dict(yaml.SafeLoader.construct_pairs(loader, node, deep=deep))

StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)

step("1. YAML files parse (duplicate keys refused)")
docs = {}  # path -> list of documents
for path in sorted(list(files("deploy", (".yaml", ".yml"))) + list(files("k8s", (".yaml", ".yml")))):
    try:
        with open(path, encoding="utf-8") as fh:
            ds = [d for d in yaml.load_all(fh, Loader=StrictLoader) if d is not None]
        docs[path] = ds
        ok(f"{path}: {len(ds)} document(s)")
    except Exception as e:  # noqa: BLE001
        bad(f"{path}: {e}")
if not docs:
    bad("no YAML files found under deploy/ or k8s/")

# ---- configuration keys vs. the source
step("2. hard-coded config key list matches crates/platform/src/config.rs")
src_path = "crates/platform/src/config.rs"
try:
    src = open(src_path, encoding="utf-8").read()
    structs = {m.group(1): re.findall(r"^\s*pub (\w+):", m.group(2), re.M)
               for m in re.finditer(r"pub struct (\w+) \{(.*?)\n\}", src, re.S)}
    top = re.findall(r"^\s*pub (\w+): (\w+),", re.search(r"pub struct Config \{(.*?)\n\}", src, re.S).group(1), re.M)
    found = {"": set()}
    for field, ty in top:
        if ty in structs and ty != "PathBuf":
            found[field] = set(structs[ty])
        else:
            found[""].add(field)
    want = {s: set(k) for s, k in CONFIG.items()}
    if found == want:
        ok(f"{sum(len(v) for v in want.values())} keys in {len(want) - 1} sections + top level")
    else:
        for s in sorted(set(found) | set(want)):
            if found.get(s) != want.get(s):
                bad(f"section [{s or 'top level'}]: source has {sorted(found.get(s, []))}, script has {sorted(want.get(s, []))}")
except (OSError, AttributeError) as e:
    print(f"  skip  cannot read {src_path} ({e}); using the hard-coded list")

def check_toml(label, text):
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        bad(f"{label}: does not parse: {e}")
        return
    n = 0
    for key, value in data.items():
        if isinstance(value, dict):
            if key not in CONFIG or key == "":
                bad(f"{label}: unknown section [{key}]")
                continue
            for k, v in value.items():
                n += 1
                if k not in CONFIG[key]:
                    bad(f"{label}: unknown key {key}.{k}")
                elif not (isinstance(v, CONFIG[key][k]) or (CONFIG[key][k] is float and isinstance(v, int))) or isinstance(v, bool):
                    bad(f"{label}: {key}.{k} = {v!r} should be {CONFIG[key][k].__name__}")
        else:
            n += 1
            if key not in CONFIG[""]:
                bad(f"{label}: unknown top-level key {key}")
            elif not isinstance(value, CONFIG[""][key]):
                bad(f"{label}: {key} = {value!r} should be {CONFIG[''][key].__name__}")
    ok(f"{label}: parses, {n} keys, all known")
    return data

# ---- TOML
step("3. TOML: the example and ConfigMap-embedded configs use only known keys")
tomls = []
example = "deploy/gridwork.example.toml"
if os.path.exists(example):
    text = open(example, encoding="utf-8").read()
    data = check_toml(example, text)
    tomls.append((example, text))
    if data is not None:
        missing = [f"{s}.{k}" if s else k for s, ks in CONFIG.items() for k in ks
                   if (data.get(k) if s == "" else data.get(s, {}).get(k)) is None]
        if missing:
            bad(f"{example}: should show every key, missing {missing}")
        else:
            ok(f"{example}: shows every section and key")
else:
    bad(f"{example} missing")
for path, ds in docs.items():
    for d in ds:
        if isinstance(d, dict) and d.get("kind") == "ConfigMap":
            for name, text in (d.get("data") or {}).items():
                if name.endswith(".toml"):
                    label = f"{path}: ConfigMap {d['metadata']['name']} {name}"
                    check_toml(label, text)
                    tomls.append((label, text))
with open(os.path.join(OUT, "tomls.txt"), "w", encoding="utf-8") as fh:
    for i, (label, text) in enumerate(tomls):
        p = os.path.join(OUT, f"config-{i}.toml")
        open(p, "w", encoding="utf-8").write(text)
        fh.write(f"{p}\t{label}\n")

# ---- GRIDWORK_* names
step("4. every GRIDWORK_* variable in deploy/ and k8s/ is a real config key")
def env_names(obj):
    """Names set by compose `environment` (map or list) and k8s `env` lists."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            if k == "environment":
                if isinstance(v, dict):
                    yield from v.keys()
                elif isinstance(v, list):
                    yield from (str(x).split("=", 1)[0] for x in v)
            elif k == "env" and isinstance(v, list):
                yield from (x.get("name") for x in v if isinstance(x, dict))
            yield from env_names(v)
    elif isinstance(obj, list):
        for x in obj:
            yield from env_names(x)

defined = 0
for path, ds in docs.items():
    for d in ds:
        for name in env_names(d):
            if name and name.startswith("GRIDWORK_"):
                defined += 1
                if name not in ENV_OK:
                    bad(f"{path}: sets {name}, which is not a configuration key (the process would refuse to start)")
if os.path.exists("deploy/Dockerfile"):
    for line in open("deploy/Dockerfile", encoding="utf-8"):
        if re.match(r"\s*ENV\s", line):
            for name in re.findall(r"\b(GRIDWORK_\w+)", line):
                defined += 1
                if name not in ENV_OK:
                    bad(f"deploy/Dockerfile: ENV {name} is not a configuration key")
ok(f"{defined} GRIDWORK_* definitions checked")

# Every mention outside comments (docs, commands, heredocs too).
mentions = 0
for path in sorted(set(files("deploy", ("",))) | set(files("k8s", ("",)))):
    try:
        lines = open(path, encoding="utf-8").read().splitlines()
    except UnicodeDecodeError:
        continue
    for no, line in enumerate(lines, 1):
        if not path.endswith(".md"):
            line = re.sub(r"(^|\s)#.*$", "", line)  # strip comments
        for name in re.findall(r"\bGRIDWORK_[A-Z0-9_]*[A-Z0-9]", line):
            mentions += 1
            if name not in ENV_OK:
                bad(f"{path}:{no}: mentions {name}, which is not a configuration key")
ok(f"{mentions} GRIDWORK_* mentions checked; allowed: GRIDWORK_CONFIG and {len(ENV_OK) - 1} keys")

# ---- Kubernetes
step("5. Kubernetes manifests")
NAMESPACED = {"ConfigMap", "Service", "StatefulSet", "Deployment", "Secret", "PersistentVolumeClaim",
              "ServiceAccount", "Job", "CronJob", "Ingress", "NetworkPolicy", "PodDisruptionBudget", "DaemonSet"}
WORKLOADS = {"StatefulSet", "Deployment", "DaemonSet", "Job"}
SERVERS = {"StatefulSet", "Deployment", "DaemonSet"}   # long-running: HTTP port and probes
TEMPLATE = ".example.yaml"   # placeholder templates: never listed in a kustomization
PLACEHOLDER = "REPLACE-ME"
EMBEDDED = {"sqlite", "memory", ""}   # per-process backends
k8s_docs = {p: ds for p, ds in docs.items() if p.startswith("k8s/") and os.path.basename(p) != "kustomization.yaml"}
# Every directory with a kustomization.yaml is a layout of its own (k8s/ is the
# all-in-one, k8s/production/ the multi-service one); a manifest belongs to the
# nearest one above it, and references resolve within that layout.
kroots = sorted({os.path.dirname(p) for p in docs if p.startswith("k8s/") and os.path.basename(p) == "kustomization.yaml"},
                key=len, reverse=True)
def kroot(path):
    return next((r for r in kroots if path.startswith(r + "/")), None)
for want in ("k8s", "k8s/production"):
    if want not in kroots:
        bad(f"{want}/kustomization.yaml missing")

def objs(root, kind):
    """name -> document of that kind in the layout `root` (templates included)."""
    return {d["metadata"]["name"]: d for p, ds in k8s_docs.items() if kroot(p) == root for d in ds
            if isinstance(d, dict) and d.get("kind") == kind and (d.get("metadata") or {}).get("name")}

services = []
for path, ds in sorted(k8s_docs.items()):
    for d in ds:
        if not isinstance(d, dict):
            bad(f"{path}: document is not a mapping")
            continue
        name = (d.get("metadata") or {}).get("name")
        if not d.get("apiVersion") or not d.get("kind") or not name:
            bad(f"{path}: needs apiVersion, kind and metadata.name (got {d.get('apiVersion')!r}, {d.get('kind')!r}, {name!r})")
            continue
        kind = d["kind"]
        if kind in NAMESPACED and d["metadata"].get("namespace") != "gridwork":
            bad(f"{path}: {kind}/{name} should be in namespace gridwork")
        if kind == "Service":
            services.append(name)
        if kroot(path) is None:
            bad(f"{path}: not under any directory with a kustomization.yaml")
        ok(f"{path}: {d['apiVersion']} {kind}/{name}")

def secret_value(root, ref):
    s = objs(root, "Secret").get(ref.get("name"))
    if s is None:
        return None
    if ref.get("key") in (s.get("stringData") or {}):
        return str(s["stringData"][ref["key"]])
    if ref.get("key") in (s.get("data") or {}):
        return base64.b64decode(s["data"][ref["key"]]).decode("utf-8", "replace")
    return None

for path, ds in sorted(k8s_docs.items()):
    root = kroot(path)
    for d in ds:
        if not isinstance(d, dict) or d.get("kind") not in WORKLOADS:
            continue
        kind, name = d["kind"], d["metadata"]["name"]
        spec = d.get("spec") or {}
        pod = (spec.get("template") or {}).get("spec") or {}
        label = f"{kind}/{name}"
        problems = []
        if kind == "StatefulSet" and spec.get("replicas") != 1:
            problems.append("replicas must be 1 (SQLite is single-writer)")
        if kind == "Deployment" and not (isinstance(spec.get("replicas"), int) and spec["replicas"] >= 1):
            problems.append(f"replicas should be a number >= 1 (has {spec.get('replicas')!r})")
        if kind == "Job" and pod.get("restartPolicy") not in ("Never", "OnFailure"):
            problems.append(f"restartPolicy must be Never or OnFailure (has {pod.get('restartPolicy')!r})")
        if any(s.upper().replace("-", "_").startswith("GRIDWORK") for s in services) and pod.get("enableServiceLinks") is not False:
            problems.append("enableServiceLinks must be false (service links inject GRIDWORK_PORT etc., which the config loader refuses)")
        psc = pod.get("securityContext") or {}
        vols = {v.get("name"): v for v in pod.get("volumes") or []}
        cms = objs(root, "ConfigMap")
        secrets = objs(root, "Secret")
        for vname, v in vols.items():
            if "configMap" in v and v["configMap"].get("name") not in cms:
                problems.append(f"volume {vname}: ConfigMap {v['configMap'].get('name')!r} is not defined in {root}/")
            if "secret" in v:
                sn = v["secret"].get("secretName")
                if sn not in secrets:
                    problems.append(f"volume {vname}: Secret {sn!r} is not defined in {root}/")
                else:
                    have = set(secrets[sn].get("stringData") or {}) | set(secrets[sn].get("data") or {})
                    for it in v["secret"].get("items") or []:
                        if it.get("key") not in have:
                            problems.append(f"volume {vname}: Secret {sn} has no key {it.get('key')!r}")
        for c in pod.get("containers") or []:
            cname = c.get("name")
            csc = c.get("securityContext") or {}
            if not (psc.get("runAsNonRoot") or csc.get("runAsNonRoot")):
                problems.append(f"container {cname}: runAsNonRoot not set")
            if (csc.get("runAsUser", psc.get("runAsUser"))) == 0:
                problems.append(f"container {cname}: runs as uid 0")
            if csc.get("allowPrivilegeEscalation") is not False:
                problems.append(f"container {cname}: allowPrivilegeEscalation should be false")
            res = c.get("resources") or {}
            if not res.get("requests") or not res.get("limits"):
                problems.append(f"container {cname}: resources.requests and .limits needed")
            if kind in SERVERS:
                probes = {p: ((c.get(p) or {}).get("httpGet") or {}).get("path") for p in ("livenessProbe", "readinessProbe")}
                if probes["livenessProbe"] != "/health/live":
                    problems.append(f"container {cname}: livenessProbe should GET /health/live (has {probes['livenessProbe']!r})")
                if probes["readinessProbe"] != "/health/ready":
                    problems.append(f"container {cname}: readinessProbe should GET /health/ready (has {probes['readinessProbe']!r})")
                ports = [p.get("containerPort") for p in c.get("ports") or []]
                if 8080 not in ports:
                    problems.append(f"container {cname}: containerPort 8080 missing")
            mounts = {m.get("mountPath"): m.get("name") for m in c.get("volumeMounts") or []}
            for mname in mounts.values():
                if mname not in vols and mname not in {t["metadata"]["name"] for t in spec.get("volumeClaimTemplates") or []}:
                    problems.append(f"container {cname}: mounts undefined volume {mname!r}")
            claims = {t["metadata"]["name"] for t in spec.get("volumeClaimTemplates") or []}
            if kind == "StatefulSet" and mounts.get("/var/lib/gridwork") not in claims:
                problems.append(f"container {cname}: /var/lib/gridwork should be a volumeClaimTemplate")
            env = {e.get("name"): e for e in c.get("env") or [] if isinstance(e, dict)}
            for ename, e in env.items():
                ref = (e.get("valueFrom") or {}).get("secretKeyRef")
                if ref is None:
                    continue
                if ref.get("optional"):
                    problems.append(f"container {cname}: {ename} from an optional Secret (a missing Secret would "
                                    "silently fall back to the embedded default)")
                if secret_value(root, ref) is None:
                    problems.append(f"container {cname}: {ename}: Secret {ref.get('name')!r} with key {ref.get('key')!r} "
                                    f"is not defined in {root}/")
            toml_data = {}
            cfg = (env.get("GRIDWORK_CONFIG") or {}).get("value")
            if cfg:
                vol = vols.get(mounts.get(os.path.dirname(cfg)))
                cm = ((vol or {}).get("configMap") or {}).get("name")
                if cm not in cms or os.path.basename(cfg) not in (cms[cm].get("data") or {}):
                    problems.append(f"GRIDWORK_CONFIG={cfg} is not a file of a mounted ConfigMap")
                else:
                    try:
                        toml_data = tomllib.loads(cms[cm]["data"][os.path.basename(cfg)])
                    except tomllib.TOMLDecodeError:
                        pass   # reported in step 3
            if kind == "Deployment":
                # Replicas (and the other services) must share one database,
                # bus and cache: never the per-process embedded backends.
                for sec in ("database", "bus", "cache"):
                    e = env.get(f"GRIDWORK_{sec.upper()}__URL")
                    if e is not None and "value" in e:
                        url, src = str(e["value"]), f"env GRIDWORK_{sec.upper()}__URL"
                    elif e is not None and ((e.get("valueFrom") or {}).get("secretKeyRef")):
                        ref = e["valueFrom"]["secretKeyRef"]
                        url, src = secret_value(root, ref), f"Secret {ref.get('name')}/{ref.get('key')}"
                        if url is None:
                            continue   # reported above
                    elif (toml_data.get(sec) or {}).get("url"):
                        url, src = toml_data[sec]["url"], "its config file"
                    else:
                        url, src = "", "the built-in default"
                    if url.split("://")[0].split(":")[0] in EMBEDDED:
                        problems.append(f"container {cname}: {sec}.url is {url or 'the embedded default'!r} (from {src}); "
                                        "a Deployment needs PostgreSQL, Kafka and Redis shared by all its replicas")
        if problems:
            for p in problems:
                bad(f"{path}: {label}: {p}")
        elif kind == "StatefulSet":
            ok(f"{path}: {label}: one replica, non-root, probes /health/live + /health/ready, resources, PVC, service links off")
        elif kind == "Deployment":
            ok(f"{path}: {label}: {spec['replicas']} replica(s), non-root, probes, resources, service links off, "
               "shared backends from a Secret/config, references resolve")
        else:
            ok(f"{path}: {label}: non-root, resources, service links off, restartPolicy {pod.get('restartPolicy')}, references resolve")

# Services and PodDisruptionBudgets select the pods of a workload of their layout.
for path, ds in sorted(k8s_docs.items()):
    root = kroot(path)
    pods = [((x.get("spec") or {}).get("template") or {}).get("metadata", {}).get("labels") or {}
            for x in (d for p2, ds2 in k8s_docs.items() if kroot(p2) == root for d in ds2)
            if isinstance(x, dict) and x.get("kind") in SERVERS]
    for d in ds:
        if not isinstance(d, dict) or d.get("kind") not in ("Service", "PodDisruptionBudget"):
            continue
        sel = (d.get("spec") or {}).get("selector") or {}
        if d["kind"] == "PodDisruptionBudget":
            sel = sel.get("matchLabels") or {}
        if not sel or not any(all(lbl.get(k) == v for k, v in sel.items()) for lbl in pods):
            bad(f"{path}: {d['kind']}/{d['metadata']['name']}: selector {sel} matches no workload's pods in {root}/")
        if d["kind"] == "Service":
            ports = [p.get("port") for p in (d.get("spec") or {}).get("ports") or []]
            if 8080 not in ports:
                bad(f"{path}: Service/{d['metadata']['name']} should serve port 8080")

# Templates hold clearly marked placeholders and are never applied by -k.
for path, ds in sorted(k8s_docs.items()):
    if not path.endswith(TEMPLATE):
        continue
    for d in ds:
        if not isinstance(d, dict) or d.get("kind") != "Secret":
            continue
        if d.get("data"):
            bad(f"{path}: Secret/{d['metadata']['name']}: use stringData (visible placeholders), not data")
        unmarked = [k for k, v in (d.get("stringData") or {}).items() if PLACEHOLDER not in str(v)]
        if unmarked:
            bad(f"{path}: Secret/{d['metadata']['name']}: values {unmarked} are not marked {PLACEHOLDER}")
        else:
            ok(f"{path}: Secret/{d['metadata']['name']}: every value is a {PLACEHOLDER} placeholder")

for root in sorted(kroots):
    kust = f"{root}/kustomization.yaml"
    if not docs.get(kust):
        bad(f"{kust} empty")
        continue
    listed = docs[kust][0].get("resources") or []
    mine = sorted(os.path.relpath(p, root) for p in k8s_docs if kroot(p) == root)
    missing = [r for r in listed if not os.path.exists(os.path.join(root, r))]
    unlisted = [p for p in mine if p not in listed and not p.endswith(TEMPLATE)]
    templates = [p for p in mine if p.endswith(TEMPLATE)]
    if missing:
        bad(f"{kust}: lists missing files {missing}")
    if unlisted:
        bad(f"{kust}: does not list {unlisted}")
    if any(r.endswith(TEMPLATE) for r in listed):
        bad(f"{kust}: lists a placeholder template ({[r for r in listed if r.endswith(TEMPLATE)]}); "
            "`kubectl apply -k` would overwrite real secrets with it")
    if docs[kust][0].get("namespace") != "gridwork":
        bad(f"{kust}: namespace should be gridwork")
    if not missing and not unlisted:
        ok(f"{kust}: lists all {len(listed)} manifests" + (f" (templates kept out: {', '.join(templates)})" if templates else ""))

# ---- compose
step("6. compose files")
for path, ds in sorted(docs.items()):
    if not path.startswith("deploy/") or not ds or not isinstance(ds[0], dict) or "services" not in ds[0]:
        continue
    c = ds[0]
    svcs = c.get("services") or {}
    vols = set((c.get("volumes") or {}).keys())
    problems = []
    for sname, s in svcs.items():
        if not isinstance(s, dict):
            problems.append(f"service {sname} is not a mapping")
            continue
        if "image" not in s and "build" not in s:
            problems.append(f"service {sname}: needs image or build")
        dep = s.get("depends_on") or {}
        for target in (dep if isinstance(dep, (list, dict)) else []):
            if target not in svcs:
                problems.append(f"service {sname}: depends_on unknown service {target}")
        for v in s.get("volumes") or []:
            src = v.split(":", 1)[0] if isinstance(v, str) else (v or {}).get("source")
            if src and not src.startswith((".", "/", "~", "$")) and src not in vols:
                problems.append(f"service {sname}: volume {src} not declared at top level")
        b = s.get("build")
        if isinstance(b, dict):
            df = os.path.normpath(os.path.join(os.path.dirname(path), b.get("context", "."), b.get("dockerfile", "Dockerfile")))
            if not os.path.exists(df):
                problems.append(f"service {sname}: build dockerfile {df} does not exist")
    for p in problems:
        bad(f"{path}: {p}")
    if not problems:
        ok(f"{path}: {len(svcs)} service(s): {', '.join(svcs)}; references resolve")

today = docs.get("deploy/compose.yaml")
if today:
    c = today[0]
    up = [n for n, s in (c.get("services") or {}).items()
          if isinstance(s, dict) and s.get("command") and "up" in s["command"]]
    if not up:
        bad("deploy/compose.yaml: no service runs `gridwork up`")
    for n in up:
        s = c["services"][n]
        if not any(str(v).split(":")[1:2] == ["/var/lib/gridwork"] and str(v).split(":")[0] in (c.get("volumes") or {})
                   for v in s.get("volumes") or []):
            bad(f"deploy/compose.yaml: {n} needs a named volume at /var/lib/gridwork")
        elif not any("8080" in str(p) for p in s.get("ports") or []):
            bad(f"deploy/compose.yaml: {n} should publish port 8080")
        else:
            ok(f"deploy/compose.yaml: {n} runs `gridwork up`, named volume at /var/lib/gridwork, port 8080")
else:
    bad("deploy/compose.yaml missing")

# ---- backend URLs
step("6b. backend URLs (kafka://, postgres://, redis://) are well-formed")
# Only values that are used: YAML scalars (compose environment, k8s env,
# Secrets) and TOML values (the example and ConfigMap-embedded files), not
# comments, which may show templates like kafka://HOST:PORT.
HOST = r"(?:[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])"
URL_SHAPES = {
    # as KafkaSettings::from_url in crates/bus/src/kafka.rs: brokers, and
    # `replication` as the only parameter
    "kafka": (re.compile(rf"kafka://{HOST}:(\d+)(?:,{HOST}:(\d+))*(?:\?replication=[1-9]\d*)?"),
              "kafka://HOST:PORT[,HOST:PORT...][?replication=N]"),
    "postgres": (re.compile(rf"postgres(?:ql)?://(?:[^:@/\s]+(?::[^@/\s]*)?@)?{HOST}(?::(\d+))?(?:/[A-Za-z0-9_.-]*)?(?:\?\S*)?"),
                 "postgres://[USER[:PASSWORD]@]HOST[:PORT][/DB][?PARAMS]"),
    "redis": (re.compile(rf"rediss?://(?:[^:@/\s]*(?::[^@/\s]*)?@)?{HOST}(?::(\d+))?(?:/\d+)?"),
              "redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]"),
}
FIND_URL = re.compile(r"\b(kafka|postgresql|postgres|rediss|redis)://[^\s\"'`<>]*")

def interpolate(s):
    # compose: ${VAR:-default} -> default, ${VAR} -> x
    s = re.sub(r"\$\{[A-Za-z_][A-Za-z0-9_]*:?-([^}]*)\}", r"\1", s)
    return re.sub(r"\$\{[^}]*\}|\$[A-Za-z_][A-Za-z0-9_]*", "x", s)

def strings(obj, where):
    if isinstance(obj, dict):
        if obj.get("kind") == "ConfigMap" and isinstance(obj.get("data"), dict):
            for k, v in obj["data"].items():
                if k.endswith(".toml"):
                    try:
                        yield from strings(tomllib.loads(v), f"{where} {k}")
                    except tomllib.TOMLDecodeError:
                        pass   # reported in step 3
                else:
                    yield from strings(v, where)
            obj = {k: v for k, v in obj.items() if k != "data"}
        for v in obj.values():
            yield from strings(v, where)
    elif isinstance(obj, list):
        for v in obj:
            yield from strings(v, where)
    elif isinstance(obj, str):
        yield where, obj

sources = [(p, d) for p, ds in sorted(docs.items()) for d in ds]
if os.path.exists(example):
    try:
        sources.append((example, tomllib.loads(open(example, encoding="utf-8").read())))
    except tomllib.TOMLDecodeError:
        pass
seen = {"kafka": 0, "postgres": 0, "redis": 0}
checked = set()   # YAML merge keys repeat a value in every service
for path, d in sources:
    for where, s in strings(d, path):
        for m in FIND_URL.finditer(interpolate(s)):
            url = m.group(0).rstrip(".,;)")
            if (where, url) in checked:
                continue
            checked.add((where, url))
            kind = {"postgresql": "postgres", "rediss": "redis"}.get(m.group(1), m.group(1))
            rx, shape = URL_SHAPES[kind]
            full = rx.fullmatch(url)
            ports = [int(p) for p in re.findall(r":(\d+)(?=[,/?]|$)", url.split("@")[-1])]
            seen[kind] += 1
            if not full:
                bad(f"{where}: {url!r} is not {shape}")
            elif not all(0 < p < 65536 for p in ports):
                bad(f"{where}: {url!r}: port out of range")
ok("checked " + ", ".join(f"{n} {k}://" for k, n in seen.items()) + " URL(s)")

# ---- Dockerfile
step("7. Dockerfile builds and ships the five binaries")
df = "deploy/Dockerfile"
try:
    text = open(df, encoding="utf-8").read()
except OSError:
    bad(f"{df} missing")
    text = ""
if text:
    # The binaries the workspace really declares.
    declared = set()
    for cargo in sorted(files("services", ("Cargo.toml",))):
        for b in tomllib.load(open(cargo, "rb")).get("bin", []):
            declared.add(b["name"])
    if declared and declared != BINARIES:
        bad(f"workspace declares binaries {sorted(declared)}, expected {sorted(BINARIES)}")
    elif declared:
        ok(f"workspace declares {len(declared)} binaries: {', '.join(sorted(declared))}")
    body = re.sub(r"(?m)^\s*#.*$", "", text)
    body = re.sub(r"\\\n", " ", body)
    stages = re.findall(r"(?im)^FROM\s+(\S+)(?:\s+AS\s+(\S+))?", body)
    if not stages or not stages[0][0].startswith("rust:1-bookworm"):
        bad(f"{df}: builder stage should be rust:1-bookworm (found {stages[:1]})")
    if not stages or stages[-1][0] != "debian:bookworm-slim":
        bad(f"{df}: runtime stage should be debian:bookworm-slim (found {stages[-1:]})")
    build = re.search(r"cargo build[^\n]*", body)
    if not build or "--release" not in build.group(0) or "--workspace" not in build.group(0):
        bad(f"{df}: needs `cargo build --release --workspace` (found {build.group(0) if build else None!r})")
    else:
        ok(f"{df}: {build.group(0).split('&&')[0].strip()}")
    copied = set(re.findall(r"(?m)^COPY\s+--from=\S+\s+\S*/([\w-]+)\s+/usr/local/bin/", body))
    if copied != BINARIES:
        bad(f"{df}: runtime stage copies {sorted(copied)}, expected {sorted(BINARIES)}")
    else:
        ok(f"{df}: runtime copies {', '.join(sorted(copied))} to /usr/local/bin")
    for b in sorted(BINARIES):
        if not re.search(rf"target/release/(\$bin|{re.escape(b)})\b", body) or b not in body.split("FROM")[1]:
            bad(f"{df}: builder stage does not take {b} from target/release")
    runtime = body.split("FROM")[-1]
    user = re.findall(r"(?m)^USER\s+(\S+)", runtime)
    if not user or user[-1].split(":")[0] in ("0", "root"):
        bad(f"{df}: runtime stage must switch to a non-root USER (found {user})")
    if "ca-certificates" not in runtime:
        bad(f"{df}: runtime stage should install ca-certificates")
    if not re.search(r"(?m)^EXPOSE\s+8080\b", runtime):
        bad(f"{df}: EXPOSE 8080 missing")
    cmd = re.search(r"(?m)^CMD\s+(.*)$", runtime)
    want = '["gridwork", "up", "--data-dir", "/var/lib/gridwork", "--listen", "0.0.0.0:8080"]'
    if not cmd or cmd.group(1).replace(" ", "") != want.replace(" ", ""):
        bad(f"{df}: CMD should be {want} (found {cmd.group(1) if cmd else None})")
    if user and user[-1].split(":")[0] not in ("0", "root") and "ca-certificates" in runtime and cmd:
        ok(f"{df}: non-root USER {user[-1]}, ca-certificates, EXPOSE 8080, CMD gridwork up")
    ign = "deploy/Dockerfile.dockerignore"
    if os.path.exists(ign) and "target" in open(ign, encoding="utf-8").read().split():
        ok(f"{ign}: keeps target/ out of the build context")
    else:
        bad(f"{ign}: should exclude target (a multi-GB context otherwise)")

print(f"\nstatic checks: {failures} failure(s)")
sys.exit(1 if failures else 0)
PY

if python3 "$TMP/check.py" "$ROOT" "$TMP"; then
    :
else
    failures=$((failures + 1))
fi

# ---------------------------------------------------------- optional: compose
step "8. docker compose config (offline)"
compose=()
if docker compose version >/dev/null 2>&1; then
    compose=(docker compose)
elif command -v docker-compose >/dev/null 2>&1 && docker-compose version >/dev/null 2>&1; then
    compose=(docker-compose)
fi
if [ ${#compose[@]} -gt 0 ]; then
    for f in deploy/compose.yaml deploy/compose.production.yaml; do
        [ -f "$f" ] || continue
        if "${compose[@]}" -f "$f" config -q 2>"$TMP/compose.err"; then
            ok "${compose[*]} -f $f config -q"
        else
            bad "${compose[*]} -f $f config -q: $(tr '\n' ' ' < "$TMP/compose.err")"
        fi
    done
else
    skip "docker compose is not available on this machine (the static checks above cover the compose files)"
fi

# ------------------------------------------------------- optional: kustomize
step "9. kubectl kustomize, each layout (offline render)"
rendered=()
mapfile -t layouts < <(find k8s -name kustomization.yaml -printf '%h\n' | sort)
if command -v kubectl >/dev/null 2>&1; then
    i=0
    for dir in "${layouts[@]}"; do
        i=$((i + 1))
        if kubectl kustomize "$dir/" > "$TMP/rendered-$i.yaml" 2>"$TMP/kustomize.err"; then
            n=$(grep -c '^kind:' "$TMP/rendered-$i.yaml" || true)
            ok "kubectl kustomize $dir/: $n resources rendered"
            rendered+=("$TMP/rendered-$i.yaml")
        else
            bad "kubectl kustomize $dir/: $(tr '\n' ' ' < "$TMP/kustomize.err")"
        fi
    done
else
    skip "kubectl not found"
fi

# ---------------------------------------------- optional: kubernetes-validate
step "10. kubernetes-validate --strict (Kubernetes OpenAPI schemas, offline)"
kv=""
if command -v kubernetes-validate >/dev/null 2>&1; then
    kv=kubernetes-validate
else
    echo "  ..    trying: python3 -m pip install --quiet kubernetes-validate (120 s at most)"
    if timeout 120 python3 -m pip install --quiet kubernetes-validate >"$TMP/pip.log" 2>&1 \
        && command -v kubernetes-validate >/dev/null 2>&1; then
        kv=kubernetes-validate
    fi
fi
if [ -n "$kv" ]; then
    # The rendered layouts, plus the placeholder templates that no layout lists.
    if [ ${#rendered[@]} -eq ${#layouts[@]} ] && [ ${#rendered[@]} -gt 0 ]; then
        mapfile -t targets < <(printf '%s\n' "${rendered[@]}"; find k8s -name '*.example.yaml' | sort)
    else
        mapfile -t targets < <(find k8s -name '*.yaml' ! -name kustomization.yaml | sort)
    fi
    if "$kv" --strict --quiet "${targets[@]}" >"$TMP/kv.out" 2>&1; then
        ok "kubernetes-validate $("$kv" --version 2>/dev/null) --strict: all resources valid"
    else
        bad "kubernetes-validate --strict: $(cat "$TMP/kv.out")"
    fi
else
    skip "kubernetes-validate not available (PyPI unreachable or install failed); schemas not checked"
fi

# ---------------------------------------------- optional: real config loader
step "11. the real config loader accepts the TOML files (gridwork migrate)"
bin="${VALIDATE_GRIDWORK_BIN:-}"
if [ "$bin" = none ]; then
    bin=""
    skip "VALIDATE_GRIDWORK_BIN=none"
elif [ -z "$bin" ]; then
    for c in "$(command -v gridwork 2>/dev/null)" target/release/gridwork target/debug/gridwork; do
        if [ -n "$c" ] && [ -x "$c" ]; then bin="$c"; break; fi
    done
    [ -n "$bin" ] || skip "no gridwork binary found (build it, or set VALIDATE_GRIDWORK_BIN)"
fi
if [ -n "$bin" ]; then
    # Copy it: the original may be replaced by a concurrent cargo build.
    cp "$bin" "$TMP/gridwork" && chmod +x "$TMP/gridwork"
    echo "  ..    using $bin (built $(date -u -r "$bin" '+%Y-%m-%d %H:%M UTC'))"
    i=0
    while IFS=$'\t' read -r file label; do
        i=$((i + 1))
        data="$TMP/data-$i"
        # Paths into the scratch directory (never create keys under /etc here).
        sed -e "s#/var/lib/gridwork#$data#g" -e "s#/etc/gridwork#$data/etc#g" "$file" > "$TMP/loader-$i.toml"
        # A clean environment: stray GRIDWORK_* variables would change the result.
        if env -i PATH="$PATH" HOME="${HOME:-/tmp}" RUST_BACKTRACE=0 \
            timeout 60 "$TMP/gridwork" migrate --config "$TMP/loader-$i.toml" >"$TMP/loader-$i.out" 2>&1; then
            ok "$label: accepted ($(tail -n1 "$TMP/loader-$i.out"))"
        else
            bad "$label: refused by the real loader: $(grep -v '^\s*$' "$TMP/loader-$i.out" | head -n3 | tr '\n' ' ')"
        fi
    done < "$TMP/tomls.txt"
fi

# ------------------------------------------------------------------ summary
echo
if [ "$failures" -eq 0 ]; then
    echo "validate-deploy: all checks passed"
    exit 0
fi
echo "validate-deploy: $failures check group(s) failed"
exit 1
