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
#   5. k8s manifests: apiVersion/kind/metadata.name, namespace, kustomization
#      resources, probes, non-root, resources, one replica, no service links;
#   6. compose files: references resolve; kafka:// / redis:// (not in this
#      build) only in files that say they need issue 3;
#   7. the Dockerfile builds and ships the five binaries by name;
#   optional (skipped with a message when the tool is missing):
#   8. `docker compose config -q`, 9. `kubectl kustomize k8s/`,
#  10. kubernetes-validate --strict (installed from PyPI if quick),
#  11. the real config loader: `gridwork migrate --config FILE` on the example
#      TOML and the ConfigMap TOML, with a gridwork binary if one is found
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
import os, re, sys, tomllib
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
    "http": {"listen": str, "max_body_bytes": int, "workers": int},
    "database": {"url": str, "pool_size": int},
    "bus": {"url": str, "topic_prefix": str, "partitions": int, "retention_ms": int},
    "cache": {"url": str, "key_prefix": str},
    "auth": {"issuer": str, "audience": str, "signing_key_file": str,
             "token_ttl_secs": int, "leeway_secs": int},
    "intake": {"batch_max": int, "batch_wait_ms": int, "rate_limit_per_minute": int},
    "assigner": {"tolerance_m": float},
    "mediation": {"lease_minutes": int},
    "kpi": {"fcr_window_days": int},
    "petition": {"key_file": str},
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
k8s_docs = {p: ds for p, ds in docs.items() if p.startswith("k8s/") and not p.endswith("kustomization.yaml")}
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
        ok(f"{path}: {d['apiVersion']} {kind}/{name}")

for path, ds in sorted(k8s_docs.items()):
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
        if any(s.upper().replace("-", "_").startswith("GRIDWORK") for s in services) and pod.get("enableServiceLinks") is not False:
            problems.append("enableServiceLinks must be false (service links inject GRIDWORK_PORT etc., which the config loader refuses)")
        psc = pod.get("securityContext") or {}
        for c in pod.get("containers") or []:
            csc = c.get("securityContext") or {}
            if not (psc.get("runAsNonRoot") or csc.get("runAsNonRoot")):
                problems.append(f"container {c.get('name')}: runAsNonRoot not set")
            if (csc.get("runAsUser", psc.get("runAsUser"))) == 0:
                problems.append(f"container {c.get('name')}: runs as uid 0")
            if csc.get("allowPrivilegeEscalation") is not False:
                problems.append(f"container {c.get('name')}: allowPrivilegeEscalation should be false")
            res = c.get("resources") or {}
            if not res.get("requests") or not res.get("limits"):
                problems.append(f"container {c.get('name')}: resources.requests and .limits needed")
            probes = {p: ((c.get(p) or {}).get("httpGet") or {}).get("path") for p in ("livenessProbe", "readinessProbe")}
            if probes["livenessProbe"] != "/health/live":
                problems.append(f"container {c.get('name')}: livenessProbe should GET /health/live (has {probes['livenessProbe']!r})")
            if probes["readinessProbe"] != "/health/ready":
                problems.append(f"container {c.get('name')}: readinessProbe should GET /health/ready (has {probes['readinessProbe']!r})")
            ports = [p.get("containerPort") for p in c.get("ports") or []]
            if 8080 not in ports:
                problems.append(f"container {c.get('name')}: containerPort 8080 missing")
            mounts = {m.get("mountPath"): m.get("name") for m in c.get("volumeMounts") or []}
            claims = {t["metadata"]["name"] for t in spec.get("volumeClaimTemplates") or []}
            if kind == "StatefulSet" and mounts.get("/var/lib/gridwork") not in claims:
                problems.append(f"container {c.get('name')}: /var/lib/gridwork should be a volumeClaimTemplate")
            envs = {e.get("name"): e.get("value") for e in c.get("env") or []}
            cfg = envs.get("GRIDWORK_CONFIG")
            if cfg:
                vols = {v.get("name"): v for v in pod.get("volumes") or []}
                dirname = os.path.dirname(cfg)
                vol = vols.get(mounts.get(dirname))
                cm = ((vol or {}).get("configMap") or {}).get("name")
                cms = {x["metadata"]["name"]: x for ds2 in k8s_docs.values() for x in ds2
                       if isinstance(x, dict) and x.get("kind") == "ConfigMap"}
                if cm not in cms or os.path.basename(cfg) not in (cms[cm].get("data") or {}):
                    problems.append(f"GRIDWORK_CONFIG={cfg} is not a file of a mounted ConfigMap")
        if problems:
            for p in problems:
                bad(f"{path}: {label}: {p}")
        else:
            ok(f"{path}: {label}: one replica, non-root, probes /health/live + /health/ready, resources, PVC, service links off")

for sname, ds in k8s_docs.items():
    for d in ds:
        if isinstance(d, dict) and d.get("kind") == "Service":
            ports = [p.get("port") for p in (d.get("spec") or {}).get("ports") or []]
            if 8080 not in ports:
                bad(f"{sname}: Service/{d['metadata']['name']} should serve port 8080")

kust = "k8s/kustomization.yaml"
if kust in docs and docs[kust]:
    listed = docs[kust][0].get("resources") or []
    on_disk = sorted(os.path.relpath(p, "k8s") for p in k8s_docs)
    missing = [r for r in listed if not os.path.exists(os.path.join("k8s", r))]
    unlisted = [p for p in on_disk if p not in listed]
    if missing:
        bad(f"{kust}: lists missing files {missing}")
    if unlisted:
        bad(f"{kust}: does not list {unlisted}")
    if not missing and not unlisted:
        ok(f"{kust}: lists all {len(listed)} manifests")
else:
    bad(f"{kust} missing or empty")

# ---- compose
step("6. compose files")
TODAY_ONLY = ("kafka://", "redis://")
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
    text = open(path, encoding="utf-8").read()
    uses_future = [s for s in TODAY_ONLY if s in re.sub(r"(?m)(^|\s)#.*$", "", text)]
    if uses_future:
        if "issue 3" not in text or "not available in this build" not in text:
            problems.append(f"uses {uses_future} (not in this build) but its header does not say it needs issue 3 "
                            "and fails with 'not available in this build'")
        else:
            ok(f"{path}: uses {', '.join(uses_future)}; marked as needing issue 3 (fails at start until then)")
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
for path in [p for p in docs if p.startswith("k8s/")] + ["deploy/compose.yaml"]:
    if os.path.exists(path):
        body = re.sub(r"(?m)(^|\s)#.*$", "", open(path, encoding="utf-8").read())
        for s in TODAY_ONLY:
            if s in body:
                bad(f"{path}: runs today, so it must not use {s} (not in this build)")

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
step "9. kubectl kustomize k8s/ (offline render)"
rendered=""
if command -v kubectl >/dev/null 2>&1; then
    if kubectl kustomize k8s/ > "$TMP/rendered.yaml" 2>"$TMP/kustomize.err"; then
        n=$(grep -c '^kind:' "$TMP/rendered.yaml" || true)
        ok "kubectl kustomize k8s/: $n resources rendered"
        rendered="$TMP/rendered.yaml"
    else
        bad "kubectl kustomize k8s/: $(tr '\n' ' ' < "$TMP/kustomize.err")"
    fi
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
    if [ -n "$rendered" ]; then
        targets=("$rendered")
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
        sed "s#/var/lib/gridwork#$data#g" "$file" > "$TMP/loader-$i.toml"
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
