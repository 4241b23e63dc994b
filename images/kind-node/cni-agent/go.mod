module sagamesh/images/kind-node/cni-agent

go 1.24.0
