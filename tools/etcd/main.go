// Command etcd is upstream etcd (go.etcd.io/etcd/server/v3, version pinned in
// tools/versions.env) built from its etcdmain package; see scripts/tools.sh.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
