// Command pause is the test cluster's pod sandbox image: it holds the pod's
// namespaces and waits for SIGTERM, like registry.k8s.io/pause, which the
// offline machines cannot pull.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	c := make(chan os.Signal, 1)
	signal.Notify(c, syscall.SIGINT, syscall.SIGTERM)
	<-c
}
