"""Real Ray heads for the local control plane's KubeRay head pods.

kwok runs pods without containers: a head pod is Running with an IP, but nothing answers there. This
process gives each head pod what its container would: a real Ray head (`ray start --head`, Ray from
PyPI) listening at the pod's IP, started when the pod runs and stopped when it goes away. So raydar
reaches Ray exactly as in production: through the head service, whose endpoint is the pod IP, or
through the apiserver's service proxy, which connects to that IP.

How a pod IP becomes reachable: every head gets a network namespace (`<prefix><ip>`) with one end of
a veth pair holding the pod IP; the other end joins a bridge in the host namespace whose address is
the last of the pod range (the gateway). The host, and so the apiserver and raydar, routes the pod
range to the bridge. Ray listens on 0.0.0.0 inside its namespace only. This needs root (creating
namespaces and links); up.sh starts this process only then.

No cluster DNS exists here, so each running head's service name (`<cluster>-head-svc.<namespace>.svc
.cluster.local`, what the KubeRay operator posts a RayJob's submission to in HTTPMode) is written
to /etc/hosts, in a block of this process' own that it keeps to the heads running.

Kept simple on purpose, as a stand-in for a kubelet:
- one Ray head per head pod, no Ray workers (worker pods stay containerless);
- a head that exits stays down until its pod is replaced, as a crashed container would be until
  restarted: `ip netns pids <ns> | xargs kill` is how a test stops one;
- at most --max-heads heads run at once (each costs ~0.5 GB and a few CPU-seconds to start); a
  head pod beyond that is logged and left without Ray.

Watches pods with the apiserver's list+watch (labelSelector ray.io/node-type=head), as a client
certificate user that may only read pods.

Usage (up.sh): python heads.py --apiserver URL --ca CA --cert CRT --key KEY --bridge NAME
    --gateway CIDR --netns-prefix P --state DIR [--max-heads N] [--ray-version V]
       python heads.py --cleanup --bridge NAME --netns-prefix P   (down.sh)
"""

import argparse
import ipaddress
import json
import os
import signal
import ssl
import subprocess
import sys
import threading
import time
import urllib.parse
import http.client

HEAD_SELECTOR = "ray.io/node-type=head"
# Ray's ports as KubeRay's head service names them (dashboard, gcs, metrics, client).
DASHBOARD_PORT, GCS_PORT, METRICS_PORT, CLIENT_PORT = 8265, 6379, 8080, 10001


def log(message):
    print(time.strftime("[%H:%M:%S]"), message, flush=True)


def ip_cmd(*args, check=True):
    """Runs `ip ARGS`; raises with ip's own message when check and it fails."""
    result = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=20)
    if check and result.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {result.stderr.strip()}")
    return result


class Network:
    """The bridge and one namespace + veth pair per head."""

    def __init__(self, bridge, gateway, prefix):
        self.bridge, self.gateway, self.prefix = bridge, ipaddress.ip_interface(gateway), prefix

    def contains(self, ip):
        try:
            return ipaddress.ip_address(ip) in self.gateway.network
        except ValueError:
            return False

    def up(self):
        if ip_cmd("link", "show", self.bridge, check=False).returncode != 0:
            ip_cmd("link", "add", self.bridge, "type", "bridge")
        ip_cmd("addr", "replace", str(self.gateway), "dev", self.bridge)
        ip_cmd("link", "set", self.bridge, "up")

    def namespace(self, ip):
        return self.prefix + ip.replace(".", "-")

    def add(self, ip):
        """A namespace holding `ip`, reachable from the host through the bridge."""
        ns = self.namespace(ip)
        self.remove(ns)
        # Interface names are at most 15 characters: the host end is named by the IP's last two bytes.
        a, b = ip.split(".")[2:]
        host_end = f"{self.prefix[:6]}{int(a):02x}{int(b):02x}"
        ip_cmd("netns", "add", ns)
        ip_cmd("link", "add", host_end, "type", "veth", "peer", "name", "eth0", "netns", ns)
        ip_cmd("link", "set", host_end, "master", self.bridge, "up")
        inside = ["netns", "exec", ns, "ip"]
        ip_cmd(*inside, "link", "set", "lo", "up")
        ip_cmd(*inside, "addr", "add", f"{ip}/{self.gateway.network.prefixlen}", "dev", "eth0")
        ip_cmd(*inside, "link", "set", "eth0", "up")
        ip_cmd(*inside, "route", "add", "default", "via", str(self.gateway.ip))
        return ns

    @staticmethod
    def kill_all(ns, grace):
        """Stops every process in the namespace: TERM, then KILL after `grace` seconds."""
        deadline = time.monotonic() + grace
        sig = signal.SIGTERM
        while True:
            pids = ip_cmd("netns", "pids", ns, check=False).stdout.split()
            if not pids:
                return
            if time.monotonic() > deadline:
                sig = signal.SIGKILL
            for pid in pids:
                try:
                    os.kill(int(pid), sig)
                except (ProcessLookupError, ValueError):
                    pass
            time.sleep(0.2)

    def remove(self, ns, grace=3.0):
        """Stops what runs in `ns` and deletes it (its veth pair goes with it)."""
        if ip_cmd("netns", "pids", ns, check=False).returncode != 0:
            return
        self.kill_all(ns, grace)
        ip_cmd("netns", "del", ns, check=False)

    def cleanup(self):
        """Removes every namespace with this prefix, then the bridge: what down.sh calls."""
        for line in ip_cmd("netns", "list", check=False).stdout.splitlines():
            name = line.split()[0] if line.split() else ""
            if name.startswith(self.prefix):
                self.remove(name, grace=1.0)
        ip_cmd("link", "del", self.bridge, check=False)


class Hosts:
    """The running heads' service names in /etc/hosts, in a block of lines marked as this plane's."""

    PATH = "/etc/hosts"

    def __init__(self, prefix):
        self.begin = f"# begin raydar local plane {prefix}: Ray head services (deploy/local/ray/heads.py)"
        self.end = f"# end raydar local plane {prefix}"

    def write(self, names):
        """Makes the block map exactly `names` (host name -> IP); the rest of the file is kept."""
        try:
            with open(self.PATH) as f:
                lines = f.read().splitlines()
        except FileNotFoundError:
            lines = []
        kept, inside = [], False
        for line in lines:
            if line == self.begin:
                inside = True
            elif line == self.end:
                inside = False
            elif not inside:
                kept.append(line)
        if names:
            kept += [self.begin, *(f"{ip} {name}" for name, ip in sorted(names.items())), self.end]
        # Written in place: /etc/hosts may be a mount, which a rename would not replace.
        with open(self.PATH, "w") as f:
            f.write("\n".join(kept) + "\n")


def service_name(pod):
    """The DNS name of the head service of a head pod's RayCluster (KubeRay names it
    `<cluster>-head-svc`)."""
    namespace, _, _, cluster = pod
    return f"{cluster}-head-svc.{namespace}.svc.cluster.local"


class Head:
    """One `ray start --head --block` inside a pod's namespace."""

    def __init__(self, pod, ns, process, log_path):
        self.pod, self.ns, self.process, self.log_path = pod, ns, process, log_path
        self.reported_exit = False


class Heads:
    def __init__(self, args, network, hosts):
        self.args, self.network, self.hosts = args, network, hosts
        self.running = {}  # pod uid -> Head
        self.ray = os.path.join(args.venv, "bin", "ray")
        self.warned_full = set()

    def reconcile(self, pods):
        """Makes the running heads match `pods` (uid -> (namespace, name, ip, cluster)), and
        /etc/hosts name them."""
        before = {uid: head.pod for uid, head in self.running.items()}
        self.match(pods)
        after = {uid: head.pod for uid, head in self.running.items()}
        if after != before:
            self.write_hosts()

    def write_hosts(self):
        try:
            self.hosts.write({service_name(h.pod): h.pod[2] for h in self.running.values() if h.pod[3]})
        except OSError as error:
            log(f"cannot name the head services in {Hosts.PATH}: {error}")

    def match(self, pods):
        for uid in list(self.running):
            head = self.running[uid]
            if pods.get(uid) != head.pod:
                self.stop(uid)
        for uid, head in self.running.items():
            if head.process.poll() is not None and not head.reported_exit:
                head.reported_exit = True
                log(f"Ray head of {head.pod[0]}/{head.pod[1]} exited ({head.process.returncode}); "
                    f"it stays down until the pod is replaced (log: {head.log_path})")
        for uid, pod in sorted(pods.items(), key=lambda item: item[1]):
            if uid in self.running:
                continue
            if len(self.running) >= self.args.max_heads:
                if uid not in self.warned_full:
                    self.warned_full.add(uid)
                    log(f"head pod {pod[0]}/{pod[1]} at {pod[2]} gets no Ray: {len(self.running)} heads "
                        f"already run (--max-heads {self.args.max_heads})")
                continue
            self.start(uid, pod)

    def start(self, uid, pod):
        namespace, name, ip, _ = pod
        try:
            ns = self.network.add(ip)
        except (RuntimeError, subprocess.TimeoutExpired) as error:
            log(f"no network for {namespace}/{name} at {ip}: {error}")
            return
        # Ray puts unix sockets under its temp dir, whose paths may not exceed 107 bytes: keep it short.
        temp = os.path.join(self.args.state, ip)
        os.makedirs(temp, exist_ok=True)
        log_path = os.path.join(self.args.state, f"{namespace}_{name}.log")
        env = dict(os.environ)
        env.update({
            # Job entrypoints run `python`: the venv's, which has ray.
            "PATH": os.path.join(self.args.venv, "bin") + os.pathsep + env.get("PATH", ""),
            "RAY_USAGE_STATS_ENABLED": "0",
            "RAY_DISABLE_DOCKER_CPU_WARNING": "1",
        })
        command = [
            "ip", "netns", "exec", ns, self.ray, "start", "--head", "--block",
            f"--node-ip-address={ip}", f"--port={GCS_PORT}",
            "--dashboard-host=0.0.0.0", f"--dashboard-port={DASHBOARD_PORT}",
            f"--metrics-export-port={METRICS_PORT}", f"--ray-client-server-port={CLIENT_PORT}",
            "--num-cpus=1", "--object-store-memory=100000000",
            f"--temp-dir={temp}", "--disable-usage-stats",
        ]
        with open(log_path, "ab") as out:
            process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT,
                                       stdin=subprocess.DEVNULL, env=env, start_new_session=True)
        self.running[uid] = Head(pod, ns, process, log_path)
        self.warned_full.discard(uid)
        log(f"Ray head for {namespace}/{name} starting at {ip}:{DASHBOARD_PORT} (namespace {ns})")
        threading.Thread(target=report_ready, args=(f"{namespace}/{name}", ip, process), daemon=True).start()

    def stop(self, uid):
        head = self.running.pop(uid)
        self.network.remove(head.ns)
        try:
            head.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            head.process.kill()
        log(f"Ray head for {head.pod[0]}/{head.pod[1]} stopped")

    def stop_all(self):
        for uid in list(self.running):
            self.stop(uid)
        self.write_hosts()


def report_ready(pod, ip, process, within=180):
    """Logs how long the head's dashboard took to answer (or that it did not): a slow start on a
    busy machine is then told apart from a head that never came up."""
    started = time.monotonic()
    while time.monotonic() - started < within and process.poll() is None:
        try:
            connection = http.client.HTTPConnection(ip, DASHBOARD_PORT, timeout=2)
            connection.request("GET", "/api/version")
            if connection.getresponse().status == 200:
                log(f"Ray head for {pod} answers after {time.monotonic() - started:.1f}s")
                return
        except (OSError, http.client.HTTPException):
            pass
        finally:
            connection.close()
        time.sleep(0.5)
    if process.poll() is None:
        log(f"Ray head for {pod} does not answer at {ip}:{DASHBOARD_PORT} after {within}s")


class Apiserver:
    """Just enough of a Kubernetes client: list and watch pods (also used by dcgm.py)."""

    def __init__(self, url, ca, cert, key):
        parsed = urllib.parse.urlsplit(url)
        self.host, self.port = parsed.hostname, parsed.port or 443
        self.context = ssl.create_default_context(cafile=ca)
        self.context.load_cert_chain(cert, key)

    def request(self, path, timeout):
        connection = http.client.HTTPSConnection(self.host, self.port, context=self.context, timeout=timeout)
        connection.request("GET", path)
        response = connection.getresponse()
        if response.status != 200:
            body = response.read(2000).decode(errors="replace")
            connection.close()
            raise RuntimeError(f"GET {path}: {response.status} {body}")
        return connection, response

    def list(self, path, selector=None):
        """(resourceVersion, items) of a collection, e.g. /api/v1/pods."""
        query = urllib.parse.urlencode({"labelSelector": selector} if selector else {})
        connection, response = self.request(f"{path}?{query}", timeout=20)
        try:
            body = json.load(response)
        finally:
            connection.close()
        return body["metadata"]["resourceVersion"], body["items"]

    def watch(self, path, resource_version, selector=None):
        """Yields watch events until the server ends the watch (at most 5 minutes)."""
        params = {"labelSelector": selector} if selector else {}
        params.update({"watch": "1", "resourceVersion": resource_version,
                       "timeoutSeconds": "300", "allowWatchBookmarks": "true"})
        # A socket timeout above the server's: a silent connection is a dead one.
        connection, response = self.request(f"{path}?{urllib.parse.urlencode(params)}", timeout=330)
        try:
            for line in response:
                if line.strip():
                    yield json.loads(line)
        finally:
            connection.close()

    def list_heads(self):
        return self.list("/api/v1/pods", HEAD_SELECTOR)

    def watch_heads(self, resource_version):
        return self.watch("/api/v1/pods", resource_version, HEAD_SELECTOR)


def serving(pod):
    """(namespace, name, ip, cluster) when the pod should have a Ray head, else None."""
    meta, status = pod["metadata"], pod.get("status", {})
    if meta.get("deletionTimestamp") or status.get("phase") != "Running" or not status.get("podIP"):
        return None
    cluster = meta.get("labels", {}).get("ray.io/cluster", "")
    return (meta["namespace"], meta["name"], status["podIP"], cluster)


def run(args):
    network = Network(args.bridge, args.gateway, args.netns_prefix)
    network.cleanup()  # what a previous, killed run left
    network.up()
    os.makedirs(args.state, exist_ok=True)
    api = Apiserver(args.apiserver, args.ca, args.cert, args.key)
    hosts = Hosts(args.netns_prefix)
    hosts.write({})  # what a previous, killed run left
    heads = Heads(args, network, hosts)
    stopping = threading.Event()

    def terminate(*_):
        stopping.set()
        heads.stop_all()
        network.cleanup()
        log("stopped")
        os._exit(0)

    signal.signal(signal.SIGTERM, terminate)
    signal.signal(signal.SIGINT, terminate)
    log(f"watching head pods; Ray {args.ray_version} heads on bridge {args.bridge} ({args.gateway})")

    while not stopping.is_set():
        try:
            version, items = api.list_heads()
            pods = {}
            for pod in items:
                if (want := serving(pod)) and network.contains(want[2]):
                    pods[pod["metadata"]["uid"]] = want
            heads.reconcile(pods)
            for event in api.watch_heads(version):
                kind, pod = event["type"], event["object"]
                if kind == "ERROR":
                    raise RuntimeError(f"watch ended: {pod.get('message')}")  # e.g. 410 Gone: relist
                if kind == "BOOKMARK":
                    continue
                uid = pod["metadata"]["uid"]
                want = serving(pod) if kind != "DELETED" else None
                if want and network.contains(want[2]):
                    pods[uid] = want
                else:
                    pods.pop(uid, None)
                heads.reconcile(pods)
        except Exception as error:  # the apiserver restarting, a dropped watch: list again
            if stopping.is_set():
                break
            log(f"relisting after: {error}")
            time.sleep(1)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cleanup", action="store_true", help="remove namespaces and bridge, then exit")
    parser.add_argument("--apiserver")
    parser.add_argument("--ca")
    parser.add_argument("--cert")
    parser.add_argument("--key")
    parser.add_argument("--bridge", required=True)
    parser.add_argument("--gateway", default="10.244.255.254/16")
    parser.add_argument("--netns-prefix", required=True)
    parser.add_argument("--state", default="/tmp/raydar-ray")
    parser.add_argument("--venv", default=os.path.dirname(os.path.dirname(sys.executable)))
    parser.add_argument("--max-heads", type=int, default=4)
    parser.add_argument("--ray-version", default="?")
    args = parser.parse_args()
    if args.cleanup:
        Network(args.bridge, args.gateway, args.netns_prefix).cleanup()
        Hosts(args.netns_prefix).write({})
        return
    for needed in ("apiserver", "ca", "cert", "key"):
        if not getattr(args, needed):
            parser.error(f"--{needed} is required")
    run(args)


if __name__ == "__main__":
    main()
