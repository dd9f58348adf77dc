#!/usr/bin/env python3
"""The ServiceMonitor of deploy/kubernetes/standalone/, as prometheus-operator
turns it into a Prometheus scrape job, scrapes the daemon: the Cerebras
series keep their own `endpoint` label (not `exported_endpoint`), the
operator's target labels land on the proxy's own series, and the job is the
one the alerts match, whatever the Service is called.

No cluster here, so the test builds the job the operator would generate
(endpoints role; prometheus-operator's pkg/prometheus/promcfg.go, read, not
copied) from the ServiceMonitor and the Service manifests: the relabelling
that keeps the selected Service's port, sets namespace/service/pod/container,
`job` from jobLabel and `endpoint` from the port name, plus honorLabels,
honorTimestamps and the path. Kubernetes service discovery is replaced by one
static target carrying the `__meta_kubernetes_*` labels it would give the pod
(the Service renamed, to show the job does not depend on its name). The only
other difference: a 1 s interval instead of the ServiceMonitor's 60 s. A
second job, the same but with honor_labels: false, shows what the setting
prevents.

    python3 servicemonitor_e2e_test.py --daemon D --mock M --repo R
"""

import os
import re
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import e2e_prometheus as ep  # noqa: E402

try:
    import yaml
except ImportError:
    print("skip: python3-yaml is missing", file=sys.stderr)
    sys.exit(77)

STANDALONE = os.path.join("deploy", "kubernetes", "standalone")
NAMESPACE = "monitoring-e2e"
SERVICE = "renamed-service"      # not the manifest's name: the job must not depend on it
POD = "cerebras-metrics-proxy-6d9c7b-x7k2p"


def manifest(name):
    with open(os.path.join(harness.REPO, STANDALONE, name)) as f:
        return yaml.safe_load(f)


def sanitize(name):
    return re.sub(r"[^a-zA-Z0-9_]", "_", name)


def discovered_target(address, service, container):
    """The labels Kubernetes SD (endpoints role) gives the pod behind `service`."""
    labels = {
        "__meta_kubernetes_namespace": NAMESPACE,
        "__meta_kubernetes_service_name": SERVICE,
        "__meta_kubernetes_endpoint_port_name": service["spec"]["ports"][0]["name"],
        "__meta_kubernetes_endpoint_address_target_kind": "Pod",
        "__meta_kubernetes_endpoint_address_target_name": POD,
        "__meta_kubernetes_pod_name": POD,
        "__meta_kubernetes_pod_container_name": container,
        "__meta_kubernetes_pod_phase": "Running",
    }
    for k, v in service["metadata"]["labels"].items():
        labels["__meta_kubernetes_service_label_" + sanitize(k)] = v
        labels["__meta_kubernetes_service_labelpresent_" + sanitize(k)] = "true"
    return {"targets": [address], "labels": labels}


def operator_job(sm, endpoint, target, interval="1s"):
    """The scrape job prometheus-operator generates for one ServiceMonitor endpoint."""
    meta = "__meta_kubernetes_"
    relabel = [{"source_labels": ["job"], "target_label": "__tmp_prometheus_job_name"}]
    for k, v in sorted(sm["spec"]["selector"].get("matchLabels", {}).items()):
        relabel.append({"action": "keep", "regex": "(%s);true" % v,
                        "source_labels": [meta + "service_label_" + sanitize(k),
                                          meta + "service_labelpresent_" + sanitize(k)]})
    relabel.append({"action": "keep", "source_labels": [meta + "endpoint_port_name"],
                    "regex": endpoint["port"]})
    kind = [meta + "endpoint_address_target_kind", meta + "endpoint_address_target_name"]
    relabel += [
        {"source_labels": kind, "separator": ";", "regex": "Node;(.*)", "replacement": "${1}",
         "target_label": "node"},
        {"source_labels": kind, "separator": ";", "regex": "Pod;(.*)", "replacement": "${1}",
         "target_label": "pod"},
        {"source_labels": [meta + "namespace"], "target_label": "namespace"},
        {"source_labels": [meta + "service_name"], "target_label": "service"},
        {"source_labels": [meta + "pod_name"], "target_label": "pod"},
        {"source_labels": [meta + "pod_container_name"], "target_label": "container"},
        {"action": "drop", "source_labels": [meta + "pod_phase"], "regex": "(Failed|Succeeded)"},
        {"source_labels": [meta + "service_name"], "target_label": "job", "replacement": "${1}"},
    ]
    if sm["spec"].get("jobLabel"):
        relabel.append({"source_labels": [meta + "service_label_" + sanitize(sm["spec"]["jobLabel"])],
                        "target_label": "job", "regex": "(.+)", "replacement": "${1}"})
    relabel.append({"target_label": "endpoint", "replacement": endpoint["port"]})
    relabel += [{sanitize_key(k): v for k, v in r.items()} for r in endpoint.get("relabelings", [])]
    job = {
        "job_name": "serviceMonitor/%s/%s/0" % (NAMESPACE, sm["metadata"]["name"]),
        "honor_labels": endpoint.get("honorLabels", False),
        "honor_timestamps": endpoint.get("honorTimestamps", True),
        "scrape_interval": interval,
        "scrape_timeout": interval,
        "metrics_path": endpoint.get("path", "/metrics"),
        "static_configs": [target],
        "relabel_configs": relabel,
    }
    if endpoint.get("metricRelabelings"):
        job["metric_relabel_configs"] = [{sanitize_key(k): v for k, v in r.items()}
                                         for r in endpoint["metricRelabelings"]]
    return job


def sanitize_key(k):
    """A RelabelConfig field of the CRD (camelCase) as Prometheus spells it."""
    return {"sourceLabels": "source_labels", "targetLabel": "target_label"}.get(k, k.lower())


def alert_up_selector():
    """The `up{...}` selector of CerebrasProxyTargetDown, from the PrometheusRule."""
    rule = manifest("prometheusrule.yaml")
    for g in rule["spec"]["groups"]:
        for r in g["rules"]:
            if r.get("alert") == "CerebrasProxyTargetDown":
                m = re.search(r"\bup\s*\{[^}]*\}", r["expr"])
                assert m, r["expr"]
                return m.group(0)
    raise AssertionError("no CerebrasProxyTargetDown in the PrometheusRule")


class ServiceMonitorTest(unittest.TestCase):
    def test_servicemonitor_scrape(self):
        ep.skip_without_prometheus()
        ws = harness.Workspace(prefix="cmp-e2e-sm-")
        mock = harness.Mock(ws, window="2s", endpoints=3, rate_limit=6, rate_window="6s")
        # The ConfigMap's upstream, pointed at the simulated API.
        cfg = yaml.safe_load(manifest("configmap.yaml")["data"]["cerebras-metrics-proxy.yml"])
        up = cfg["upstreams"][0]
        up.pop("api_key_file")
        up.update(harness.upstream_cfg(mock, interval="2s", requests=6, window="6s"))
        daemon = harness.Daemon(ws, {"upstreams": [up]})
        self.addCleanup(daemon.stop)
        self.addCleanup(mock.stop)

        sm, svc, dep = manifest("servicemonitor.yaml"), manifest("service.yaml"), manifest("deployment.yaml")
        container = dep["spec"]["template"]["spec"]["containers"][0]["name"]
        target = discovered_target("127.0.0.1:%d" % daemon.port, svc, container)
        job = operator_job(sm, sm["spec"]["endpoints"][0], target)
        contrast = operator_job(sm, dict(sm["spec"]["endpoints"][0], honorLabels=False), target)
        contrast["job_name"] += "-without-honor-labels"
        contrast["relabel_configs"].append({"target_label": "job", "replacement": "without-honor-labels"})
        prom = ep.Prometheus(ws, scrape_configs=[job, contrast])
        self.addCleanup(prom.stop)

        targets = prom.wait_target_up()
        labels = targets[0]["labels"]
        self.assertEqual(labels.get("job"), ep.JOB, labels)
        self.assertEqual((labels.get("namespace"), labels.get("service"), labels.get("pod"),
                          labels.get("container"), labels.get("endpoint")),
                         (NAMESPACE, SERVICE, POD, container, "metrics"), labels)

        names = {harness.endpoint_name(e) for e in range(3)}
        status = prom.wait_query('inference_endpoint_status{job="%s"}' % ep.JOB,
                                 pred=lambda r: len(r) == 3)
        self.assertEqual({m["endpoint"] for m, _ in status}, names)
        for m, _ in status:
            self.assertNotIn("exported_endpoint", m)
            self.assertEqual((m["namespace"], m["pod"], m["service"]), (NAMESPACE, POD, SERVICE))
        self.assertEqual(prom.query('count({job="%s", exported_endpoint!=""})' % ep.JOB), [])
        # The proxy's own series carry the operator's endpoint label.
        own = prom.query('cerebras_proxy_upstream_up{job="%s"}' % ep.JOB)
        self.assertEqual([(m["endpoint"], v) for m, v in own], [("metrics", 1.0)])
        # The alert's selector finds this target, up.
        selector = alert_up_selector()
        self.assertEqual([v for m, v in prom.query(selector) if m.get("pod") == POD], [1.0], selector)

        # Without honor_labels the Cerebras label is pushed aside.
        renamed = prom.wait_query('inference_endpoint_status{job="without-honor-labels"}',
                                  pred=lambda r: len(r) == 3)
        self.assertEqual({m.get("exported_endpoint") for m, _ in renamed}, names)
        self.assertEqual({m["endpoint"] for m, _ in renamed}, {"metrics"})


if __name__ == "__main__":
    harness.main()
