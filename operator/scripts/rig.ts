/**
 * A Docker-free Kubernetes API for `make dev K8S=1` and for trying the operator by hand: etcd +
 * kube-apiserver from .tools/bin with the sagamesh CRDs installed, in the foreground.
 *   node operator/scripts/rig.ts      prints the `export KUBECONFIG=...` line; Ctrl-C stops it
 */
import { startKubeRig } from '@sagamesh/testing';

const rig = await startKubeRig({ crds: true });
console.log(`kube-apiserver ${rig.server} is ready, with the sagamesh CRDs installed. In another shell:

  export KUBECONFIG=${rig.kubeconfigPath}
  export PATH=$PWD/.tools/bin:$PATH
  kubectl apply -f examples/

Ctrl-C stops etcd and kube-apiserver and removes their data.`);

let stopping = false;
const stop = () => {
  if (stopping) return;
  stopping = true;
  rig.stop().then(
    () => process.exit(0),
    (err: unknown) => {
      console.error(`stopping the rig failed: ${String(err)}`);
      process.exit(1);
    },
  );
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
