module sagamesh/tools/etcd

go 1.24.0
