"""The official Python `kubernetes` client against a Ferry apiserver.

Usage: python3 client_check.py KUBECONFIG
Exits non-zero with a message on the first thing that does not work as on Kubernetes.
"""

import sys
import threading

from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException


def main(kubeconfig: str) -> None:
    config.load_kube_config(config_file=kubeconfig)
    core = client.CoreV1Api()
    apps = client.AppsV1Api()

    names = {ns.metadata.name for ns in core.list_namespace().items}
    assert {"default", "kube-system"} <= names, names

    cm = client.V1ConfigMap(metadata=client.V1ObjectMeta(name="py", labels={"from": "python"}), data={"a": "1"})
    created = core.create_namespaced_config_map("default", cm)
    assert created.metadata.uid and created.metadata.resource_version, created.metadata
    rv = created.metadata.resource_version

    try:
        core.create_namespaced_config_map("default", cm)
        raise AssertionError("a second create should fail")
    except ApiException as e:
        assert e.status == 409, e

    # A watch from the create's resourceVersion sees the patch that follows.
    events = []
    done = threading.Event()

    def watcher():
        w = watch.Watch()
        for event in w.stream(core.list_namespaced_config_map, "default", resource_version=rv,
                              label_selector="from=python", timeout_seconds=20):
            events.append((event["type"], event["object"].metadata.name, event["object"].data))
            if event["type"] == "DELETED":
                w.stop()
        done.set()

    thread = threading.Thread(target=watcher)
    thread.start()

    # A JSON merge patch (the client's default, strategic merge, is not served yet).
    patched = core.patch_namespaced_config_map("py", "default", {"data": {"a": "2"}},
                                                _content_type="application/merge-patch+json")
    assert patched.data["a"] == "2", patched.data
    listed = core.list_namespaced_config_map("default", label_selector="from=python")
    assert [c.metadata.name for c in listed.items] == ["py"], listed.items

    dep = client.V1Deployment(
        metadata=client.V1ObjectMeta(name="pyweb"),
        spec=client.V1DeploymentSpec(
            replicas=1,
            selector=client.V1LabelSelector(match_labels={"app": "pyweb"}),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels={"app": "pyweb"}),
                spec=client.V1PodSpec(containers=[client.V1Container(name="c", image="nginx")]))))
    made = apps.create_namespaced_deployment("default", dep)
    assert made.spec.strategy.rolling_update.max_surge == "25%", made.spec.strategy
    apps.delete_namespaced_deployment("pyweb", "default")

    core.delete_namespaced_config_map("py", "default")
    try:
        core.read_namespaced_config_map("py", "default")
        raise AssertionError("the config map should be gone")
    except ApiException as e:
        assert e.status == 404, e

    assert done.wait(20), "the watch did not see the delete"
    kinds = [e[0] for e in events]
    assert kinds == ["MODIFIED", "DELETED"], events
    print("python client: ok")


if __name__ == "__main__":
    main(sys.argv[1])
