package framework

import "github.com/onsi/ginkgo/v2"

// Logf writes a line to the running spec's output (GinkgoWriter), which
// `go test -v` and a failing spec show: what a spec measured, where its
// processes' logs are.
func Logf(format string, args ...any) {
	ginkgo.GinkgoWriter.Printf(format+"\n", args...)
}
