"""The deployment files, checked without Docker: docker-compose.yml through
`docker-compose config`, deploy/haproxy.cfg through `haproxy -c` in both its
forms (Docker's, and deploy/local-cluster's rendering for loopback), the
image's package list against the binary's shared libraries, its environment
and health check against a real gateway, and deploy/wsgw.service through
`systemd-analyze verify`."""
import fnmatch
import os
import re
import shlex
import shutil
import subprocess

import pytest

from conftest import BIN, ROOT, free_port

DEPLOY = os.path.join(ROOT, "deploy")
DOCKERFILE = os.path.join(DEPLOY, "Dockerfile")
HAPROXY_CFG = os.path.join(DEPLOY, "haproxy.cfg")
LOCAL_CLUSTER = os.path.join(DEPLOY, "local-cluster")
HEALTHCHECK = os.path.join(DEPLOY, "wsgw-healthcheck")
RELEASE_BIN = os.path.join(ROOT, "build", "wsgw")


def need(tool):
    path = shutil.which(tool)
    assert path, "%s not found: `make deps` installs it" % tool
    return path


def clean_env(**extra):
    """The environment without WSGW_* (wsgw refuses unknown ones) and with
    LB_* unset, so haproxy.cfg's own defaults are what is checked."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WSGW_", "LB_"))}
    env.update(extra)
    return env


# ---- docker-compose.yml ------------------------------------------------------

def compose_config():
    need("docker-compose")
    r = subprocess.run(["docker-compose", "-f", os.path.join(ROOT, "docker-compose.yml"), "config"],
                       capture_output=True, text=True, timeout=60, cwd=ROOT, env=clean_env())
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_compose_file_is_valid():
    need("docker-compose")
    r = subprocess.run(["docker-compose", "config", "-q"], capture_output=True, text=True,
                       timeout=60, cwd=ROOT, env=clean_env())
    assert r.returncode == 0, r.stderr


def test_compose_topology():
    yaml = pytest.importorskip("yaml")     # python3-yaml: a docker-compose dependency
    cfg = yaml.safe_load(compose_config())
    svc = cfg["services"]
    assert set(svc) == {"redis", "gateway", "balancer"}
    assert svc["redis"]["image"].startswith("redis:7") and "healthcheck" in svc["redis"]
    gw = svc["gateway"]
    assert gw["build"]["dockerfile"] == "deploy/Dockerfile"
    assert os.path.realpath(gw["build"]["context"]) == os.path.realpath(ROOT)
    assert gw["deploy"]["replicas"] == 3
    assert gw["depends_on"]["redis"]["condition"] == "service_healthy"
    # Scalable: nothing that pins one container (a published port, a name).
    assert "ports" not in gw and "container_name" not in gw
    env = gw["environment"]
    assert env["WSGW_REDIS_URL"] == "redis://redis:6379"
    # The balancer sends PROXY headers (haproxy.cfg: send-proxy-v2); the
    # gateways trust the compose network for them.
    assert "172.16.0.0/12" in env["WSGW_PROXY_PROTOCOL"].split(",")
    keys = config_keys()
    for k in env:
        assert k.startswith("WSGW_") and k[5:].lower() in keys, "%s is not a wsgw key" % k
    lb = svc["balancer"]
    assert lb["image"].startswith("haproxy:2.6")      # the branch `haproxy -c` checks here
    assert {"published": 8080, "target": 8080} in lb["ports"], lb["ports"]
    assert any(v.endswith(":/usr/local/etc/haproxy/haproxy.cfg:ro") and "deploy/haproxy.cfg" in v
               for v in lb["volumes"])
    # The drain fits in the stop grace period: SIGTERM, drain_timeout, exit.
    assert gw["stop_signal"] == "SIGTERM"
    assert duration_s(gw["stop_grace_period"]) > duration_s(dockerfile_env()["WSGW_DRAIN_TIMEOUT"])


def duration_s(text):
    m = re.fullmatch(r"(\d+)(ms|s|m)", text)
    assert m, text
    return int(m.group(1)) * {"ms": 0.001, "s": 1, "m": 60}[m.group(2)]


def config_keys():
    out = subprocess.run([RELEASE_BIN, "--help"], capture_output=True, text=True, timeout=10,
                         env=clean_env()).stdout
    return {m.replace("-", "_") for m in re.findall(r"^  --([a-z0-9-]+)", out, re.M)}


# ---- deploy/haproxy.cfg ---------------------------------------------------------

def haproxy_check(path, env=None):
    need("haproxy")
    r = subprocess.run(["haproxy", "-c", "-f", path], capture_output=True, text=True, timeout=30,
                       env=env or clean_env())
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout + r.stderr


def test_haproxy_config_docker_form():
    out = haproxy_check(HAPROXY_CFG)
    assert "ALERT" not in out and "WARNING" not in out, out
    text = open(HAPROXY_CFG).read()
    for must in ("timeout tunnel", "balance leastconn", "http-check expect status 200",
                 "uri /healthz", "server-template gw 1-10 gateway:8080", "resolvers docker",
                 "option redispatch", "hard-stop-after", "send-proxy-v2", "check-send-proxy"):
        assert must in text, must
    # X-Forwarded-For is set to the client's address, never appended to: a
    # client's own (forged) header must not reach the backends first.
    active = [l.split("#", 1)[0].strip() for l in text.splitlines()]
    assert "http-request set-header X-Forwarded-For %[src]" in active
    assert not any(l.startswith("option forwardfor") for l in active), "option forwardfor appends"
    # No stickiness: any gateway serves any client.
    for sticky in ("stick-table", "stick on", "cookie ", "balance source", "hash-type"):
        assert sticky not in text, sticky


def render_local(tmp_path, ports):
    r = subprocess.run([LOCAL_CLUSTER, "haproxy-config", "--port", str(ports[0]),
                        "--gateway-ports", ",".join(map(str, ports[1:])), "--dir", str(tmp_path)],
                       capture_output=True, text=True, timeout=30, env=clean_env())
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_haproxy_config_local_form(tmp_path):
    ports = [free_port() for _ in range(4)]
    text = render_local(tmp_path, ports)
    path = tmp_path / "haproxy.cfg"
    path.write_text(text)
    out = haproxy_check(str(path), clean_env(LB_BIND="127.0.0.1:%d" % ports[0],
                                             LB_ADMIN_SOCK=str(tmp_path / "a.sock"),
                                             LB_STATS_BIND="unix@%s" % (tmp_path / "s.sock")))
    assert "ALERT" not in out, out
    servers = re.findall(r"^\s*server (\S+) (\S+) check source 127\.0\.0\.2$", text, re.M)
    assert servers == [("gw%d" % (i + 1), "127.0.0.1:%d" % p) for i, p in enumerate(ports[1:])]
    assert "server-template" not in text and "resolvers" not in text
    # The shared part is deploy/haproxy.cfg word for word: one set of
    # balancer settings for compose and for the local cluster.
    shared = open(HAPROXY_CFG).read().split("    # ---- servers: Docker", 1)[0]
    assert shared in text


# ---- deploy/Dockerfile ------------------------------------------------------------

def dockerfile_stages():
    text = open(DOCKERFILE).read().replace("\\\n", " ")
    stages = re.split(r"^FROM ", text, flags=re.M)[1:]
    assert len(stages) == 2, "a build stage and a runtime stage"
    return stages


def apt_packages(stage):
    m = re.search(r"apt-get install ([^&]*)", stage)
    return [w for w in m.group(1).split() if not w.startswith("-")]


def dockerfile_env():
    env = {}
    for line in dockerfile_stages()[1].splitlines():
        if line.startswith("ENV "):
            for item in shlex.split(line[4:]):
                k, _, v = item.partition("=")
                env[k] = v
    return env


def test_dockerfile_shape():
    build, runtime = dockerfile_stages()
    assert build.startswith("debian:bookworm-slim AS build")
    assert runtime.startswith("debian:bookworm-slim")
    assert re.search(r"RUN make .*build/wsgw\b", build) and "make test" not in build
    assert "COPY --from=build /src/build/wsgw /usr/local/bin/wsgw" in runtime
    assert "COPY clients/demo /usr/share/wsgw/demo" in runtime
    assert re.search(r"^USER [1-9]\d*:[1-9]\d*$", runtime, re.M)        # not root
    for must in ("EXPOSE 8080", "STOPSIGNAL SIGTERM", "HEALTHCHECK ", "wsgw-healthcheck"):
        assert must in runtime, must
    # Nothing from the build stage's toolchain in the runtime stage.
    for dev in ("build-essential", "-dev", "gcc", "make"):
        assert not any(dev in p for p in apt_packages(runtime)), dev
    ignored = open(os.path.join(ROOT, ".dockerignore")).read().split()
    for must in ("build/", ".git"):
        assert must in ignored, must


def docker_context_files():
    """The files `docker build -f deploy/Dockerfile .` sends: tracked files
    minus .dockerignore's patterns (a directory pattern drops all below it)."""
    patterns = [p.rstrip("/") for p in open(os.path.join(ROOT, ".dockerignore")).read().split()
                if not p.startswith("#")]
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True,
                           check=True).stdout.split()
    def ignored(path):
        parts = path.split("/")
        prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
        return any(fnmatch.fnmatch(pre, pat.replace("**/", "*")) or fnmatch.fnmatch(pre, pat)
                   for pat in patterns for pre in prefixes)
    return [f for f in files if not ignored(f)]


def test_image_build_stage_builds_from_the_docker_context(tmp_path):
    """The build stage's make command succeeds on exactly the files the
    context holds (a target needing an ignored source once broke it)."""
    build = dockerfile_stages()[0]
    cmd = re.search(r"RUN (make [^\\&\n]*)", build).group(1).replace('"$(nproc)"', "2")
    ctx = tmp_path / "src"
    for f in docker_context_files():
        dst = ctx / f
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(os.path.join(ROOT, f), dst)
    assert not (ctx / "tests" / "bench").exists() and not (ctx / "build").exists()
    r = subprocess.run(shlex.split(cmd), cwd=ctx, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, (cmd, r.stdout[-2000:], r.stderr[-2000:])
    v = subprocess.run([str(ctx / "build" / "wsgw"), "--version"], capture_output=True, text=True, timeout=10)
    assert v.returncode == 0 and "wsgw" in (v.stdout + v.stderr)


def test_runtime_packages_cover_the_binary():
    """Every shared library build/wsgw needs comes from a package the
    runtime stage installs (or from the base image: libc6)."""
    pkgs = apt_packages(dockerfile_stages()[1])
    for p in pkgs:
        r = subprocess.run(["apt-cache", "show", "--no-all-versions", p], capture_output=True,
                           text=True, timeout=30)
        assert r.returncode == 0 and "Package: %s" % p in r.stdout, "no Debian package %s" % p
    r = subprocess.run(["ldd", RELEASE_BIN], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    libs = re.findall(r"=> (/\S+)", r.stdout)
    assert libs
    for lib in libs:
        owner = None
        for path in (lib, os.path.realpath(lib), lib.replace("/lib/", "/usr/lib/", 1)):
            d = subprocess.run(["dpkg", "-S", path], capture_output=True, text=True, timeout=30)
            if d.returncode == 0:
                owner = d.stdout.split(":")[0]
                break
        assert owner, "no package owns %s" % lib
        assert owner in pkgs or owner == "libc6", "%s (%s) missing from the runtime stage" % (lib, owner)


def test_image_environment_and_healthcheck(tmp_path):
    """The image's WSGW_* variables are keys wsgw accepts, and its health
    check passes on a running gateway and fails once it is gone."""
    env = dockerfile_env()
    assert env["WSGW_LISTEN"] == "0.0.0.0:8080"
    assert env["WSGW_STATIC_DIR"] == "/usr/share/wsgw/demo"
    port = free_port()
    env["WSGW_LISTEN"] = "127.0.0.1:%d" % port                 # loopback only, in tests
    env["WSGW_STATIC_DIR"] = str(tmp_path)
    (tmp_path / "index.html").write_text("<p>demo</p>")
    log = open(tmp_path / "wsgw.log", "w+")
    proc = subprocess.Popen([BIN], stdout=log, stderr=subprocess.STDOUT,
                            env=clean_env(**env, ASAN_OPTIONS="detect_leaks=1"))
    try:
        ok = None
        for _ in range(100):
            ok = subprocess.run([HEALTHCHECK], capture_output=True, text=True, timeout=10,
                                env=clean_env(WSGW_LISTEN=env["WSGW_LISTEN"]))
            if ok.returncode == 0 or proc.poll() is not None:
                break
            subprocess.run(["sleep", "0.1"])
        assert ok.returncode == 0, (ok.stderr, open(tmp_path / "wsgw.log").read())
        assert '"status":"ok"' in ok.stdout
        # The drain timeout the image sets is what it says.
        with open(tmp_path / "wsgw.log") as f:
            assert "configuration error" not in f.read()
    finally:
        proc.terminate()
        assert proc.wait(timeout=20) == 0
    out = open(tmp_path / "wsgw.log").read()
    assert "ERROR: AddressSanitizer" not in out and "runtime error:" not in out, out
    gone = subprocess.run([HEALTHCHECK, "127.0.0.1:%d" % port], capture_output=True, text=True,
                          timeout=10, env=clean_env())
    assert gone.returncode != 0


# ---- deploy/wsgw.service -------------------------------------------------------

def test_systemd_unit(tmp_path):
    text = open(os.path.join(DEPLOY, "wsgw.service")).read()
    for must in ("User=wsgw", "EnvironmentFile=-/etc/default/wsgw",
                 "ExecStart=/usr/local/bin/wsgw --config /etc/wsgw/wsgw.conf",
                 "ExecReload=/bin/kill -HUP $MAINPID", "KillSignal=SIGTERM", "KillMode=mixed",
                 "NoNewPrivileges=true", "ProtectSystem=strict", "ProtectHome=true", "PrivateTmp=true"):
        assert must in text, must
    nofile = int(re.search(r"^LimitNOFILE=(\d+)$", text, re.M).group(1))
    assert nofile >= 65536
    # The stop timeout covers the default drain_timeout (10s) with margin.
    stop = duration_s(re.search(r"^TimeoutStopSec=(\S+)$", text, re.M).group(1))
    assert stop >= 10 + 5
    analyze = shutil.which("systemd-analyze")
    if not analyze:
        pytest.skip("systemd-analyze not installed")
    # verify wants ExecStart to exist: point it at the built binary.
    unit = tmp_path / "wsgw.service"
    unit.write_text(text.replace("/usr/local/bin/wsgw", RELEASE_BIN))
    r = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60)
    if r.returncode != 0 and ("Failed to" in r.stderr and "manager" in r.stderr.lower()):
        pytest.skip("systemd-analyze cannot run here: " + r.stderr.strip())
    assert r.returncode == 0, r.stderr
    assert "wsgw.service" not in r.stderr, r.stderr        # no warning about the unit


def test_shell_scripts_pass_shellcheck():
    sc = shutil.which("shellcheck")
    if not sc:
        pytest.skip("shellcheck not installed")
    r = subprocess.run([sc, LOCAL_CLUSTER, HEALTHCHECK], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout


# ---- README ------------------------------------------------------------------

def test_readme_deploying_section_names_real_things():
    text = open(os.path.join(ROOT, "README.md")).read()
    section = text.split("\n## Deploying\n", 1)[1].split("\n## ", 1)[0]
    metrics = set(re.findall(r"`(wsgw_[a-z_]+)", section))
    known = set(re.findall(r'"(wsgw_[a-z_]+)', open(os.path.join(ROOT, "gateway", "core", "metrics.c")).read()))
    assert len(metrics) >= 10 and metrics <= known, metrics - known
    variables = set(re.findall(r"`(WSGW_[A-Z_]+)`", section)) - {"WSGW_BIN", "WSGW_CONFIG"}
    keys = config_keys()
    assert variables and {v[5:].lower() for v in variables} <= keys, variables
    for path in re.findall(r"\]\(((?:deploy/|docker-compose)[^)#]*)\)", section):
        assert os.path.exists(os.path.join(ROOT, path)), path
