// Command etcd is upstream etcd's own main (go.etcd.io/etcd/server/v3/etcdmain) built from the
// Go module proxy at the version pinned in tools/versions.env (server/v3 has replace lines, so
// `go install` of it is not possible; this wrapper module pins its siblings instead).
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
